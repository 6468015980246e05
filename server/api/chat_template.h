// ChatTemplate: how chat messages become one prompt string for a model.
//
// Templates are small JSON files, not Jinja (no Jinja engine is linked):
//   {"system": "System: {content}\n", "user": "User: {content}\n",
//    "assistant": "Assistant: {content}\n", "generation_prompt": "Assistant:",
//    "stop": ["\nUser:"]}
// Each role string has one {content} placeholder. `stop` strings are added to every
// chat request so that a base model does not write the user's next turn.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "engine/status.h"
#include "server/api/completion_spec.h"

namespace tnl::server {

struct ChatTemplate {
  std::string source = "builtin plain";  // for logs
  std::string system = "System: {content}\n";
  std::string user = "User: {content}\n";
  std::string assistant = "Assistant: {content}\n";
  std::string generation_prompt = "Assistant:";
  std::vector<std::string> stop = {"\nUser:"};

  std::string render(const std::vector<ChatMessage>& messages) const;
  // The messages alone, without the generation prompt: how a conversation that
  // includes a reply begins when the client sends it back next turn.
  std::string render_history(const std::vector<ChatMessage>& messages) const;

 private:
  std::string fill_assistant(const std::string& content) const;
};

Expected<ChatTemplate> parse_chat_template(const std::string& json_text, const std::string& source);
// `explicit_path` when given (an error if unreadable), else `model_dir`/chat_template.json
// when present, else the plain default above.
Expected<ChatTemplate> resolve_chat_template(const std::filesystem::path& explicit_path,
                                             const std::filesystem::path& model_dir);

}  // namespace tnl::server
