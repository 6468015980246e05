// Test fixtures for the engine: a deterministic fake Backend, an event collector,
// and a SentencePiece tokenizer trained at test time on the shipped corpus.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/backend.h"
#include "engine/scheduler/engine.h"
#include "engine/tokenizer/tokenizer.h"
#include "kernels/cpu/sampling_reference.h"
#include "tests/support/test_paths.h"

namespace tnl::test {

// Trains (once per process) and loads a tiny BPE tokenizer (800 ids, byte
// fallback; pad 0, bos 1, eos 2, unk 3). Returns null with a gtest failure on error.
inline std::unique_ptr<Tokenizer> load_test_tokenizer() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("tnl-engine-test-tok-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    const auto corpus = source_dir() / "tests/data/tokenizer_corpus.txt";
    const std::string command =
        "spm_train --input='" + corpus.string() + "' --model_prefix='" + (d / "tokenizer").string() +
        "' --vocab_size=800 --model_type=bpe --byte_fallback=true --pad_id=0 --bos_id=1 --eos_id=2 --unk_id=3"
        " --character_coverage=0.9995 --normalization_rule_name=identity --remove_extra_whitespaces=false"
        " --minloglevel=2 > '" + (d / "spm_train.log").string() + "' 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    return d;
  }();
  auto loaded = Tokenizer::load(dir);
  EXPECT_TRUE(loaded.has_value()) << loaded.status().to_string();
  return loaded.has_value() ? std::move(loaded).value() : nullptr;
}

// A Backend whose logits are a deterministic function of (position, input token):
// row = 0 everywhere except +10 at next_token(pos, token). Tracks each slot's
// position so that a plan breaking the chunk continuity fails the step.
class FakeBackend : public Backend {
 public:
  static constexpr int32_t kVocab = 800;
  static constexpr int32_t kEos = 2;

  // Default rule: cycles through ordinary ids (≥ 4: never pad/bos/eos/unk).
  static int32_t default_next(int64_t pos, int32_t token) {
    return 4 + static_cast<int32_t>((static_cast<int64_t>(token) * 31 + pos * 17 + 5) % (kVocab - 4));
  }

  explicit FakeBackend(int32_t num_slots, int32_t cache_slots = 0)
      : config_(tiny_model_config(kVocab, kEos)),
        positions_(num_slots, -1),
        cache_positions_(cache_slots, -1),
        penalty_rows_(num_slots, kVocab) {}

  const ModelConfig& config() const override { return config_; }
  std::string name() const override { return "fake"; }
  int32_t num_slots() const override { return static_cast<int32_t>(positions_.size()); }
  int64_t state_bytes_per_slot() const override { return 4096; }
  bool samples_on_device() const override { return device_sampling_; }
  int32_t num_state_slots(StateTier tier) const override {
    if (tier == StateTier::kLive) return num_slots();
    return tier == StateTier::kCache ? static_cast<int32_t>(cache_positions_.size()) : 0;
  }
  // The fake's "state" is the position a slot has reached, as 8 bytes.
  Status read_state(StateRef slot, std::span<std::byte> out) override {
    TNL_RETURN_IF_ERROR(validate_state_ref(slot, *this));
    std::lock_guard<std::mutex> lock(mu_);
    std::fill(out.begin(), out.end(), std::byte{0});
    std::memcpy(out.data(), &position_of(slot), std::min(out.size(), sizeof(int64_t)));
    return Status::ok();
  }
  Status write_state(StateRef slot, std::span<const std::byte> in) override {
    TNL_RETURN_IF_ERROR(validate_state_ref(slot, *this));
    std::lock_guard<std::mutex> lock(mu_);
    std::memcpy(&position_of(slot), in.data(), std::min(in.size(), sizeof(int64_t)));
    return Status::ok();
  }

