// libFuzzer target: the JSON Schema compiler (schema text → grammar) on arbitrary bytes, then a short
// matcher walk over the compiled constraint (constraint_fuzz_support.h).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/constraint_fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tnl::fuzz::fuzz_constraint(tnl::ConstraintSpec::Kind::kJsonSchema, data, size);
  return 0;
}
