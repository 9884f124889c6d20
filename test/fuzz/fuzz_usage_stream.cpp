// libFuzzer entry point; the property lives in properties.hpp.
#include "properties.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::usage_stream({reinterpret_cast<const char*>(data), size});
  return 0;
}
