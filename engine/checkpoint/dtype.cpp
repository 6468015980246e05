#include "engine/checkpoint/dtype.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace tnl {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

uint16_t load_u16(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

const char* dtype_name(DType d) {
  switch (d) {
    case DType::kF32: return "F32";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
  }
  return "?";
}

int64_t dtype_size(DType d) {
  switch (d) {
    case DType::kF32: return 4;
    case DType::kBF16: return 2;
    case DType::kF16: return 2;
  }
  return 0;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  if (name == "F32") return DType::kF32;
  if (name == "BF16") return DType::kBF16;
  if (name == "F16") return DType::kF16;
  return std::nullopt;
}

float bf16_to_f32(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

float f16_to_f32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t mantissa = bits & 0x3ffu;
  uint32_t out;
  if (exponent == 0x1f) {
    out = sign | 0x7f800000u | (mantissa << 13);  // inf or NaN (payload kept)
  } else if (exponent != 0) {
    out = sign | ((exponent + 112u) << 23) | (mantissa << 13);  // rebias 15 → 127
  } else if (mantissa == 0) {
    out = sign;  // ±0
  } else {
    // Subnormal half: normalise into an fp32 normal.
    int e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while ((mantissa & 0x400u) == 0);
    out = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(out);
}

uint16_t f32_to_bf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

uint16_t f32_to_f16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;        // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;       // rounds to ≥ 65520: inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero) in half: value = m · 2^-24, m rounded to nearest even.
    if (abs < 0x33000000u) return sign;                // below half the smallest subnormal
    const uint32_t exponent = abs >> 23;
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exponent;            // 14 … 24
    uint32_t m = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (m & 1u))) ++m;
    return sign | static_cast<uint16_t>(m);
  }
  // Normal: rebias exponent 127 → 15 and round the 13 dropped mantissa bits.
  uint32_t h = ((abs >> 13) - (112u << 10));
  const uint32_t rest = abs & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: fine
  return sign | static_cast<uint16_t>(h);
}

void convert_to_f32(DType dtype, const std::byte* src, int64_t n, float* dst) {
  if (n <= 0) return;  // empty tensors may come with null pointers, which memcpy must not see
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(src + 2 * i));
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_u16(src + 2 * i));
      return;
  }
}

std::vector<std::byte> encode_from_f32(DType dtype, std::span<const float> values) {
  std::vector<std::byte> out(values.size() * static_cast<size_t>(dtype_size(dtype)));
  switch (dtype) {
    case DType::kF32:
      if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
      break;
    case DType::kBF16:
    case DType::kF16:
      for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t h = dtype == DType::kBF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
        std::memcpy(out.data() + 2 * i, &h, sizeof h);
      }
      break;
  }
  return out;
}

namespace {

// Exponent all ones ⇔ NaN or Inf, for an IEEE format whose exponent field is `mask`.
template <typename Bits>
int64_t first_with_exponent_all_ones(const std::byte* src, int64_t n, Bits mask) {
  constexpr int64_t kBlock = 4096;
  Bits block[kBlock];
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t count = std::min(kBlock, n - begin);
    std::memcpy(block, src + begin * int64_t(sizeof(Bits)), size_t(count) * sizeof(Bits));
    bool any = false;
    for (int64_t i = 0; i < count; ++i) any |= (block[i] & mask) == mask;
    if (!any) continue;
    for (int64_t i = 0; i < count; ++i) {
      if ((block[i] & mask) == mask) return begin + i;
    }
  }
  return -1;
}

}  // namespace

int64_t first_non_finite(DType dtype, const std::byte* src, int64_t n) {
  switch (dtype) {
    case DType::kF32: return first_with_exponent_all_ones<uint32_t>(src, n, 0x7F800000u);
    case DType::kBF16: return first_with_exponent_all_ones<uint16_t>(src, n, uint16_t(0x7F80));
    case DType::kF16: return first_with_exponent_all_ones<uint16_t>(src, n, uint16_t(0x7C00));
  }
  return -1;
}

}  // namespace tnl
