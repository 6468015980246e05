#include "server/api/chat_template.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace tnl::server {
namespace {

constexpr std::string_view kPlaceholder = "{content}";

std::string fill(const std::string& format, const std::string& content) {
  const size_t at = format.find(kPlaceholder);
  if (at == std::string::npos) return format + content;
  return format.substr(0, at) + content + format.substr(at + kPlaceholder.size());
}

}  // namespace

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages) const {
  return render_history(messages) + generation_prompt;
}

std::string ChatTemplate::render_history(const std::vector<ChatMessage>& messages) const {
  std::string prompt;
  for (const ChatMessage& m : messages) {
    if (m.role == "assistant") {
      prompt += fill_assistant(m.content);
      continue;
    }
    prompt += fill(m.role == "user" ? user : system, m.content);
  }
  return prompt;
}

std::string ChatTemplate::fill_assistant(const std::string& content) const {
  // A reply as the model generated it usually starts with a space (" Hello"). When
  // the template already puts one before {content}, one is dropped, so that a
  // history holding the reply renders as the previous prompt + the reply exactly:
  // the next turn then extends the earlier tokens and hits the prefix cache.
  const size_t at = assistant.find(kPlaceholder);
  if (at != std::string::npos && at > 0 && assistant[at - 1] == ' ' && !content.empty() && content[0] == ' ') {
    return fill(assistant, content.substr(1));
  }
  return fill(assistant, content);
}

Expected<ChatTemplate> parse_chat_template(const std::string& json_text, const std::string& source) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return invalid_argument(source + ": a chat template must be a JSON object (see docs/api.md)");
  }
  ChatTemplate t;
  t.source = source;
  for (auto [key, field] : {std::pair{"system", &t.system}, std::pair{"user", &t.user},
                            std::pair{"assistant", &t.assistant}, std::pair{"generation_prompt", &t.generation_prompt}}) {
    if (!doc.contains(key)) continue;
    if (!doc[key].is_string()) return invalid_argument(source + ": '" + key + "' must be a string");
    *field = doc[key].get<std::string>();
  }
  if (doc.contains("stop")) {
    t.stop.clear();
    if (!doc["stop"].is_array()) return invalid_argument(source + ": 'stop' must be a list of strings");
    for (const auto& s : doc["stop"]) {
      if (!s.is_string() || s.get<std::string>().empty()) {
        return invalid_argument(source + ": 'stop' must be a list of non-empty strings");
      }
      t.stop.push_back(s.get<std::string>());
    }
  }
  return t;
}

Expected<ChatTemplate> resolve_chat_template(const std::filesystem::path& explicit_path,
                                             const std::filesystem::path& model_dir) {
  std::filesystem::path path = explicit_path;
  if (path.empty()) {
    path = model_dir / "chat_template.json";
    if (!std::filesystem::exists(path)) return ChatTemplate{};
  }
  std::ifstream in(path);
  if (!in) return not_found("cannot read chat template " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  return parse_chat_template(text.str(), path.string());
}

}  // namespace tnl::server
