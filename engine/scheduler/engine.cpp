// Engine: the thread and the handoff around ContinuousBatcher.
//
// Threads: one step-loop thread (started in create(), joined in ~Engine). It alone
// touches the batcher (scheduler, request states, backend) and calls the sinks.
// Other threads reach it only through `inbox_`/`cancels_` under `mu_`, and read
// the stats the loop publishes (also under `mu_`) after each step.
#include "engine/scheduler/engine.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "engine/constraints/constraint_cache.h"
#include "engine/scheduler/constraint_vocabulary.h"
#include "engine/scheduler/continuous_batcher.h"
#include "engine/scheduler/request_validation.h"

namespace tnl {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kTimeout: return "timeout";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

namespace {

// One submit() or submit_group() call: a group of one or more requests.
struct Submission {
  std::vector<uint64_t> ids;
  std::vector<GenerationRequest> requests;
  std::vector<EventSink> sinks;
  EngineClock::time_point arrival;
  bool fork = false;  // the requests share one prompt: prefill it once
  // The first prompt's prefix-cache keys, computed by the submitting thread so
  // that the step loop does not hash the prompt (token_hash_chain.h).
  TokenHashChain prompt_keys;
};

}  // namespace

struct Engine::Impl {
  Impl(std::unique_ptr<Backend> b, std::unique_ptr<Tokenizer> t, EngineOptions o, SchedulerLimits limits)
      : backend(std::move(b)),
        tokenizer(std::move(t)),
        options(o),
        batcher(*backend, *tokenizer, options, limits),
        constraints(constraint_vocabulary(*tokenizer, int32_t(backend->config().vocab_size))) {
    published = batcher.stats();
    layout = batcher.layout();
    batcher.set_on_dead([this](const Status& reason) {
      std::lock_guard<std::mutex> lock(mu);
      dead = reason;
    });
    batcher.set_on_scheduled([this](int32_t running, int32_t waiting) {
      std::lock_guard<std::mutex> lock(mu);
      published.running = running;
      published.waiting = waiting;
    });
  }

  void run_loop();
  void publish_stats();  // loop thread

  std::unique_ptr<Backend> backend;
  std::unique_ptr<Tokenizer> tokenizer;
  const EngineOptions options;
  ContinuousBatcher batcher;  // step-loop thread only
  StateBlobLayout layout;     // constant after construction
  ConstraintCache constraints;  // thread-safe

  mutable std::mutex mu;
  std::condition_variable wake;      // new submissions, cancels, shutdown
  // Guarded by mu:
  std::vector<Submission> inbox;
  std::vector<uint64_t> cancels;
  std::optional<Status> abort_reason;  // abort_all() asked; the loop applies it
  std::vector<std::function<void(ContinuousBatcher&)>> tasks;  // run by the loop between steps
  Status dead;                         // copied from the batcher once it latches
  bool stopping = false;
  bool draining = false;
  uint64_t next_id = 1;
  EngineStats published;             // waiting also counts requests taken from inbox but not yet stepped

