// The single translation unit that compiles Asio and Asio.SSL.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
