// libFuzzer target: the state blob parser (engine/state_blob.h) on arbitrary
// bytes, against a fixed small layout. It must return a value for every input (no
// crash, no throw, no UB: built with ASan and UBSan); an accepted blob must be
// exactly what its parts say, and writing it again must give the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "engine/state_blob.h"

namespace {

tnl::StateBlobLayout fuzz_layout() {
  tnl::StateBlobLayout l;
  l.model_fingerprint = "0123456789abcdef";
  l.layers = 2;
  l.heads = 2;
  l.head_dim = 4;
  l.key_dims = {8, 4};
  l.vocab_size = 50;
  l.max_tokens = 64;
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tnl::StateBlobLayout layout = fuzz_layout();
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto blob = tnl::parse_state_blob(bytes, layout);
  if (!blob) {
    if (blob.status().message().empty()) std::abort();  // errors must say something
    return 0;
  }
  if (blob->tokens.empty() || int64_t(blob->tokens.size()) > layout.max_tokens) std::abort();
  if (int64_t(blob->state.size()) != layout.state_bytes()) std::abort();
  for (int32_t t : blob->tokens) {
    if (t < 0 || t >= layout.vocab_size) std::abort();
  }
  // An accepted blob round-trips: the header it was written with may differ in
  // spelling (key order, spaces), so compare by parsing the rewrite.
  const std::string again = tnl::write_state_blob(layout, *blob);
  auto reparsed = tnl::parse_state_blob(std::as_bytes(std::span(again.data(), again.size())), layout);
  if (!reparsed || reparsed->tokens != blob->tokens || reparsed->state != blob->state) std::abort();
  return 0;
}