  std::thread loop;                  // last: started once everything above exists
};

void Engine::Impl::publish_stats() {
  EngineStats s = batcher.stats();
  std::lock_guard<std::mutex> lock(mu);
  published = std::move(s);
  if (dead.is_ok() && !batcher.dead().is_ok()) dead = batcher.dead();
}

void Engine::Impl::run_loop() {
  for (;;) {
    std::vector<Submission> arrivals;
    std::vector<uint64_t> cancelled;
    std::optional<Status> abort;
    std::vector<std::function<void(ContinuousBatcher&)>> todo;
    bool stop = false;
    {
      std::unique_lock<std::mutex> lock(mu);
      // batcher.has_work() is loop-owned state read by the loop thread itself.
      wake.wait(lock, [&] {
        return stopping || !inbox.empty() || !cancels.empty() || abort_reason || !tasks.empty() ||
               batcher.has_work();
      });
      arrivals.swap(inbox);
      cancelled.swap(cancels);
      abort.swap(abort_reason);
      todo.swap(tasks);
      stop = stopping;
      // Keep them counted as waiting while they move from the inbox into the batcher.
      for (const Submission& a : arrivals) published.waiting += static_cast<int32_t>(a.ids.size());
    }
    for (Submission& s : arrivals) {
      if (s.fork) {
        batcher.add_group(s.ids, std::move(s.requests), std::move(s.sinks), s.arrival, std::move(s.prompt_keys));
      } else {
        batcher.add(s.ids[0], std::move(s.requests[0]), std::move(s.sinks[0]), s.arrival, std::move(s.prompt_keys));
      }
    }
    for (uint64_t id : cancelled) batcher.cancel(id);
    if (abort) batcher.fail_all(*abort);
    for (auto& task : todo) {
      try {
        task(batcher);
      } catch (const std::exception& e) {
        spdlog::error("engine: a loop task threw: {}", e.what());
      }
    }
    if (!batcher.dead().is_ok()) {
      // Latched dead: whatever arrived meanwhile fails at once; no step runs again.
      batcher.fail_all(batcher.dead());
      publish_stats();
      if (stop) return;
      continue;
    }
    if (stop) {
      batcher.cancel_all();
      publish_stats();
      return;
    }
    batcher.expire(EngineClock::now());
    try {
      batcher.step();
    } catch (const std::exception& e) {
      // Not expected (backend exceptions are already turned into a failed step);
      // keep the thread alive and the engine serving rather than terminate.
      spdlog::error("engine: step threw: {}", e.what());
      batcher.fail_all(internal_error(std::string("engine step failed: ") + e.what()));
    }
    publish_stats();
  }
}

Expected<std::unique_ptr<Engine>> Engine::create(std::unique_ptr<Backend> backend,
                                                 std::unique_ptr<Tokenizer> tokenizer, EngineOptions options) {
  if (!backend) return invalid_argument("Engine::create: no backend");
  if (!tokenizer) return invalid_argument("Engine::create: no tokenizer");
  TNL_RETURN_IF_ERROR(validate_engine_options(options));
  SchedulerLimits limits;
  limits.num_slots = std::min(options.max_num_seqs, backend->num_slots());
  limits.max_num_batched_tokens = options.max_num_batched_tokens;
  limits.prefill_chunk = options.prefill_chunk;
  if (options.prefix_cache) {
    limits.cache_slots = backend->num_state_slots(StateTier::kCache);
    limits.host_cache_slots = backend->num_state_slots(StateTier::kHost);
  }
  TNL_RETURN_IF_ERROR(validate_scheduler_limits(limits));
  if (tokenizer->vocab_size() > backend->config().vocab_size) {
    spdlog::warn("the tokenizer has {} ids but the model only {}: prompts using the extra ids will be rejected",
                 tokenizer->vocab_size(), backend->config().vocab_size);
  }

  const int64_t state_bytes = backend->state_bytes_per_slot();
  const int64_t total_bytes = state_bytes * limits.num_slots;
  spdlog::info(
      "engine: backend {}, {} slots (max_num_seqs {}, backend {}) × {} state bytes = {} bytes ({:.1f} MiB) of "
      "decode state; max_num_batched_tokens {}, prefill_chunk {}, max_queue {}, max_model_len {}, "
      "request_timeout {} ms",
      backend->name(), limits.num_slots, options.max_num_seqs, backend->num_slots(), state_bytes, total_bytes,
      static_cast<double>(total_bytes) / (1024.0 * 1024.0), options.max_num_batched_tokens, options.prefill_chunk,
      options.max_queue, options.max_model_len, options.request_timeout.count());

  const double mib = double(state_bytes) / (1024.0 * 1024.0);
  if (!options.prefix_cache) {
    spdlog::info("prefix cache: off");
  } else if (limits.cache_slots == 0) {
    spdlog::info("prefix cache: on, but the backend has no room for snapshot slots");
  } else {
    spdlog::info("prefix cache: {} snapshot slots ({:.1f} MiB) in {} memory, {} host-RAM slots ({:.1f} MiB)",
                 limits.cache_slots, limits.cache_slots * mib, backend->name() == "cpu" ? "host" : "device",
                 limits.host_cache_slots, limits.host_cache_slots * mib);
  }
  std::unique_ptr<StepTrace> trace;
  if (!options.step_trace_path.empty()) {
    TNL_ASSIGN_OR_RETURN(trace, StepTrace::open(options.step_trace_path));
    spdlog::info("step trace: {}", options.step_trace_path);
  }
  auto impl = std::make_unique<Impl>(std::move(backend), std::move(tokenizer), options, limits);
  impl->batcher.set_trace(std::move(trace));
  Impl* raw = impl.get();
  impl->loop = std::thread([raw] { raw->run_loop(); });
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    impl_->draining = true;
  }
  impl_->wake.notify_one();
  if (impl_->loop.joinable()) impl_->loop.join();
}

Expected<uint64_t> Engine::submit(GenerationRequest request, EventSink sink) {
  std::vector<GenerationRequest> requests;
  requests.push_back(std::move(request));
  std::vector<EventSink> sinks;
  sinks.push_back(std::move(sink));
  TNL_ASSIGN_OR_RETURN(std::vector<uint64_t> ids, submit_group(std::move(requests), std::move(sinks)));
  return ids.front();
}

