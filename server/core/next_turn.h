// What the front ends do when a choice finishes well (stop or length), for the
// prefix state cache (docs/architecture.md, "How the boundaries line up"):
//   - remember its tokens (prompt + generated) under its response id, for exports;
//   - warm the next turn: a conversation's next prompt begins with `next_prefix`
//     (a completion: its prompt text + the returned text; a chat: the history with
//     the reply, as the template renders it when the client sends it back). If
//     tokenizing that text does not give exactly the tokens the model saw and
//     generated (BPE splits a word differently; a stop string's tokens were cut
//     from the text; the template renders the reply differently), the engine's
//     finish snapshot is not a prefix of the next prompt; so the state after those
//     tokens (all but the last, which may merge with what follows) is computed now,
//     in the background, starting from the longest cached prefix (the prompt's own
//     snapshot at worst).
// Tokenization runs on the front-end workers. `next_prefix` null: no warm-up (a
// prompt given as token ids).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "server/core/server_context.h"

namespace tnl::server {

void after_choice_finished(ServerContext& ctx, const std::string& key, const std::vector<int32_t>& prompt_ids,
                           const std::vector<int32_t>& generated, std::optional<std::string> next_prefix);

// The text a conversation's next turn starts with, for the request kinds that have
// one: `messages` (chat) or `prompt_text` (a text completion).
std::optional<std::string> next_turn_prefix(const ServerContext& ctx, const std::vector<ChatMessage>* messages,
                                            const std::string* prompt_text, const std::string& reply);

}  // namespace tnl::server
