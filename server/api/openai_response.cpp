#include "server/api/openai_response.h"

#include <nlohmann/json.hpp>

namespace tnl::server {
namespace {

using nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json null_or(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

json utf8_bytes(const std::string& s) {
  json bytes = json::array();
  for (unsigned char c : s) bytes.push_back(int(c));
  return bytes;
}

// Legacy completions format: parallel arrays.
json completion_logprobs(const std::vector<TokenLogprobView>& tokens, int64_t offset) {
  json out = {{"tokens", json::array()}, {"token_logprobs", json::array()},
              {"top_logprobs", json::array()}, {"text_offset", json::array()}};
  for (const TokenLogprobView& t : tokens) {
    out["tokens"].push_back(t.token);
    out["token_logprobs"].push_back(t.has_logprob ? json(t.logprob) : json(nullptr));
    json top = json::object();
    for (const auto& [text, lp] : t.top) {
      if (!top.contains(text)) top[text] = lp;  // keep the better of two tokens with the same text
    }
    out["top_logprobs"].push_back(t.has_logprob ? top : json(nullptr));
    out["text_offset"].push_back(offset);
    offset += int64_t(t.token.size());
  }
  return out;
}

// Chat format: one object per token.
json chat_logprobs(const std::vector<TokenLogprobView>& tokens) {
  json content = json::array();
  for (const TokenLogprobView& t : tokens) {
    json top = json::array();
    for (const auto& [text, lp] : t.top) top.push_back({{"token", text}, {"logprob", lp}, {"bytes", utf8_bytes(text)}});
    content.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", utf8_bytes(t.token)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

json logprobs_json(ApiKind kind, const ChoiceOutput& choice) {
  if (!choice.logprobs) return nullptr;
  return kind == ApiKind::kChat ? chat_logprobs(*choice.logprobs)
                                : completion_logprobs(*choice.logprobs, choice.text_offset_base);
}

json usage_json(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

json header(const ResponseMeta& meta, const char* object) {
  return {{"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}};
}

}  // namespace

std::string response_body(const ResponseMeta& meta, const std::vector<ChoiceOutput>& choices, const Usage& usage) {
  const bool chat = meta.kind == ApiKind::kChat;
  json body = header(meta, chat ? "chat.completion" : "text_completion");
  json out = json::array();
  for (const ChoiceOutput& c : choices) {
    json choice = {{"index", c.index}, {"logprobs", logprobs_json(meta.kind, c)},
                   {"finish_reason", null_or(c.finish_reason)}};
    if (chat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    } else {
      choice["text"] = c.text;
    }
    out.push_back(std::move(choice));
  }
  body["choices"] = std::move(out);
  body["usage"] = usage_json(usage);
  return dump(body);
}

std::string stream_chunk(const ResponseMeta& meta, const ChoiceOutput& delta, bool first, bool usage_null) {
  const bool chat = meta.kind == ApiKind::kChat;
  json body = header(meta, chat ? "chat.completion.chunk" : "text_completion");
  json choice = {{"index", delta.index}, {"logprobs", logprobs_json(meta.kind, delta)},
                 {"finish_reason", null_or(delta.finish_reason)}};
  if (chat) {
    json d = json::object();
    if (first) d["role"] = "assistant";
    if (!delta.text.empty() || (first && delta.finish_reason.empty())) d["content"] = delta.text;
    choice["delta"] = std::move(d);
  } else {
    choice["text"] = delta.text;
  }
  body["choices"] = json::array({std::move(choice)});
  if (usage_null) body["usage"] = nullptr;
  return dump(body);
}

std::string usage_chunk(const ResponseMeta& meta, const Usage& usage) {
  json body = header(meta, meta.kind == ApiKind::kChat ? "chat.completion.chunk" : "text_completion");
  body["choices"] = json::array();
  body["usage"] = usage_json(usage);
  return dump(body);
}

std::string models_body(const std::string& model, int64_t created, int64_t max_model_len) {
  json m = {{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "tnl-serve"},
            {"max_model_len", max_model_len}};
  return dump({{"object", "list"}, {"data", json::array({m})}});
}

}  // namespace tnl::server
