// libFuzzer target: the safetensors header parser on arbitrary bytes. It must
// return a value for every input (no crash, no throw, no UB: built with ASan and
// UBSan), and on success every tensor range must lie inside the input, which
// reading each tensor through convert_to_f32 lets ASan verify.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "engine/checkpoint/dtype.h"
#include "engine/checkpoint/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto header = tnl::parse_safetensors_header(bytes, "fuzz.safetensors");
  if (!header) {
    if (header.status().message().empty()) std::abort();  // errors must say something
    return 0;
  }
  std::vector<float> values;
  for (const auto& [name, entry] : header->tensors) {
    if (entry.begin < header->data_begin || entry.end < entry.begin || entry.end > static_cast<int64_t>(size)) {
      std::abort();  // the parser's guarantee is broken
    }
    const int64_t n = (entry.end - entry.begin) / tnl::dtype_size(entry.dtype);
    values.resize(static_cast<size_t>(n));
    tnl::convert_to_f32(entry.dtype, bytes.data() + entry.begin, n, values.data());
  }
  return 0;
}
