#include "tools/bench/kernel_bench.h"

#include <algorithm>
#include <cuda_bf16.h>
#include <spdlog/spdlog.h>

#include <string>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/gemm.h"
#include "engine/cuda/state_store.h"
#include "kernels/cuda/copy_states.h"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/small_batch_linear.h"
#include "tools/bench/bench_inputs.h"

namespace tnl::bench {
namespace {

using T = __nv_bfloat16;
constexpr int64_t kBlock = 64;  // the Lightning tile's B for e = e_k = 128

// wgmma: LightningArgs::allow_wgmma (false: the mma.sync tile, for comparison).
// state_parts: plan_lightning's (1: the states pass walks whole segments).
Expected<Figure> prefill_attention(const KernelBenchOptions& o, int64_t n, bool wgmma, int32_t state_parts,
                                   const Ceilings& c, GpuTimer& timer, cudaStream_t stream) {
  const int64_t b = o.batch, H = o.heads, e = o.head_dim, ek = e, N = b * n;
  LightningInputs in;
  TNL_RETURN_IF_ERROR(in.make(b, n, H, e, 2 * c.sm_count, stream, state_parts));
  in.args.allow_wgmma = wgmma;
  TNL_ASSIGN_OR_RETURN(const double ms, timer.median_ms(stream, 2, o.reps, [&](int) { return in.launch(stream); }));

  Figure f;
  f.section = "kernel";
  f.name = "prefill attn b=" + std::to_string(b) + " h=" + std::to_string(H) + " e=" + std::to_string(e) +
           " n=" + std::to_string(n) + (wgmma ? "" : " (mma.sync)") +
           (state_parts == 1 && in.plan.num_parts > 0 ? " (a states-pass CTA a segment)" : "");
  f.time_ms = ms;
  // Each of q, k, v read once and o written once (bf16), the final states written (fp32).
  f.bytes = double(N * H) * double(2 * ek + 2 * e) * sizeof(T) + double(b * H * ek * e) * 4.0;
  // Per token and head: causal intra-block QKᵀ and PV (B/2 keys on average, 2 flops
  // each) plus the inter-block q·S and the state update k vᵀ.
  f.flops = double(N * H) * (double(kBlock) * double(ek + e) + 4.0 * double(ek * e));
  f.extra = {{"segments", in.plan.num_segments}, {"state_parts", in.plan.num_parts}, {"block", kBlock}};
  return f;
}

// column_slices, rows_in_flight: DecodeArgs's (0: the launcher's choice).
Expected<Figure> decode_step(const KernelBenchOptions& o, int64_t batch, int32_t column_slices, int32_t rows_in_flight,
                             GpuTimer& timer, cudaStream_t stream) {
  const int64_t H = o.heads, e = o.head_dim, ek = e, D = H * e;
  // Slots are spread over a pool larger than L2 so that no run finds its states cached.
  const int64_t slot_floats = H * ek * e;
  const int64_t pool = std::max<int64_t>(batch, (int64_t(512) << 20) / (slot_floats * 4));
  DeviceBuffer<T> qkvu, out;
  DeviceBuffer<float> states, theta, rates;
  TNL_RETURN_IF_ERROR(qkvu.allocate(batch * 4 * D));
  TNL_RETURN_IF_ERROR(out.allocate(batch * D));
  TNL_RETURN_IF_ERROR(states.allocate(pool * slot_floats));
  TNL_CUDA_TRY(cuda::fill_uniform(qkvu.get(), qkvu.size(), 21, 1.0f, stream));
  TNL_CUDA_TRY(cuda::fill_uniform_f32(states.get(), states.size(), 22, 0.1f, stream));
  TNL_RETURN_IF_ERROR(upload(rates_for(H), &rates));
  std::vector<int32_t> positions(static_cast<size_t>(batch), 1000), slots(static_cast<size_t>(batch));
  const int64_t rotations = pool / batch;
  std::vector<DeviceBuffer<int32_t>> slot_sets(static_cast<size_t>(rotations));
  for (int64_t r = 0; r < rotations; ++r) {
    for (int64_t i = 0; i < batch; ++i) slots[size_t(i)] = int32_t(r * batch + i);
    TNL_RETURN_IF_ERROR(upload(slots, &slot_sets[size_t(r)]));
  }
  DeviceBuffer<int32_t> d_positions;
  TNL_RETURN_IF_ERROR(upload(positions, &d_positions));
  cuda::DecodeArgs a;
  a.batch = batch;
  a.heads = H;
  a.e = e;
  a.rates = rates.get();
  a.positions = d_positions.get();
  a.layer_state = states.get();
  a.slot_stride = slot_floats;
  a.column_slices = column_slices;
  a.rows_in_flight = rows_in_flight;
  TNL_ASSIGN_OR_RETURN(const double ms, timer.median_ms(stream, 3, o.reps, [&](int i) {
    cuda::DecodeArgs run = a;
    run.slots = slot_sets[size_t(i % rotations)].get();
    return cuda::recurrent_decode<T>(qkvu.get(), run, out.get(), stream);
  }));

  Figure f;
  f.section = "kernel";
  const int64_t slices = column_slices > 0 ? column_slices : cuda::decode_column_slices(batch, H, e);
  f.name = "decode step b=" + std::to_string(batch) + " h=" + std::to_string(H) + " e=" + std::to_string(e) +
           (slices > 1 ? " (" + std::to_string(slices) + " column slices)" : "");
  f.time_ms = ms;
  // fp32 state read and written once; q, k, v read, o written (bf16).
  f.bytes = double(batch * slot_floats) * 8.0 + double(batch * D) * 4.0 * sizeof(T);
  f.flops = double(batch * slot_floats) * 4.0;  // S = λS + k vᵀ (2) and o = qᵀS (2) per state element
  return f;
}

// The fused small-batch linear of a decode layer at n rows: [out, in] bf16 weights
// streamed once. GLU mode: the stacked [2·out, in] matrix.
Expected<Figure> small_batch_linear(int64_t n, int64_t in, int64_t out, bool glu, GpuTimer& timer,
                                    cudaStream_t stream) {
  const int64_t rows = glu ? 2 * out : out;
  // Several weight copies, rotated, so that no run finds its weights in L2.
  const int64_t copies = std::max<int64_t>(2, (int64_t(256) << 20) / (rows * in * 2));
  DeviceBuffer<T> weights, y;
  DeviceBuffer<float> x;
  TNL_RETURN_IF_ERROR(weights.allocate(copies * rows * in));
  TNL_RETURN_IF_ERROR(x.allocate(n * in));
  TNL_RETURN_IF_ERROR(y.allocate(n * out));
  TNL_CUDA_TRY(cuda::fill_uniform(weights.get(), weights.size(), 31, 0.03f, stream));
  TNL_CUDA_TRY(cuda::fill_uniform_f32(x.get(), x.size(), 32, 1.0f, stream));
  cuda::SmallBatchLinearArgs<T> a;
  a.n = n;
  a.in = in;
  a.out = out;
  a.input = cuda::LinearInput::kNormF32;
  a.output = glu ? cuda::LinearOutput::kGluProductT : cuda::LinearOutput::kStoreT;
  a.x_f32 = x.get();
  a.y = y.get();
  TNL_ASSIGN_OR_RETURN(const double ms, timer.median_ms(stream, 3, 20, [&](int i) {
    cuda::SmallBatchLinearArgs<T> run = a;
    run.weight = weights.get() + (i % copies) * rows * in;
    return cuda::small_batch_linear(run, stream);
  }));
  Figure f;
  f.section = "kernel";
  f.name = std::string("norm+linear") + (glu ? "+glu" : "") + " n=" + std::to_string(n) + " [" +
           std::to_string(rows) + "x" + std::to_string(in) + "]";
  f.time_ms = ms;
  f.bytes = double(rows * in) * sizeof(T) + double(n) * double(in * 4 + out * 2);
  f.flops = 2.0 * double(n * rows * in);
  return f;
}

// The channel mixer's first half at n rows of a prefill step (k = in, G = glu):
// fused, the [W1; W2] GEMM with the SGLU product in its epilogue (sglu_gemm.cu);
// else cuBLASLt's GEMM (its heuristic's pick) and the product pass, as the engine
// runs them without it. Floor: the GEMM's FLOPs, or its weights and the n rows
// in and out once.
Expected<Figure> sglu_gemm(int64_t n, int64_t in, int64_t glu, bool fused, GpuTimer& timer, cudaStream_t stream) {
  const int64_t copies = std::max<int64_t>(2, (int64_t(256) << 20) / (2 * glu * in * 2));
  DeviceBuffer<T> weights, a, h12, p;
  DeviceBuffer<std::byte> workspace;
  TNL_RETURN_IF_ERROR(weights.allocate(copies * 2 * glu * in));
  TNL_RETURN_IF_ERROR(a.allocate(n * in));
  TNL_RETURN_IF_ERROR(h12.allocate(n * 2 * glu));
  TNL_RETURN_IF_ERROR(p.allocate(n * glu));
  TNL_RETURN_IF_ERROR(workspace.allocate(32 << 20));
  TNL_CUDA_TRY(cuda::fill_uniform(weights.get(), weights.size(), 33, 0.03f, stream));
  TNL_CUDA_TRY(cuda::fill_uniform(a.get(), a.size(), 34, 1.0f, stream));
  TNL_ASSIGN_OR_RETURN(auto gemm, GemmRunner::create(CUDA_R_16BF, stream, workspace.get(), size_t(workspace.bytes())));
  const GemmShape shape{n, in, 2 * glu, false, false};
  TNL_ASSIGN_OR_RETURN(const double ms, timer.median_ms(stream, 3, 20, [&](int i) -> cudaError_t {
    const T* w = weights.get() + (i % copies) * 2 * glu * in;
    if (fused) return cuda::sglu_gemm<T>(a.get(), n, in, w, glu, p.get(), stream);
    if (!gemm->run(shape, a.get(), w, h12.get(), 0.0f).is_ok()) return cudaErrorUnknown;
    return cuda::sglu_product<T>(h12.get(), n, glu, p.get(), stream);
  }));
  Figure f;
  f.section = "kernel";
  f.name = std::string(fused ? "[W1;W2] GEMM + SGLU fused" : "[W1;W2] GEMM (cuBLASLt) + SGLU pass") +
           " n=" + std::to_string(n) + " [" + std::to_string(2 * glu) + "x" + std::to_string(in) + "]";
  f.time_ms = ms;
  f.bytes = double(2 * glu * in) * sizeof(T) + double(n) * double(in + glu) * sizeof(T);
  f.flops = 2.0 * double(n) * double(2 * glu) * double(in);
  return f;
}

// The prefix cache's snapshot kernel alone: `copies` whole states from live slots
// (layered layout) to cache slots (packed) of the backend's own StateStore, one
// launch, against 2 × state bytes ÷ bandwidth. The engine's "state" figures time
// the same copies as whole copy-only steps (upload, launch, synchronisation).
Expected<Figure> state_copy(const ModelConfig& model, int32_t copies, GpuTimer& timer, cudaStream_t stream) {
  StateStore store;
  TNL_RETURN_IF_ERROR(store.init(model, copies, copies, /*host_slots=*/0, stream));
  cuda::StateCopyBatch batch;
  batch.count = copies;
  for (int32_t i = 0; i < copies; ++i) {
    batch.jobs[i] = {store.address({StateTier::kLive, i}), store.address({StateTier::kCache, i})};
  }
  TNL_ASSIGN_OR_RETURN(const double ms, timer.median_ms(stream, 3, 20, [&](int) {
    return cuda::copy_states(store.geometry(), batch, stream);
  }));
  const double state_bytes = double(store.state_floats()) * sizeof(float);
  Figure f;
  f.section = "kernel";
  f.name = "state copy kernel, snapshot live -> cache, " + std::to_string(copies) + (copies == 1 ? " slot" : " slots");
  f.time_ms = ms;
  f.bytes = 2.0 * state_bytes * double(copies);
  f.extra = {{"state_bytes", state_bytes}, {"copies", copies}};
  return f;
}

// Sampling 256 rows of a 64k vocabulary on the GPU; each row read at least once.
// top_k 0: off. penalties: each row also applies a repetition, frequency and
// presence penalty from its slot's kept penalty row (PenaltyRowMode::kKept),
// which it reads whole.
Expected<Figure> sampling(bool greedy, int32_t top_k, bool penalties, GpuTimer& timer, cudaStream_t stream) {
  const int64_t rows = 256, V = 64000, words = (V + 31) / 32;
  DeviceBuffer<float> logits, work;
  DeviceBuffer<cuda::SampleRowArgs> args;
  DeviceBuffer<SampledToken> out;
  DeviceBuffer<int32_t> counts;
  DeviceBuffer<uint32_t> prompt_bits;
  TNL_RETURN_IF_ERROR(logits.allocate(rows * V));
  TNL_RETURN_IF_ERROR(args.allocate(rows));
  TNL_RETURN_IF_ERROR(out.allocate(rows));
  TNL_CUDA_TRY(cuda::fill_uniform_f32(logits.get(), logits.size(), 41, 8.0f, stream));
  cuda::PenaltyRows penalty_rows;
  if (penalties) {
    TNL_RETURN_IF_ERROR(work.allocate(rows * V));
    TNL_RETURN_IF_ERROR(counts.allocate(rows * V));
    TNL_RETURN_IF_ERROR(prompt_bits.allocate(rows * words));
    // A prompt of ~1/8 of the vocabulary and no output yet: the counts grow by a
    // token a launch, which the timing repeats.
    TNL_CUDA_TRY(cudaMemsetAsync(counts.get(), 0, size_t(counts.bytes()), stream));
    TNL_CUDA_TRY(cudaMemsetAsync(prompt_bits.get(), 0x11, size_t(prompt_bits.bytes()), stream));
    penalty_rows = {counts.get(), prompt_bits.get()};
  }
  std::vector<cuda::SampleRowArgs> host(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    cuda::SampleRowArgs& a = host[size_t(r)];
    a.row = int32_t(r);
    if (!greedy) {
      a.params.temperature = 0.8f;
      a.params.inv_temperature = 1.0f / 0.8f;
      a.params.top_p = 0.9f;
      a.params.top_k = top_k;
      a.params.uniform = double(r) / double(rows);
    }
    if (penalties) {
      a.params.repetition_penalty = 1.1f;
      a.params.frequency_penalty = 0.2f;
      a.params.presence_penalty = 0.1f;
      a.penalty_slot = int32_t(r);
      a.penalty_mode = PenaltyRowMode::kKept;
    }
  }
  TNL_RETURN_IF_ERROR(upload(host, &args));
  TNL_ASSIGN_OR_RETURN(const double ms, timer.median_ms(stream, 3, 20, [&](int) {
    return cuda::sample_rows(logits.get(), V, args.get(), rows, nullptr, nullptr, penalty_rows, work.get(), out.get(),
                             stream);
  }));
  Figure f;
  f.section = "kernel";
  f.name = std::string("sample 256 rows V=64000 ") +
           (greedy ? "greedy" : top_k > 0 ? "T=0.8 top-k=" + std::to_string(top_k) + " top-p=0.9" : "T=0.8 top-p=0.9") +
           (penalties ? " + penalty rows" : "");
  f.time_ms = ms;
  // One pass over every row (and its penalty row): the fewest bytes sampling can read.
  f.bytes = double(rows * V) * 4.0 + (penalties ? double(rows * V) * 4.0 + double(rows * words) * 4.0 : 0.0);
  return f;
}

}  // namespace

Expected<std::vector<Figure>> run_kernel_benchmarks(const ModelConfig& model, const KernelBenchOptions& o,
                                                    const Ceilings& c, GpuTimer& timer, cudaStream_t stream) {
  std::vector<Figure> figures;
  auto keep = [&](Figure f) {  // logged as it is measured
    spdlog::info("{}: {:.4f} ms ({:.0f}% of floor)", f.name, f.time_ms, 100 * f.ratio(c));
    figures.push_back(std::move(f));
  };
  for (int64_t n : o.prefill_lengths) {
    TNL_ASSIGN_OR_RETURN(Figure f, prefill_attention(o, n, true, 0, c, timer, stream));
    const auto parts = f.extra.at("state_parts").get<int64_t>(), segments = f.extra.at("segments").get<int64_t>();
    keep(std::move(f));
    if (parts > segments - o.batch) {
      // The states pass over whole segments, as before its parts were cut finer, for comparison.
      TNL_ASSIGN_OR_RETURN(Figure whole, prefill_attention(o, n, true, 1, c, timer, stream));
      keep(std::move(whole));
    }
    if (o.head_dim != 128 || !cuda::lightning_wgmma_available()) continue;
    // The same launch on the mma.sync tile, for comparison.
    TNL_ASSIGN_OR_RETURN(Figure sync, prefill_attention(o, n, false, 0, c, timer, stream));
    keep(std::move(sync));
  }
  for (int64_t b : o.decode_batches) {
    TNL_ASSIGN_OR_RETURN(Figure f, decode_step(o, b, 0, 0, timer, stream));
    keep(std::move(f));
    // The same launch with 16 state rows in flight a thread (two CTAs an SM), for comparison.
    TNL_ASSIGN_OR_RETURN(Figure sixteen, decode_step(o, b, 0, 16, timer, stream));
    sixteen.name += " (16 rows in flight)";
    keep(std::move(sixteen));
    if (cuda::decode_column_slices(b, o.heads, o.head_dim) == 1) continue;
    // The same launch with one CTA a head, for comparison.
    TNL_ASSIGN_OR_RETURN(Figure one, decode_step(o, b, 1, 0, timer, stream));
    one.name += " (one CTA a head)";
    keep(std::move(one));
  }
  // The 385M shape's decode projections at batch 1: qkvu, and [l1; l2] with the GLU product.
  for (const bool glu : {false, true}) {
    TNL_ASSIGN_OR_RETURN(Figure f, small_batch_linear(1, 1024, glu ? 2816 : 4096, glu, timer, stream));
    keep(std::move(f));
  }
  if (cuda::sglu_gemm_available() && cuda::sglu_gemm_fits(model.dim, model.glu_dim)) {
    for (const int64_t n : {512, 2048, 8192}) {
      for (const bool fused : {true, false}) {
        TNL_ASSIGN_OR_RETURN(Figure f, sglu_gemm(n, model.dim, model.glu_dim, fused, timer, stream));
        keep(std::move(f));
      }
    }
  }
  for (const int32_t copies : {1, 16}) {
    TNL_ASSIGN_OR_RETURN(Figure f, state_copy(model, copies, timer, stream));
    keep(std::move(f));
  }
  for (const int32_t mode : {-1, 0, 50, 1000}) {  // greedy; top-p; top-k 50 and top-p; top-p with penalty rows
    TNL_ASSIGN_OR_RETURN(Figure f, sampling(mode < 0, mode == 50 ? 50 : 0, mode == 1000, timer, stream));
    keep(std::move(f));
  }
  return figures;
}

}  // namespace tnl::bench
