#include "tools/constraint_bench/bench_vocabulary.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "engine/scheduler/constraint_vocabulary.h"
#include "engine/tokenizer/tokenizer.h"

namespace tnl::tools {

std::shared_ptr<TokenVocabulary> synthetic_vocabulary(const std::vector<std::string>& corpus, int32_t size) {
  auto v = std::make_shared<TokenVocabulary>();
  std::unordered_set<std::string> taken;
  auto add = [&](const std::string& bytes, bool special) {
    if (static_cast<int32_t>(v->bytes.size()) >= size) return;
    if (!special && !taken.insert(bytes).second) return;
    v->bytes.push_back(bytes);
    v->special.push_back(special);
  };
  for (const char* s : {"<pad>", "<s>", "</s>", "<unk>"}) add(s, true);
  v->eos_id = 2;
  for (int b = 0; b < 256; ++b) add(std::string(1, static_cast<char>(b)), false);
  for (const char* p : {"{\"", "\":", "\": ", "\",", "\", \"", "\",\"", "\"}", "\"},", "},", "}]", "[{", "[\"",
                        "\"]", "\": [", "\": {", ", ", " \"", "\":\"", "\": \"", "{}", "[]", "true", "false", "null",
                        "\\n", "\\\"", "\\u", "  ", "    ", "\n", "\n  ", "\n    "}) {
    add(p, false);
  }
  for (int n = 0; n < 1000; ++n) {
    const std::string digits = std::to_string(n);
    add(digits, false);
    std::string spaced(1, ' ');
    spaced += digits;
    add(spaced, false);
  }
  std::unordered_map<std::string, uint32_t> counts;
  for (const std::string& text : corpus) {
    for (size_t i = 0; i < text.size(); ++i) {
      for (size_t len = 2; len <= 16 && i + len <= text.size(); ++len) {
        if (text[i + len - 1] == '\n') break;
        ++counts[text.substr(i, len)];
      }
    }
  }
  std::vector<std::pair<uint64_t, std::string>> ranked;
  ranked.reserve(counts.size());
  for (auto& [s, c] : counts) ranked.push_back({uint64_t{c} * (s.size() - 1), s});
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (const auto& [score, s] : ranked) {
    if (static_cast<int32_t>(v->bytes.size()) >= size) break;
    add(s, false);
  }
  return v;
}

Expected<std::shared_ptr<TokenVocabulary>> tokenizer_vocabulary(const std::filesystem::path& dir) {
  TNL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::load(dir));
  return constraint_vocabulary(*tok, tok->vocab_size());
}

std::vector<int32_t> greedy_tokenize(const TokenVocabulary& vocabulary, const std::string& text) {
  std::unordered_map<std::string, int32_t> ids;
  size_t longest = 0;
  for (int32_t id = 0; id < vocabulary.size(); ++id) {
    const bool special = id < static_cast<int32_t>(vocabulary.special.size()) && vocabulary.special[id];
    if (special || id == vocabulary.eos_id || vocabulary.bytes[id].empty()) continue;
    ids.emplace(vocabulary.bytes[id], id);
    longest = std::max(longest, vocabulary.bytes[id].size());
  }
  std::vector<int32_t> out;
  for (size_t pos = 0; pos < text.size();) {
    size_t len = std::min(longest, text.size() - pos);
    for (; len > 0; --len) {
      auto it = ids.find(text.substr(pos, len));
      if (it != ids.end()) {
        out.push_back(it->second);
        break;
      }
    }
    if (len == 0) return {};  // a byte no token covers
    pos += len;
  }
  return out;
}

}  // namespace tnl::tools
