// CompletionExchange: one /v1/completions or /v1/chat/completions request in
// flight. Submits every planned choice to the engine, folds the engine's events
// into ChoiceProgress, and answers either as SSE chunks as they come or as one
// JSON body when all choices are finished.
//
// Threads: created and used on its HttpSession's strand. The engine's EventSink
// (engine thread) only posts each event onto that strand.
#pragma once

#include <memory>
#include <vector>

#include "server/api/openai_response.h"
#include "server/core/choice_progress.h"
#include "server/core/generation_plan.h"
#include "server/http/http_session.h"

namespace tnl::server {

class CompletionExchange : public std::enable_shared_from_this<CompletionExchange> {
 public:
  CompletionExchange(std::shared_ptr<HttpSession> session, CompletionSpec spec, GenerationPlan plan,
                     ResponseMeta meta);
  // Submits the choices; when the engine refuses (queue full, draining, bad
  // parameters) answers that error and cancels what was already submitted.
  void start();
  // The client hung up: cancel every unfinished choice (slots freed within a step).
  void client_gone();

 private:
  void on_event(size_t choice, GenerationEvent&& event);
  void stream_event(size_t choice, ChoiceDelta&& delta);
  void answer_whole();
  void on_choice_finished();
  Usage usage() const;

  std::shared_ptr<HttpSession> session_;  // reset once the answer is written out or abandoned
  ServerContext& context_;
  CompletionSpec spec_;
  GenerationPlan plan_;
  ResponseMeta meta_;
  std::vector<ChoiceProgress> choices_;
  std::vector<uint64_t> engine_ids_;  // of the submitted choices, in choice order
  size_t finished_ = 0;
  bool abandoned_ = false;  // no answer is (or can be) written any more; events are only counted
  bool counted_active_ = false;
};

}  // namespace tnl::server
