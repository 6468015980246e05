// SamplingParams::validate(): request values checked before a sequence starts,
// with messages that name the parameter and the offending value.
#include <cmath>
#include <sstream>
#include <string>

#include "engine/sampling/sampler.h"

namespace tnl {
namespace {

// Range checks are written as !(inside) so that NaN is rejected too.
template <typename T>
Status outside(const char* name, const char* range, T value) {
  std::ostringstream message;
  message << name << " must be in " << range << ", got " << value;
  return out_of_range(message.str());
}

}  // namespace

Status SamplingParams::validate() const {
  if (!(temperature >= 0.0f && temperature <= 2.0f)) return outside("temperature", "[0, 2]", temperature);
  if (!(top_p > 0.0f && top_p <= 1.0f)) return outside("top_p", "(0, 1]", top_p);
  if (top_k < -1) return out_of_range("top_k must be >= -1 (-1 or 0: off), got " + std::to_string(top_k));
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return outside("min_p", "[0, 1]", min_p);
  if (!(repetition_penalty > 0.0f && repetition_penalty <= 10.0f)) {
    return outside("repetition_penalty", "(0, 10]", repetition_penalty);
  }
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f)) {
    return outside("presence_penalty", "[-2, 2]", presence_penalty);
  }
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f)) {
    return outside("frequency_penalty", "[-2, 2]", frequency_penalty);
  }
  if (logprobs < -1 || logprobs > 20) return outside("logprobs", "[-1, 20]", logprobs);
  return Status::ok();
}

}  // namespace tnl
