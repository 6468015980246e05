// The pure OpenAI request parser: accepted shapes, defaults, and one test per
// rejected input asserting the status, `param` and the message's gist.
#include "server/api/openai_request.h"

#include <gtest/gtest.h>

namespace tnl::server {
namespace {

SpecLimits limits() {
  SpecLimits l;
  l.served_model = "tiny";
  l.vocab_size = 100;
  return l;
}

CompletionSpec ok_completion(const std::string& body) {
  ApiResult<CompletionSpec> r = parse_completion_request(body, limits());
  EXPECT_TRUE(r.ok()) << body << " → " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : CompletionSpec{};
}

ApiError bad_completion(const std::string& body) {
  ApiResult<CompletionSpec> r = parse_completion_request(body, limits());
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? ApiError{} : r.error();
}

ApiError bad_chat(const std::string& body) {
  ApiResult<CompletionSpec> r = parse_chat_request(body, limits());
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? ApiError{} : r.error();
}

TEST(CompletionRequest, PromptShapes) {
  EXPECT_EQ(ok_completion(R"({"prompt": "hi"})").prompts.at(0).text, "hi");
  CompletionSpec list = ok_completion(R"({"prompt": ["a", "b"]})");
  ASSERT_EQ(list.prompts.size(), 2u);
  EXPECT_EQ(list.prompts[1].text, "b");
  CompletionSpec ids = ok_completion(R"({"prompt": [1, 2, 3]})");
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_FALSE(ids.prompts[0].is_text);
  EXPECT_EQ(ids.prompts[0].ids, (std::vector<int32_t>{1, 2, 3}));
  CompletionSpec id_lists = ok_completion(R"({"prompt": [[1], [2, 3]]})");
  ASSERT_EQ(id_lists.prompts.size(), 2u);
  EXPECT_EQ(id_lists.prompts[1].ids, (std::vector<int32_t>{2, 3}));
}

TEST(CompletionRequest, FieldsTheServerDoesNotHonourAreRefusedByName) {
  // Accepting and ignoring them would answer 200 with what the client did not ask
  // for (e.g. one answer where best_of asked for the best of several).
  for (const char* field : {"suffix", "best_of", "functions", "frobnicate"}) {
    const ApiError e = bad_completion(std::string(R"({"prompt": "x", ")") + field + R"(": 1})");
    EXPECT_EQ(e.http_status, 400) << field;
    EXPECT_EQ(e.param, field);
    EXPECT_EQ(e.code, "unsupported_parameter");
    EXPECT_NE(e.message.find(field), std::string::npos) << e.message;
  }
  const ApiError chat = bad_chat(R"({"messages": [{"role": "user", "content": "hi"}], "tools": []})");
  EXPECT_EQ(chat.param, "tools");
  const ApiError nested = bad_completion(R"({"prompt": "x", "stream": true, "stream_options": {"continuous_usage_stats": true}})");
  EXPECT_EQ(nested.param, "continuous_usage_stats");
  // Explicit nulls mean "default" and `user` is only for the client's bookkeeping.
  ok_completion(R"({"prompt": "x", "logit_bias": null, "suffix": null, "user": "u-1"})");
}

TEST(CompletionRequest, StructuredOutputAndTokenControls) {
  const CompletionSpec s = ok_completion(
      R"({"prompt": "x", "max_tokens": 9, "logit_bias": {"5": -100, "7": 2.5}, "allowed_token_ids": [1, 2],
          "min_tokens": 3, "bad_words": ["no"], "include_stop_str_in_output": true,
          "response_format": {"type": "json_schema", "json_schema": {"name": "n", "strict": true,
                                                                      "schema": {"type": "integer"}}}})");
  ASSERT_TRUE(s.constraint.has_value());
  EXPECT_EQ(s.constraint->kind, ConstraintSpec::Kind::kJsonSchema);
  EXPECT_EQ(s.constraint->text, R"({"type":"integer"})");
  EXPECT_EQ(s.constraint_param, "response_format");
  EXPECT_EQ(s.logit_bias, (std::vector<std::pair<int32_t, float>>{{5, -100.0f}, {7, 2.5f}}));
  EXPECT_EQ(s.allowed_token_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(s.min_tokens, 3);
  EXPECT_EQ(s.bad_words, (std::vector<std::string>{"no"}));
  EXPECT_TRUE(s.include_stop_str_in_output);
  EXPECT_FALSE(ok_completion(R"({"prompt": "x", "response_format": {"type": "text"}})").constraint.has_value());
  EXPECT_EQ(ok_completion(R"({"prompt": "x", "regex": "[0-9]+"})").constraint->kind, ConstraintSpec::Kind::kRegex);

  EXPECT_EQ(bad_completion(R"({"prompt": "x", "logit_bias": 1})").param, "logit_bias");
  EXPECT_EQ(bad_completion(R"({"prompt": "x", "logit_bias": {"5": 150}})").param, "logit_bias");
  EXPECT_EQ(bad_completion(R"({"prompt": "x", "response_format": {"type": "json_schema"}})").param,
            "response_format");
  EXPECT_EQ(bad_completion(R"({"prompt": "x", "response_format": {"type": "json_object", "extra": 1}})").param,
            "response_format");
  EXPECT_EQ(bad_completion(R"({"prompt": "x", "regex": "a", "grammar": "root ::= \"a\""})").param, "grammar");
  EXPECT_EQ(bad_completion(R"({"prompt": "x", "regex": "a", "ignore_eos": true})").param, "ignore_eos");
  EXPECT_EQ(bad_completion(R"({"prompt": "x", "max_tokens": 2, "min_tokens": 3})").param, "min_tokens");
}

TEST(CompletionRequest, ParametersAndDefaults) {
  CompletionSpec d = ok_completion(R"({"prompt": "x", "model": "tiny", "temperature": null})");
  EXPECT_FALSE(d.max_tokens.has_value());
  EXPECT_EQ(d.n, 1);
  EXPECT_FALSE(d.stream);
  EXPECT_EQ(d.sampling.logprobs, -1);
  EXPECT_FLOAT_EQ(d.sampling.temperature, 1.0f);

  CompletionSpec s = ok_completion(
      R"({"prompt": "x", "max_tokens": 5, "temperature": 0, "top_p": 0.5, "top_k": 4, "min_p": 0.1,
          "presence_penalty": 1, "frequency_penalty": -1, "repetition_penalty": 1.2, "seed": -3,
          "stop": "\n", "n": 2, "logprobs": 3, "echo": true, "stream": true,
          "stream_options": {"include_usage": true}, "user": "ignored"})");
  EXPECT_EQ(*s.max_tokens, 5);
  EXPECT_EQ(s.sampling.temperature, 0.0f);
  EXPECT_EQ(s.sampling.top_k, 4);
  EXPECT_EQ(*s.sampling.seed, uint64_t(-3));
  EXPECT_EQ(s.stop, (std::vector<std::string>{"\n"}));
  EXPECT_EQ(s.n, 2);
  EXPECT_EQ(s.sampling.logprobs, 3);
  EXPECT_TRUE(s.echo);
  EXPECT_TRUE(s.include_usage);
  EXPECT_EQ(ok_completion(R"({"prompt": "x", "stop": ["a", "b"]})").stop.size(), 2u);
  EXPECT_EQ(*ok_completion(R"({"prompt": "x", "max_tokens": 7.0})").max_tokens, 7);
}

TEST(CompletionRequest, RejectsMalformedBodies) {
  EXPECT_EQ(bad_completion("{").code, "invalid_json");
  EXPECT_EQ(bad_completion("").code, "invalid_json");
  EXPECT_EQ(bad_completion("[1]").code, "invalid_json");
  EXPECT_EQ(bad_completion(std::string(100, '[') + std::string(100, ']')).http_status, 400);
  EXPECT_EQ(bad_completion("{}").param, "prompt");
}

TEST(CompletionRequest, RejectsWrongTypesNamingTheParameter) {
  struct Case {
    const char* body;
    const char* param;
  } cases[] = {
      {R"({"prompt": 5})", "prompt"},
      {R"({"prompt": [1, "a"]})", "prompt"},
      {R"({"prompt": [{"a": 1}]})", "prompt"},
      {R"({"prompt": "x", "max_tokens": "5"})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 1.5})", "max_tokens"},
      {R"({"prompt": "x", "temperature": "hot"})", "temperature"},
      {R"({"prompt": "x", "stream": 1})", "stream"},
      {R"({"prompt": "x", "stop": 3})", "stop"},
      {R"({"prompt": "x", "stop": ["a", 1]})", "stop"},
      {R"({"prompt": "x", "n": true})", "n"},
      {R"({"prompt": "x", "seed": "1"})", "seed"},
      {R"({"prompt": "x", "stream": true, "stream_options": 1})", "stream_options"},
      {R"({"prompt": "x", "model": 7})", "model"},
      {R"({"prompt": "x", "max_tokens": 99999999999})", "max_tokens"},
  };
  for (const Case& c : cases) {
    ApiError e = bad_completion(c.body);
    EXPECT_EQ(e.http_status, 400) << c.body;
    EXPECT_EQ(e.type, "invalid_request_error") << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
  }
}

TEST(CompletionRequest, RejectsOutOfRangeValues) {
  struct Case {
    const char* body;
    const char* param;
  } cases[] = {
      {R"({"prompt": ""})", "prompt"},
      {R"({"prompt": []})", "prompt"},
      {R"({"prompt": [[]]})", "prompt"},
      {R"({"prompt": ["a", ""]})", "prompt"},
      {R"({"prompt": [100]})", "prompt"},
      {R"({"prompt": [-1]})", "prompt"},
      {R"({"prompt": "x", "temperature": -0.1})", "temperature"},
      {R"({"prompt": "x", "temperature": 2.5})", "temperature"},
      {R"({"prompt": "x", "top_p": 0})", "top_p"},
      {R"({"prompt": "x", "top_p": 1.01})", "top_p"},
      {R"({"prompt": "x", "top_k": -2})", "top_k"},
      {R"({"prompt": "x", "min_p": 2})", "min_p"},
      {R"({"prompt": "x", "presence_penalty": 3})", "presence_penalty"},
      {R"({"prompt": "x", "frequency_penalty": -3})", "frequency_penalty"},
      {R"({"prompt": "x", "repetition_penalty": 0})", "repetition_penalty"},
      {R"({"prompt": "x", "max_tokens": 0})", "max_tokens"},
      {R"({"prompt": "x", "n": 0})", "n"},
      {R"({"prompt": "x", "n": 17})", "n"},
      {R"({"prompt": "x", "logprobs": 21})", "logprobs"},
      {R"({"prompt": "x", "logprobs": -1})", "logprobs"},
      {R"({"prompt": "x", "stop": [""]})", "stop"},
      {R"({"prompt": "x", "stream_options": {"include_usage": true}})", "stream_options"},
  };
  for (const Case& c : cases) {
    ApiError e = bad_completion(c.body);
    EXPECT_EQ(e.http_status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body << " → " << e.message;
  }
}

TEST(CompletionRequest, UnknownModelIs404) {
  ApiError e = bad_completion(R"({"prompt": "x", "model": "gpt-4"})");
  EXPECT_EQ(e.http_status, 404);
  EXPECT_EQ(e.param, "model");
  EXPECT_EQ(e.code, "model_not_found");
}

TEST(CompletionRequest, PriorityIsABoundedIntegerDefaultingToZero) {
  EXPECT_EQ(ok_completion(R"({"prompt": "hi"})").priority, 0);
  EXPECT_EQ(ok_completion(R"({"prompt": "hi", "priority": -7})").priority, -7);
  EXPECT_EQ(ok_completion(R"({"prompt": "hi", "priority": 1000000})").priority, 1000000);
  EXPECT_EQ(ok_completion(R"({"prompt": "hi", "priority": -1000000})").priority, -1000000);
  EXPECT_EQ(ok_completion(R"({"prompt": "hi", "priority": null})").priority, 0);
  for (const char* bad : {"1000001", "-1000001", "1.5", "\"high\"", "true", "[1]", "99999999999"}) {
    const std::string body = std::string(R"({"prompt": "hi", "priority": )") + bad + "}";
    const ApiError e = bad_completion(body);
    EXPECT_EQ(e.http_status, 400) << body;
    EXPECT_EQ(e.param, "priority") << body;
    EXPECT_NE(e.message.find("priority"), std::string::npos) << e.message;
    EXPECT_EQ(bad_chat(std::string(R"({"messages": [{"role": "user", "content": "x"}], "priority": )") + bad + "}")
                  .param,
              "priority");
  }
}

TEST(ChatRequest, MessagesAndLogprobs) {
  ApiResult<CompletionSpec> r = parse_chat_request(
      R"({"messages": [{"role": "system", "content": "be brief"},
                       {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]}],
          "logprobs": true, "top_logprobs": 2, "max_completion_tokens": 9})",
      limits());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().kind, ApiKind::kChat);
  ASSERT_EQ(r.value().messages.size(), 2u);
  EXPECT_EQ(r.value().messages[1].content, "hi there");
  EXPECT_EQ(r.value().sampling.logprobs, 2);
  EXPECT_EQ(*r.value().max_tokens, 9);
}

