#include "engine/scheduler/step_trace.h"

#include <utility>

namespace tnl {

Expected<std::unique_ptr<StepTrace>> StepTrace::open(const std::string& path) {
  std::ofstream out(path, std::ios::out | std::ios::trunc);
  if (!out) return invalid_argument("step trace: cannot write '" + path + "'");
  return std::unique_ptr<StepTrace>(new StepTrace(std::move(out), EngineClock::now()));
}

StepTrace::StepTrace(std::ofstream out, EngineClock::time_point origin) : out_(std::move(out)), origin_(origin) {
  // The origin on the steady clock itself (CLOCK_MONOTONIC on Linux, which
  // Python's time.perf_counter also reads): lets a client on the same machine put
  // its own stamps on this timeline (tools/step_trace_summary.py --requests).
  out_ << "{\"origin_steady_us\":"
       << std::chrono::duration_cast<std::chrono::microseconds>(origin.time_since_epoch()).count() << "}\n";
}

StepTrace::~StepTrace() { out_.flush(); }

int64_t StepTrace::us(EngineClock::time_point t) const {
  return std::chrono::duration_cast<std::chrono::microseconds>(t - origin_).count();
}

void StepTrace::wrote_line() {
  if (++unflushed_ < 64) return;
  out_.flush();
  unflushed_ = 0;
}

void StepTrace::step(const StepRecord& r) {
  // Written by hand, not through a JSON library: the fields are fixed integers and
  // this runs on the step loop's critical path.
  out_ << "{\"step_us\":" << us(r.start) << ",\"plan_us\":" << us(r.run_start) - us(r.start)
       << ",\"run_us\":" << us(r.run_end) - us(r.run_start) << ",\"emit_us\":" << us(r.end) - us(r.run_end)
       << ",\"decodes\":" << r.decodes << ",\"prefill_chunks\":" << r.prefill_chunks
       << ",\"prefill_tokens\":" << r.prefill_tokens << ",\"cached_tokens\":" << r.cached_tokens
       << ",\"copies_before\":" << r.copies_before << ",\"copies_after\":" << r.copies_after
       << ",\"first_tokens\":" << r.first_tokens << ",\"running\":" << r.running << ",\"waiting\":" << r.waiting
       << ",\"failed\":" << (r.failed ? "true" : "false");
  if (r.backend.enqueue_us >= 0) out_ << ",\"enqueue_us\":" << r.backend.enqueue_us;
  if (r.backend.device_us >= 0) out_ << ",\"device_us\":" << r.backend.device_us;
  out_ << "}\n";
  wrote_line();
}

void StepTrace::first_token(uint64_t request, EngineClock::time_point received, EngineClock::time_point prepared,
                            EngineClock::time_point arrival, EngineClock::time_point now, int64_t prompt_tokens) {
  out_ << "{\"first_token\":" << request;
  if (received != EngineClock::time_point()) out_ << ",\"received_us\":" << us(received);
  if (prepared != EngineClock::time_point()) out_ << ",\"prepared_us\":" << us(prepared);
  out_ << ",\"arrival_us\":" << us(arrival) << ",\"at_us\":" << us(now) << ",\"prompt_tokens\":" << prompt_tokens
       << "}\n";
  wrote_line();
}

}  // namespace tnl