  Status run_step(const StepPlan& plan, StepOutput* out) override {
    if (plan.while_running) plan.while_running();  // as the CPU backend: first, before any gate
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++steps_entered_;
      entered_.notify_all();
      if (gated_ && steps_done_ >= gate_after_) {
        ++held_;
        entered_.notify_all();
        gate_cv_.wait(lock, [&] { return !gated_ || steps_done_ < gate_after_; });
        --held_;
      }
    }
    if (step_delay_.count() > 0) std::this_thread::sleep_for(step_delay_);
    if (fatal_from_step_ > 0 && steps_entered() >= fatal_from_step_) {
      return fatal_error("fake backend: device lost (sticky error)");
    }
    TNL_RETURN_IF_ERROR(validate_step_plan(plan, config_, num_slots(), device_sampling_));
    TNL_RETURN_IF_ERROR(validate_state_copies(plan, *this));
    // As the CUDA backend: the allowed-token masks are filled once the forward
    // pass is under way, before anything samples.
    if (device_sampling_ && plan.prepare_sampling) TNL_RETURN_IF_ERROR(plan.prepare_sampling());
    std::lock_guard<std::mutex> lock(mu_);
    for (const StateCopy& copy : plan.copies_before) position_of(copy.to) = position_of(copy.from);
    copies_run_.insert(copies_run_.end(), plan.copies_before.begin(), plan.copies_before.end());
    out->vocab_size = kVocab;
    out->logits.clear();
    out->row_begin.clear();
    out->sampled.assign(plan.chunks.size(), SampledToken{});
    for (const SequenceChunk& c : plan.chunks) {
      for (int32_t t : c.tokens) {
        if (t == poison_token_) return internal_error("fake backend: poison token in the step");
      }
      if (c.start_pos != 0 && positions_[c.slot] != c.start_pos) {
        return internal_error("fake backend: slot " + std::to_string(c.slot) + " holds " +
                              std::to_string(positions_[c.slot]) + " tokens, chunk starts at " +
                              std::to_string(c.start_pos));
      }
      positions_[c.slot] = c.start_pos + static_cast<int64_t>(c.tokens.size());
      const int64_t first_row = out->num_rows();
      out->row_begin.push_back(c.logits == LogitsMode::kNone ? -1 : static_cast<int32_t>(first_row));
      for (size_t i = 0; i < c.tokens.size(); ++i) {
        const bool wanted = c.logits == LogitsMode::kAll || (c.logits == LogitsMode::kLast && i + 1 == c.tokens.size());
        if (!wanted) continue;
        const int64_t pos = c.start_pos + static_cast<int64_t>(i);
        const std::vector<float> row = row_for(pos, c.tokens[i]);
        out->logits.insert(out->logits.end(), row.begin(), row.end());
      }
      if (c.sample) {  // "on the device": the CPU reference of the GPU sampling kernel
        const int64_t last = c.start_pos + static_cast<int64_t>(c.tokens.size()) - 1;
        const std::vector<float> row = row_for(last, c.tokens.back());
        std::span<const uint32_t> mask;
        if (c.sample->allowed_mask) mask = *c.sample->allowed_mask;
        const PenaltyRowMode mode = c.sample->penalty_row;
        if (mode == PenaltyRowMode::kKept && !penalty_rows_.built(c.slot)) {
          return internal_error("fake backend: slot " + std::to_string(c.slot) + "'s penalty row was never built");
        }
        const std::vector<PenaltyEntry> entries = penalty_rows_.entries(c.slot, mode, c.sample->penalties);
        SampledToken& sampled = out->sampled[out->row_begin.size() - 1];
        sampled = ref::sample_row(row, c.sample->params, entries, c.sample->want_logprob, mask).sampled;
        if (mode != PenaltyRowMode::kNone) penalty_rows_.count(c.slot, sampled.token);
      }
      chunks_run_.push_back(c);
    }
    for (const StateCopy& copy : plan.copies_after) position_of(copy.to) = position_of(copy.from);
    copies_run_.insert(copies_run_.end(), plan.copies_after.begin(), plan.copies_after.end());
    ++steps_done_;
    return Status::ok();
  }

  std::vector<StateCopy> copies_run() const {
    std::lock_guard<std::mutex> lock(mu_);
    return copies_run_;
  }

  // Configuration (set before the engine starts, except the gate).
  void set_next_token(std::function<int32_t(int64_t, int32_t)> f) { next_ = std::move(f); }
  void set_step_delay(std::chrono::milliseconds d) { step_delay_ = d; }
  void set_poison_token(int32_t t) { poison_token_ = t; }
  // Accept chunks with `sample` and sample them here, as the CUDA backend does on the GPU.
  void set_device_sampling(bool on) { device_sampling_ = on; }
  // Rows of spread logits (a fixed pseudo-random value in [-3, 3] per (pos, token,
  // id), +3 on the next token) instead of one-hot rows: sampling then really draws.
  void set_spread_logits(bool on) { spread_logits_ = on; }
  // The row after `token` is all NaN (a broken model, as seen by the sampler).
  void set_nan_token(int32_t token) { nan_token_ = token; }
  // From the n-th step on, fail every step with a fatal (sticky) error.
  void set_fatal_from_step(int64_t n) { fatal_from_step_ = n; }
  int64_t steps_entered() const {
    std::lock_guard<std::mutex> lock(mu_);
    return steps_entered_;
  }

  // Steps after the first `n` completed ones block until release().
  void gate_after(int64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    gated_ = true;
    gate_after_ = n;
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    gated_ = false;
    gate_cv_.notify_all();
  }
  // Holds every step from now on (the one running, if any, completes) until release().
  void hold() { gate_after(steps_done()); }
  // Waits until a step sits at the gate.
  bool wait_held(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    return entered_.wait_for(lock, timeout, [&] { return held_ > 0; });
  }
  // Waits until at least `n` steps have entered run_step.
  bool wait_entered(int64_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    return entered_.wait_for(lock, timeout, [&] { return steps_entered_ >= n; });
  }
  int64_t steps_done() const {
    std::lock_guard<std::mutex> lock(mu_);
    return steps_done_;
  }
  std::vector<SequenceChunk> chunks_run() const {
    std::lock_guard<std::mutex> lock(mu_);
    return chunks_run_;
  }

 private:
  int64_t& position_of(StateRef ref) {
    return ref.tier == StateTier::kLive ? positions_[size_t(ref.index)] : cache_positions_[size_t(ref.index)];
  }

  ModelConfig config_;
  std::vector<int64_t> positions_;        // per slot: tokens computed so far
  std::vector<int64_t> cache_positions_;  // per cache slot: the position its snapshot holds
  ref::PenaltyRowsReference penalty_rows_;  // "device" sampling: the per-slot penalty rows
  std::vector<StateCopy> copies_run_;
  std::function<int32_t(int64_t, int32_t)> next_ = default_next;
  std::chrono::milliseconds step_delay_{0};
  int32_t poison_token_ = -1;
  bool device_sampling_ = false;
  bool spread_logits_ = false;
  int64_t fatal_from_step_ = 0;
  int32_t nan_token_ = -1;

  // The logits row the fake model gives after `token` at `pos`.
  std::vector<float> row_for(int64_t pos, int32_t token) const {
    std::vector<float> row(kVocab, 0.0f);
    if (token == nan_token_) {
      row.assign(kVocab, std::nanf(""));
      return row;
    }
    if (!spread_logits_) {
      row[static_cast<size_t>(next_(pos, token))] = 10.0f;
      return row;
    }
    uint64_t h = uint64_t(pos) * 0x9E3779B97F4A7C15ull ^ uint64_t(token) * 0xBF58476D1CE4E5B9ull;
    for (float& x : row) {
      h ^= h >> 31;
      h *= 0x94D049BB133111EBull;
      h ^= h >> 29;
      x = float(int64_t(h % 6001) - 3000) / 1000.0f;
    }
    row[static_cast<size_t>(next_(pos, token))] += 3.0f;
    return row;
  }

  mutable std::mutex mu_;
  std::condition_variable entered_;
  std::condition_variable gate_cv_;
  bool gated_ = false;
  int64_t gate_after_ = 0;
  int64_t steps_entered_ = 0;
  int32_t held_ = 0;
  int64_t steps_done_ = 0;
  std::vector<SequenceChunk> chunks_run_;
};