TEST(ChatRequest, Rejections) {
  EXPECT_EQ(bad_chat(R"({})").param, "messages");
  EXPECT_EQ(bad_chat(R"({"messages": []})").param, "messages");
  EXPECT_EQ(bad_chat(R"({"messages": "hi"})").param, "messages");
  EXPECT_EQ(bad_chat(R"({"messages": [{"content": "hi"}]})").param, "messages");
  EXPECT_EQ(bad_chat(R"({"messages": [{"role": "robot", "content": "hi"}]})").param, "messages");
  EXPECT_EQ(bad_chat(R"({"messages": [{"role": "user", "content": 5}]})").param, "messages");
  EXPECT_EQ(bad_chat(R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})").param,
            "top_logprobs");
  EXPECT_EQ(bad_chat(R"({"messages": [{"role": "user", "content": "x"}], "logprobs": 1})").param, "logprobs");
}

TEST(ApiErrorBody, HasTheOpenAiShape) {
  ApiError e = invalid_request("bad \xff value", "top_p");
  const std::string body = e.to_json();
  EXPECT_NE(body.find(R"("error":{)"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("param":"top_p")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("code":null)"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("type":"invalid_request_error")"), std::string::npos) << body;
}

TEST(ApiErrorBody, MapsEngineStatuses) {
  EXPECT_EQ(api_error_from_status(invalid_argument("x")).http_status, 400);
  EXPECT_EQ(api_error_from_status(resource_exhausted("x")).http_status, 429);
  EXPECT_EQ(api_error_from_status(failed_precondition("x")).http_status, 503);
  EXPECT_EQ(api_error_from_status(internal_error("x")).http_status, 500);
}

}  // namespace
}  // namespace tnl::server
