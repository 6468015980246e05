// parse_json_object_body: the tree nlohmann would build for the same body, the
// depth limit exactly at its boundary, and a 400 naming what is wrong otherwise.
#include "server/api/json_body.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace tnl::server {
namespace {

using nlohmann::json;

json parsed(const std::string& text) {
  ApiResult<json> r = parse_json_object_body(text, 64);
  EXPECT_TRUE(r.ok()) << text << " → " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : json();
}

ApiError rejected(const std::string& text, int depth = 64) {
  ApiResult<json> r = parse_json_object_body(text, depth);
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? ApiError{} : r.error();
}

std::string nested(int levels) { return "{\"a\":" + std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}"; }

TEST(JsonBody, BuildsTheTreeNlohmannBuilds) {
  const std::string bodies[] = {
      R"({"prompt": "x", "max_tokens": 7, "temperature": 0.5, "stream": true, "stop": null})",
      R"({"seed": 18446744073709551615, "neg": -9223372036854775808, "big": 1e300, "small": -0.0, "e": 2E-3})",
      R"({"text": "tab\t nl\n quote\" slash\\ uni\u00e9 pair\ud83e\udd84 raw é 🦄", "empty": "", "o": {}})",
      R"({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ["a", 1, [2, [3]]]}]})",
      R"({"dup": 1, "dup": 2, "k": [true, false, null, 0, 1.5]})",
      "  {\"ws\" :\n\t[ 1 , 2 ]\r\n}  ",
  };
  for (const std::string& b : bodies) EXPECT_EQ(parsed(b), json::parse(b)) << b;
}

TEST(JsonBody, RandomBodiesMatchNlohmann) {
  std::mt19937_64 rng(7);
  const auto random_value = [&](auto& self, int depth) -> json {
    switch (rng() % (depth > 3 ? 4 : 6)) {
      case 0: return int64_t(rng()) >> (rng() % 64);
      case 1: return double(int64_t(rng() % 2000001) - 1000000) / 1024.0;
      case 2: {
        std::string s;
        for (size_t n = rng() % 20; n--;) s += char(0x20 + rng() % 0x5f);
        return s;
      }
      case 3: return rng() % 2 == 0;
      case 4: {
        json a = json::array();
        for (size_t n = rng() % 5; n--;) a.push_back(self(self, depth + 1));
        return a;
      }
      default: {
        json o = json::object();
        for (size_t n = rng() % 5; n--;) o["k" + std::to_string(rng() % 10)] = self(self, depth + 1);
        return o;
      }
    }
  };
  for (int i = 0; i < 300; ++i) {
    json doc = json::object();
    for (size_t n = 1 + rng() % 6; n--;) doc["f" + std::to_string(rng() % 8)] = random_value(random_value, 1);
    const std::string text = doc.dump();
    ASSERT_EQ(parsed(text), doc) << text;
  }
}

TEST(JsonBody, DepthLimitIsExact) {
  EXPECT_EQ(parsed(nested(64))["a"].size(), 1u);
  const ApiError deep = rejected(nested(65));
  EXPECT_EQ(deep.http_status, 400);
  EXPECT_NE(deep.message.find("nests deeper than 64 levels"), std::string::npos) << deep.message;
  EXPECT_NE(rejected(nested(3), 2).message.find("deeper than 2"), std::string::npos);
  EXPECT_EQ(parsed(nested(2))["a"], json::array());
}

TEST(JsonBody, RejectsWhatIsNotAJsonObject) {
  for (const std::string bad : {"", "{", "{\"a\":}", "{\"a\":1,}", "{'a':1}", "{\"a\":1} x", "{\"a\":NaN}",
                                "{\"a\":\"\xff\"}", "{\"a\":\"\x01\"}", "{\"a\":123456789012345678901234567890}"}) {
    const ApiError e = rejected(bad);
    EXPECT_EQ(e.http_status, 400) << bad;
    EXPECT_EQ(e.code, "invalid_json") << bad;
    EXPECT_NE(e.message.find("not valid JSON ("), std::string::npos) << bad << " → " << e.message;
  }
  for (const std::string not_object : {"[1]", "1", "\"s\"", "null", "true"}) {
    const ApiError e = rejected(not_object);
    EXPECT_EQ(e.code, "invalid_json") << not_object;
    EXPECT_EQ(e.message, "request body must be a JSON object") << not_object;
  }
}

}  // namespace
}  // namespace tnl::server
