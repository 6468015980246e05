// Element types a checkpoint may store (model-spec §6: fp32 reference weights,
// bf16/fp16 GPU weights) and the conversions between them and fp32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace tnl {

enum class DType { kF32, kBF16, kF16 };
const char* dtype_name(DType d);      // "F32", "BF16", "F16" (safetensors spelling)
int64_t dtype_size(DType d);          // bytes per element

// The safetensors spelling back to a DType; nullopt for any type the engine
// does not load (I8, F64, BOOL, ...).
std::optional<DType> dtype_from_name(std::string_view name);

// Converts n elements of `dtype` at `src` to fp32. `src` needs no alignment
// (tensors in a safetensors file start at arbitrary byte offsets).
void convert_to_f32(DType dtype, const std::byte* src, int64_t n, float* dst);

// Index of the first NaN or ±Inf among n elements of `dtype` at `src` (no
// alignment needed), or -1 when every element is finite. A bit test on the
// exponent field: memory-bound, about as fast as reading the bytes.
int64_t first_non_finite(DType dtype, const std::byte* src, int64_t n);

// fp32 values encoded as `dtype`, little-endian, rounded to nearest even.
std::vector<std::byte> encode_from_f32(DType dtype, std::span<const float> values);

float bf16_to_f32(uint16_t bits);
float f16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);  // round to nearest even; NaN stays NaN
uint16_t f32_to_f16(float value);   // round to nearest even; overflow → ±inf

}  // namespace tnl
