#include "engine/cpu/tiled_linear.h"

#include <algorithm>

#include "kernels/cpu/reference.h"

namespace tnl {
namespace {
// Columns per task: big enough that one BLAS call amortises its packing, small
// enough that a decode step (one row per block) still spreads over all cores.
constexpr int64_t kColumnTile = 256;
}  // namespace

void tiled_linear(const std::vector<RowBlock>& blocks, const float* w, const float* bias, int64_t in,
                  int64_t out, int threads) {
  const int64_t tiles = (out + kColumnTile - 1) / kColumnTile;
  const int64_t tasks = int64_t(blocks.size()) * tiles;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t task = 0; task < tasks; ++task) {
    const RowBlock& b = blocks[task / tiles];
    const int64_t col0 = (task % tiles) * kColumnTile;
    const int64_t cols = std::min(kColumnTile, out - col0);
    // y[:, col0:col0+cols] = x · W[col0:col0+cols, :]ᵀ — written through a row stride of `out`.
    ref::linear_strided(b.x, w + col0 * in, bias ? bias + col0 : nullptr, b.rows, in, cols,
                        b.y + col0, out);
  }
}

}  // namespace tnl
