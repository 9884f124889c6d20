// libFuzzer entry point; the property lives in properties.hpp.
#include "properties.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  fuzz::usage_stream(in);
  fuzz::usage_object(in);
  return 0;
}
