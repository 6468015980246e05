// Stop strings over streamed text. Invariant: pending_ never contains a whole
// stop string; it is the shortest tail of the text that could still grow into
// one, so everything before it is safe to emit. Given valid UTF-8 input, the
// cut falls on a character boundary: a held tail equals the start of a stop
// string, which begins with a whole character.
#include <algorithm>

#include "engine/sampling/sampler.h"

namespace tnl {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  // An empty stop string would match everywhere; it means nothing.
  std::erase_if(stops_, [](const std::string& stop) { return stop.empty(); });
}

size_t StopMatcher::held_back_length() const {
  size_t held = 0;
  for (const std::string& stop : stops_) {
    const size_t longest = std::min(stop.size() - 1, pending_.size());
    for (size_t length = longest; length > held; --length) {
      if (pending_.compare(pending_.size() - length, length, stop, 0, length) == 0) {
        held = length;
        break;
      }
    }
  }
  return held;
}

std::string StopMatcher::push(const std::string& text, bool* stopped) {
  if (stopped_) {
    if (stopped) *stopped = true;
    return {};
  }
  pending_ += text;

  // The earliest match wins; at one position the longest stop string does.
  size_t match_at = std::string::npos;
  const std::string* match = nullptr;
  for (const std::string& stop : stops_) {
    const size_t at = pending_.find(stop);
    if (at == std::string::npos) continue;
    if (at < match_at || (at == match_at && stop.size() > match->size())) {
      match_at = at;
      match = &stop;
    }
  }
  if (match) {
    std::string emitted = pending_.substr(0, match_at);
    matched_ = *match;
    stopped_ = true;
    pending_.clear();
    if (stopped) *stopped = true;
    return emitted;
  }

  if (stopped) *stopped = false;
  const size_t safe = pending_.size() - held_back_length();
  std::string emitted = pending_.substr(0, safe);
  pending_.erase(0, safe);
  return emitted;
}

std::string StopMatcher::flush() {
  std::string rest = std::move(pending_);
  pending_.clear();
  return rest;
}

}  // namespace tnl