// Collects one request's events (the sink runs on the engine thread).
class EventCollector {
 public:
  EventSink sink() {
    return [this](GenerationEvent&& e) {
      std::lock_guard<std::mutex> lock(mu_);
      if (on_event_) on_event_(e);
      events_.push_back(std::move(e));
      cv_.notify_all();
    };
  }
  void on_event(std::function<void(const GenerationEvent&)> f) { on_event_ = std::move(f); }

  bool wait_finished(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return !events_.empty() && events_.back().finish != FinishReason::kNone; });
  }
  bool wait_events(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return events_.size() >= n; });
  }
  std::vector<GenerationEvent> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::vector<int32_t> tokens() const {
    std::vector<int32_t> all;
    for (const auto& e : events()) all.insert(all.end(), e.token_ids.begin(), e.token_ids.end());
    return all;
  }
  std::string text() const {
    std::string all;
    for (const auto& e : events()) all += e.text;
    return all;
  }
  FinishReason finish() const {
    auto ev = events();
    return ev.empty() ? FinishReason::kNone : ev.back().finish;
  }
  Status error() const {
    auto ev = events();
    return ev.empty() ? Status::ok() : ev.back().error;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<GenerationEvent> events_;
  std::function<void(const GenerationEvent&)> on_event_;
};

}  // namespace tnl::test
