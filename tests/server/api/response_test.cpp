// Response, stream-chunk, SSE, chat-template and Prometheus formatting.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/api/chat_template.h"
#include "server/api/openai_response.h"
#include "server/api/prometheus.h"
#include "server/api/sse.h"

namespace tnl::server {
namespace {

using nlohmann::json;

ResponseMeta meta(ApiKind kind) { return {kind, "cmpl-1", 1700000000, "tiny"}; }

TEST(Response, CompletionBody) {
  ChoiceOutput c{0, "hello", "length", std::nullopt, 0};
  json body = json::parse(response_body(meta(ApiKind::kCompletion), {c}, {3, 5}));
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["id"], "cmpl-1");
  EXPECT_EQ(body["created"], 1700000000);
  EXPECT_EQ(body["model"], "tiny");
  EXPECT_EQ(body["choices"][0]["text"], "hello");
  EXPECT_EQ(body["choices"][0]["index"], 0);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(body["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(body["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(body["usage"]["completion_tokens"], 5);
  EXPECT_EQ(body["usage"]["total_tokens"], 8);
}

TEST(Response, ChatBodyAndLogprobs) {
  std::vector<TokenLogprobView> lp = {{7, " a", -0.5f, true, {{" a", -0.5f}, {" b", -1.0f}}, {7, 8}}};
  ChoiceOutput c{1, " a", "stop", lp, 0};
  json body = json::parse(response_body(meta(ApiKind::kChat), {c}, {1, 1}));
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(body["choices"][0]["message"]["content"], " a");
  EXPECT_EQ(body["choices"][0]["logprobs"]["content"][0]["token"], " a");
  EXPECT_EQ(body["choices"][0]["logprobs"]["content"][0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(body["choices"][0]["logprobs"]["content"][0]["bytes"], json::array({32, 97}));

  json legacy = json::parse(response_body(meta(ApiKind::kCompletion), {c}, {1, 1}));
  EXPECT_EQ(legacy["choices"][0]["logprobs"]["tokens"][0], " a");
  EXPECT_FLOAT_EQ(legacy["choices"][0]["logprobs"]["token_logprobs"][0].get<float>(), -0.5f);
  EXPECT_EQ(legacy["choices"][0]["logprobs"]["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(legacy["choices"][0]["logprobs"]["text_offset"][0], 0);
}

TEST(Response, StreamChunks) {
  json first = json::parse(stream_chunk(meta(ApiKind::kChat), {0, "", "", std::nullopt, 0}, true, false));
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "");
  EXPECT_FALSE(first.contains("usage"));
  json last = json::parse(stream_chunk(meta(ApiKind::kChat), {0, "", "stop", std::nullopt, 0}, false, true));
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(last["usage"].is_null());
  json text = json::parse(stream_chunk(meta(ApiKind::kCompletion), {2, "x", "", std::nullopt, 0}, false, false));
  EXPECT_EQ(text["choices"][0]["text"], "x");
  EXPECT_EQ(text["choices"][0]["index"], 2);
  EXPECT_TRUE(text["choices"][0]["finish_reason"].is_null());
  json usage = json::parse(usage_chunk(meta(ApiKind::kCompletion), {4, 6}));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 10);
}

TEST(Sse, Framing) {
  EXPECT_EQ(sse_event(R"({"a":1})"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
}

TEST(ChatTemplate, PlainDefaultAndCustom) {
  ChatTemplate plain;
  EXPECT_EQ(plain.render({{"system", "S"}, {"user", "hi"}, {"assistant", "yo"}, {"user", "ok?"}}),
            "System: S\nUser: hi\nAssistant: yo\nUser: ok?\nAssistant:");
  Expected<ChatTemplate> custom = parse_chat_template(
      R"({"user": "<u>{content}</u>", "generation_prompt": "<a>", "stop": ["</a>"]})", "t.json");
  ASSERT_TRUE(custom.has_value());
  EXPECT_EQ(custom->render({{"user", "q"}}), "<u>q</u><a>");
  EXPECT_EQ(custom->stop, std::vector<std::string>{"</a>"});
  EXPECT_FALSE(parse_chat_template("[]", "t.json").has_value());
  EXPECT_FALSE(parse_chat_template(R"({"user": 1})", "t.json").has_value());
}

TEST(Prometheus, RendersGaugesAndHistograms) {
  EngineStats s;
  s.running = 2;
  s.slots_total = 8;
  s.time_to_first_token.bucket_bounds = {0.1, 1.0};
  s.time_to_first_token.bucket_counts = {1, 3};
  s.time_to_first_token.count = 4;
  s.time_to_first_token.sum = 5.5;
  FrontEndCounters f;
  f.ready = true;
  const std::string text = render_prometheus(s, f);
  EXPECT_NE(text.find("tnl_requests_running 2\n"), std::string::npos);
  EXPECT_NE(text.find("tnl_state_slots_total 8\n"), std::string::npos);
  EXPECT_NE(text.find("tnl_time_to_first_token_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("tnl_time_to_first_token_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE tnl_e2e_request_latency_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("tnl_ready 1\n"), std::string::npos);
}

}  // namespace
}  // namespace tnl::server
