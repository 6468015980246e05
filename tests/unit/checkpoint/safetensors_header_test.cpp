// The pure safetensors header parser on hand-made bytes: every malformed input
// is an error value naming the file (and the tensor where there is one).
#include <cstring>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/checkpoint/safetensors_header.h"
#include "engine/checkpoint/safetensors_writer.h"

namespace tnl {
namespace {

using nlohmann::json;
using testing::HasSubstr;

constexpr const char* kFile = "shard.safetensors";

// [u64 n][header text][data_bytes bytes of 0x11].
std::string make_file(const std::string& header_text, size_t data_bytes, uint64_t claimed_len = UINT64_MAX) {
  const uint64_t n = claimed_len == UINT64_MAX ? header_text.size() : claimed_len;
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header_text + std::string(data_bytes, '\x11');
}

Expected<SafetensorsHeader> parse(const std::string& bytes) {
  return parse_safetensors_header(std::as_bytes(std::span(bytes.data(), bytes.size())), kFile);
}

std::string error_of(const std::string& bytes) {
  auto h = parse(bytes);
  EXPECT_FALSE(h.has_value());
  if (h) return "";
  EXPECT_THAT(h.status().message(), HasSubstr(kFile));
  return h.status().message();
}

json entry(const char* dtype, std::vector<int64_t> shape, int64_t begin, int64_t end) {
  return {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

TEST(SafetensorsHeader, ParsesValidHeaderWithMetadata) {
  json h = {{"__metadata__", {{"format", "pt"}}},
            {"a", entry("F32", {2, 3}, 0, 24)},
            {"b", entry("BF16", {4}, 24, 32)},
            {"c", entry("F16", {}, 32, 34)},
            {"empty", entry("F32", {0, 5}, 34, 34)}};
  const std::string text = h.dump();
  auto parsed = parse(make_file(text, 34));
  ASSERT_TRUE(parsed.has_value()) << parsed.status().to_string();
  EXPECT_EQ(parsed->data_begin, static_cast<int64_t>(8 + text.size()));
  EXPECT_EQ(parsed->metadata.at("format"), "pt");
  ASSERT_EQ(parsed->tensors.size(), 4u);
  const auto& a = parsed->tensors.at("a");
  EXPECT_EQ(a.dtype, DType::kF32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.begin, parsed->data_begin);
  EXPECT_EQ(a.end, parsed->data_begin + 24);
  EXPECT_EQ(parsed->tensors.at("b").dtype, DType::kBF16);
  EXPECT_EQ(parsed->tensors.at("c").shape, std::vector<int64_t>{});
}

TEST(SafetensorsHeader, WriterOutputParsesBack) {
  std::vector<float> v = {1, 2, 3, 4, 5, 6};
  auto bytes = serialize_safetensors({tensor_from_f32("x", {2, 3}, v, DType::kBF16),
                                      tensor_from_f32("y", {6}, v, DType::kF32)},
                                     {{"format", "pt"}});
  ASSERT_TRUE(bytes.has_value());
  auto parsed = parse(*bytes);
  ASSERT_TRUE(parsed.has_value()) << parsed.status().to_string();
  EXPECT_EQ(parsed->data_begin % 8, 0);  // header padded so data is 8-byte aligned
  EXPECT_EQ(parsed->tensors.at("y").end, static_cast<int64_t>(bytes->size()));
}

TEST(SafetensorsHeader, TooShortForTheLength) {
  EXPECT_THAT(error_of(""), HasSubstr("truncated"));
  EXPECT_THAT(error_of("\x05\x00\x00"), HasSubstr("truncated"));
}

TEST(SafetensorsHeader, AbsurdHeaderLength) {
  EXPECT_THAT(error_of(make_file("{}", 0, uint64_t{200} << 20)), HasSubstr("absurd"));
  EXPECT_THAT(error_of(make_file("{}", 0, UINT64_MAX - 1)), HasSubstr("absurd"));
}

TEST(SafetensorsHeader, HeaderLengthBeyondFile) {
  EXPECT_THAT(error_of(make_file("{}", 0, 1000)), HasSubstr("exceeds the file size"));
}

TEST(SafetensorsHeader, NotJson) {
  EXPECT_THAT(error_of(make_file("{\"a\": ", 0)), HasSubstr("not valid JSON"));
  EXPECT_THAT(error_of(make_file("[1, 2]", 0)), HasSubstr("not a JSON object"));
  EXPECT_THAT(error_of(make_file(std::string("{\"a\xff\": 1}"), 0)), HasSubstr("not valid JSON"));
}

TEST(SafetensorsHeader, UnsupportedDTypesNameTheTensor) {
  for (const char* dtype : {"I8", "F64", "BOOL", "U8", "f32", ""}) {
    const std::string msg = error_of(make_file(json{{"w.weight", entry(dtype, {2}, 0, 2)}}.dump(), 2));
    EXPECT_THAT(msg, HasSubstr("w.weight"));
    EXPECT_THAT(msg, HasSubstr("unsupported dtype"));
    EXPECT_THAT(msg, HasSubstr(std::string("\"") + dtype + "\""));
  }
}

TEST(SafetensorsHeader, OffsetsOutsideTheFile) {
  const std::string msg = error_of(make_file(json{{"w", entry("F32", {4}, 0, 16)}}.dump(), 12));
  EXPECT_THAT(msg, HasSubstr("\"w\""));
  EXPECT_THAT(msg, HasSubstr("outside the data section"));
}

TEST(SafetensorsHeader, ReversedOffsets) {
  EXPECT_THAT(error_of(make_file(json{{"w", entry("F32", {0}, 8, 4)}}.dump(), 16)), HasSubstr("reversed"));
}

TEST(SafetensorsHeader, ByteLengthDisagreesWithShape) {
  const std::string msg = error_of(make_file(json{{"w", entry("F16", {3, 2}, 0, 8)}}.dump(), 8));
  EXPECT_THAT(msg, HasSubstr("\"w\""));
  EXPECT_THAT(msg, HasSubstr("[3, 2]"));
  EXPECT_THAT(msg, HasSubstr("12"));
}

TEST(SafetensorsHeader, OverlappingTensors) {
  json h = {{"first", entry("F32", {4}, 0, 16)}, {"second", entry("F32", {4}, 12, 28)}};
  const std::string msg = error_of(make_file(h.dump(), 28));
  EXPECT_THAT(msg, HasSubstr("overlaps"));
  EXPECT_THAT(msg, HasSubstr("first"));
  EXPECT_THAT(msg, HasSubstr("second"));
}

TEST(SafetensorsHeader, MalformedEntries) {
  EXPECT_THAT(error_of(make_file(R"({"w": 3})", 0)), HasSubstr("\"w\""));
  EXPECT_THAT(error_of(make_file(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4)), HasSubstr("dtype"));
  EXPECT_THAT(error_of(make_file(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4)), HasSubstr("shape"));
  EXPECT_THAT(error_of(make_file(R"({"w": {"dtype": "F32", "shape": [1]}})", 4)), HasSubstr("data_offsets"));
  EXPECT_THAT(error_of(make_file(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4)),
              HasSubstr("shape"));
  EXPECT_THAT(error_of(make_file(R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4)),
              HasSubstr("shape"));
  EXPECT_THAT(error_of(make_file(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})", 8)),
              HasSubstr("data_offsets"));
  EXPECT_THAT(error_of(make_file(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 8)),
              HasSubstr("data_offsets"));
  EXPECT_THAT(error_of(make_file(R"({"__metadata__": [1]})", 0)), HasSubstr("__metadata__"));
  EXPECT_THAT(error_of(make_file(R"({"__metadata__": {"k": 1}})", 0)), HasSubstr("__metadata__"));
}

TEST(SafetensorsHeader, ShapeOverflowIsAnErrorNotAWrap) {
  // 2^32 · 2^32 elements wraps to 0 in 64 bits; with data_offsets [0, 0] a
  // wrapping check would accept it.
  json h = {{"w", entry("F32", {int64_t{1} << 32, int64_t{1} << 32}, 0, 0)}};
  EXPECT_THAT(error_of(make_file(h.dump(), 0)), HasSubstr("overflows"));
  json h2 = {{"w", entry("F32", {int64_t{1} << 62}, 0, 0)}};
  EXPECT_THAT(error_of(make_file(h2.dump(), 0)), HasSubstr("overflows"));
}

TEST(SafetensorsHeader, ShapeString) {
  EXPECT_EQ(shape_string({4096, 1024}), "[4096, 1024]");
  EXPECT_EQ(shape_string({}), "[]");
}

}  // namespace
}  // namespace tnl
