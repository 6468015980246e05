// A second, independent forward pass straight from model-spec §4 with the
// quadratic attention form (§5.1) over the whole sequence: the ground truth the
// backends' blocked/recurrent/chunked computations are tested against.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/checkpoint/checkpoint.h"

namespace tnl::test {

// Logits [n, V] for every position of `tokens` (positions 0 … n−1).
std::vector<float> reference_logits(const Checkpoint& checkpoint, const std::vector<int32_t>& tokens);

}  // namespace tnl::test
