// fp32 ↔ bf16/f16 conversions: exact on representable values, round to nearest
// even otherwise, and the special values (±0, subnormals, inf, NaN) survive.
#include <cmath>
#include <cstring>
#include <limits>

#include <gtest/gtest.h>

#include "engine/checkpoint/dtype.h"

namespace tnl {
namespace {

TEST(DType, NamesAndSizes) {
  EXPECT_STREQ(dtype_name(DType::kF32), "F32");
  EXPECT_STREQ(dtype_name(DType::kBF16), "BF16");
  EXPECT_STREQ(dtype_name(DType::kF16), "F16");
  EXPECT_EQ(dtype_size(DType::kF32), 4);
  EXPECT_EQ(dtype_size(DType::kBF16), 2);
  EXPECT_EQ(dtype_size(DType::kF16), 2);
  EXPECT_EQ(dtype_from_name("BF16"), DType::kBF16);
  EXPECT_EQ(dtype_from_name("I8"), std::nullopt);
  EXPECT_EQ(dtype_from_name("F64"), std::nullopt);
}

TEST(DType, F16KnownEncodings) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);            // rounds past the largest half: inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie → even (0)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie → even
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(f16_to_f32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
}

TEST(DType, F16AllBitPatternsRoundTrip) {
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const float x = f16_to_f32(static_cast<uint16_t>(bits));
    if (std::isnan(x)) continue;
    ASSERT_EQ(f32_to_f16(x), bits) << std::hex << bits;
  }
}

TEST(DType, BF16AllBitPatternsRoundTrip) {
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const float x = bf16_to_f32(static_cast<uint16_t>(bits));
    if (std::isnan(x)) continue;
    ASSERT_EQ(f32_to_bf16(x), bits) << std::hex << bits;
  }
}

TEST(DType, BF16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie → even
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie → even (up)
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -7) + std::ldexp(1.0f, -9)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DType, ConvertToF32FromUnalignedBytes) {
  const std::vector<float> values = {0.5f, -3.25f, 1e-3f, 1234.5f};
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    const std::vector<std::byte> encoded = encode_from_f32(dtype, values);
    std::vector<std::byte> shifted(encoded.size() + 1);
    std::memcpy(shifted.data() + 1, encoded.data(), encoded.size());  // odd address
    std::vector<float> back(values.size());
    convert_to_f32(dtype, shifted.data() + 1, static_cast<int64_t>(values.size()), back.data());
    const float tol = dtype == DType::kF32 ? 0.0f : dtype == DType::kBF16 ? 1.0f / 256 : 1.0f / 2048;
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_LE(std::fabs(back[i] - values[i]), tol * std::fabs(values[i])) << dtype_name(dtype) << " " << i;
    }
  }
}

TEST(DType, FirstNonFiniteFindsNaNAndInfInEveryDType) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    std::vector<float> values(10000, 1.5f);
    const std::vector<std::byte> finite = encode_from_f32(dtype, values);
    EXPECT_EQ(first_non_finite(dtype, finite.data() + 0, int64_t(values.size())), -1) << dtype_name(dtype);
    values[9000] = std::numeric_limits<float>::infinity();
    values[9500] = std::numeric_limits<float>::quiet_NaN();
    const std::vector<std::byte> bad = encode_from_f32(dtype, values);
    EXPECT_EQ(first_non_finite(dtype, bad.data(), int64_t(values.size())), 9000) << dtype_name(dtype);
    // Unaligned start (safetensors gives no alignment) and the largest finite values.
    std::vector<std::byte> shifted(bad.size() + 1);
    std::memcpy(shifted.data() + 1, bad.data(), bad.size());
    EXPECT_EQ(first_non_finite(dtype, shifted.data() + 1, int64_t(values.size())), 9000);
  }
  const std::vector<float> big = {65504.0f, -65504.0f};
  EXPECT_EQ(first_non_finite(DType::kF16, encode_from_f32(DType::kF16, big).data(), 2), -1);
}

TEST(DType, ConvertNothingFromNull) {
  // Regression (found by safetensors_header_fuzz): empty tensors reach this with
  // null pointers, and memcpy(nullptr, nullptr, 0) is undefined behaviour.
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) convert_to_f32(dtype, nullptr, 0, nullptr);
}

}  // namespace
}  // namespace tnl