Expected<std::vector<uint64_t>> Engine::submit_group(std::vector<GenerationRequest> requests,
                                                     std::vector<EventSink> sinks) {
  if (requests.empty() || requests.size() != sinks.size()) return invalid_argument("submit: one sink per request");
  bool fork = requests.size() > 1;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!sinks[i]) return invalid_argument("submit: no event sink");
    TNL_RETURN_IF_ERROR(validate_request(requests[i], impl_->backend->config().vocab_size, impl_->options));
    fork = fork && !requests[i].prompt_logprobs && requests[i].prompt_ids == requests[0].prompt_ids &&
           requests[i].priority == requests[0].priority;
  }
  TokenHashChain prompt_keys;
  if (impl_->options.prefix_cache) prompt_keys = TokenHashChain(requests[0].prompt_ids);
  std::vector<uint64_t> ids;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->dead.is_ok()) return impl_->dead;
    if (impl_->draining) return failed_precondition("the engine is draining and accepts no new requests");
    int64_t queued = impl_->published.waiting;
    for (const Submission& s : impl_->inbox) queued += int64_t(s.ids.size());
    if (queued + int64_t(requests.size()) > impl_->options.max_queue) {
      return resource_exhausted("the request queue is full (" + std::to_string(queued) +
                                " waiting, max_queue " + std::to_string(impl_->options.max_queue) +
                                "); retry later");
    }
    Submission s;
    for (size_t i = 0; i < requests.size(); ++i) s.ids.push_back(impl_->next_id++);
    s.requests = std::move(requests);
    s.sinks = std::move(sinks);
    s.arrival = EngineClock::now();
    s.fork = fork;
    s.prompt_keys = std::move(prompt_keys);
    ids = s.ids;
    impl_->inbox.push_back(std::move(s));
  }
  impl_->wake.notify_one();
  return ids;
}

void Engine::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (id == 0 || id >= impl_->next_id) return;  // never issued
    impl_->cancels.push_back(id);
  }
  impl_->wake.notify_one();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  EngineStats s = impl_->published;
  for (const Submission& sub : impl_->inbox) s.waiting += static_cast<int32_t>(sub.ids.size());
  return s;
}

void Engine::begin_drain() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->draining) spdlog::info("engine: draining; new requests are refused");
  impl_->draining = true;
}

void Engine::abort_all(Status reason) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->abort_reason = std::move(reason);
  }
  impl_->wake.notify_one();
}

Status Engine::export_state(std::vector<int32_t> tokens, std::function<void(Expected<std::string>)> done) {
  if (tokens.empty()) return invalid_argument("no tokens: a state needs at least one");
  if (int64_t(tokens.size()) > impl_->options.max_model_len) {
    return invalid_argument(std::to_string(tokens.size()) + " tokens, more than max_model_len (" +
                            std::to_string(impl_->options.max_model_len) + ")");
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= impl_->backend->config().vocab_size) {
      return invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary");
    }
  }
  return post_task([tokens = std::move(tokens), done = std::move(done)](ContinuousBatcher& b) mutable {
    b.export_state(std::move(tokens), std::move(done));
  });
}

void Engine::warm_state(std::vector<int32_t> tokens) {
  if (!impl_->options.prefix_cache || tokens.empty() || int64_t(tokens.size()) > impl_->options.max_model_len) return;
  for (int32_t t : tokens) {
    if (t < 0 || t >= impl_->backend->config().vocab_size) return;
  }
  (void)post_task([tokens = std::move(tokens)](ContinuousBatcher& b) mutable { b.export_state(std::move(tokens), {}); });
}

Status Engine::import_state(std::span<const std::byte> bytes, std::function<void(Expected<int64_t>)> done) {
  TNL_ASSIGN_OR_RETURN(StateBlob blob, parse_state_blob(bytes, impl_->layout));
  return post_task([blob = std::move(blob), done = std::move(done)](ContinuousBatcher& b) mutable {
    b.import_state(std::move(blob), std::move(done));
  });
}

Status Engine::post_task(std::function<void(ContinuousBatcher&)> task) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->dead.is_ok()) return impl_->dead;
    if (impl_->stopping) return failed_precondition("the engine is stopping");
    impl_->tasks.push_back(std::move(task));
  }
  impl_->wake.notify_one();
  return Status::ok();
}

const StateBlobLayout& Engine::state_layout() const { return impl_->layout; }

Status Engine::health() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->dead;
}

bool Engine::idle() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->inbox.empty() && impl_->published.running == 0 && impl_->published.waiting == 0;
}

Expected<std::shared_ptr<const CompiledConstraint>> Engine::compile_constraint(const ConstraintSpec& spec) const {
  return impl_->constraints.get_or_compile(spec);
}

const Tokenizer& Engine::tokenizer() const { return *impl_->tokenizer; }
const ModelConfig& Engine::config() const { return impl_->backend->config(); }
const EngineOptions& Engine::options() const { return impl_->options; }
std::string Engine::backend_name() const { return impl_->backend->name(); }

}  // namespace tnl
