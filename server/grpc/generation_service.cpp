#include "server/grpc/generation_service.h"

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <spdlog/spdlog.h>

#include "server/core/generation_plan.h"
#include "server/core/next_turn.h"
#include "server/core/posting_sink.h"
#include "server/core/state_source.h"
#include "server/grpc/proto_translation.h"

namespace tnl::server {
namespace {

namespace asio = boost::asio;
using WorkerStrand = asio::strand<asio::thread_pool::executor_type>;

const grpc::Status kUnauthenticated(grpc::StatusCode::UNAUTHENTICATED,
                                    "missing or invalid 'authorization: Bearer <key>'");

bool authorized(ServerContext& ctx, grpc::CallbackServerContext* call) {
  if (ctx.api_key().empty()) return true;
  auto it = call->client_metadata().find("authorization");
  if (it == call->client_metadata().end()) return false;
  return ctx.authorized(std::string_view(it->second.data(), it->second.size()));
}

// Validates, plans and names one generation call; an error is ready to Finish with.
// Runs on a worker (tokenizing a large prompt is no work for gRPC's threads).
struct PreparedCall {
  grpc::Status status;
  std::string id;
  GenerationPlan plan;
};

PreparedCall prepare(ServerContext& ctx, bool authorized_call, const tnl::v1::GenerateRequest& request,
                     std::string id) {
  PreparedCall p;
  p.id = std::move(id);
  const auto received = std::chrono::steady_clock::now();  // the call's message has been read
  if (!authorized_call) {
    p.status = kUnauthenticated;
    return p;
  }
  ApiResult<CompletionSpec> spec = spec_from_proto(request, ctx.limits());
  if (!spec.ok()) {
    p.status = grpc_status_from(spec.error());
    return p;
  }
  ApiResult<GenerationPlan> plan =
      plan_generation(spec.value(), ctx.prompt_tokens(),
                      [&ctx](const ConstraintSpec& c) { return ctx.engine().compile_constraint(c); },
                      ctx.chat_template(), ctx.engine().options().max_model_len, p.id);
  if (!plan.ok()) {
    p.status = grpc_status_from(plan.error());
    return p;
  }
  p.plan = std::move(plan).value();
  p.plan.mark_prepared(received);
  return p;
}

grpc::Status finish_status(const ChoiceProgress& c) {
  if (c.finish() == FinishReason::kError) return grpc_status_from(api_error_from_status(c.error()));
  if (c.finish() == FinishReason::kCancelled) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  return grpc::Status::OK;
}

// The prompt once (the n choices share it), every choice's tokens.
void fill_usage(const std::vector<ChoiceProgress>& choices, tnl::v1::Usage* usage) {
  int32_t completion = 0;
  for (const ChoiceProgress& c : choices) completion += c.completion_tokens();
  const int32_t prompt = choices.empty() ? 0 : choices.front().prompt_tokens();
  usage->set_prompt_tokens(prompt);
  usage->set_completion_tokens(completion);
  usage->set_total_tokens(prompt + completion);
}

// The call's status once every choice ended: the first choice's error, if any.
grpc::Status finish_status(const std::vector<ChoiceProgress>& choices) {
  for (const ChoiceProgress& c : choices) {
    grpc::Status s = finish_status(c);
    if (!s.ok()) return s;
  }
  return grpc::Status::OK;
}

// One access line per gRPC generation call, like the HTTP front end's.
void log_call(const char* method, const std::string& id, const grpc::Status& status,
              std::chrono::steady_clock::time_point started) {
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("access id={} grpc {} status={} latency_ms={:.1f}", id.empty() ? "-" : id, method,
               int(status.error_code()), ms);
}

// What both generation reactors share: the call's worker strand (preparation and
// every engine event run there, in order: the engine's step loop only posts), the
// engine requests (the n choices, one fork group), cancellation and the access
// log. `Derived` supplies on_prepared_locked(), on_event_locked() and finish().
//
// Threads: gRPC's callback threads (OnCancel, OnWriteDone, OnDone) and the call's
// strand on the front-end workers; every mutable member is guarded by mu_.
template <typename Derived>
class GenerationCall {
 public:
  GenerationCall(ServerContext& ctx, grpc::CallbackServerContext* call)
      : ctx_(ctx), strand_(asio::make_strand(ctx.workers())), authorized_(authorized(ctx, call)) {}

  // Prepares and submits on the call's strand; the reactor returns to gRPC at once.
  void start(std::shared_ptr<Derived> self, const tnl::v1::GenerateRequest* request) {
    self_ = self;
    text_prompt_ = request->prompt_case() != tnl::v1::GenerateRequest::kTokenIds;
    chat_ = request->prompt_case() == tnl::v1::GenerateRequest::kChat;
    if (chat_) {
      for (const auto& m : request->chat().messages()) messages_.push_back({m.role(), m.content()});
    }
    ctx_.metrics().grpc_requests.fetch_add(1);
    id_ = ctx_.next_request_id("grpc");
    asio::post(strand_, [self, request] { self->submit(prepare(self->ctx_, self->authorized_, *request, self->id_)); });
  }

 protected:
  void submit(PreparedCall prepared) {
    auto* derived = static_cast<Derived*>(this);
    if (!prepared.status.ok()) {
      std::lock_guard lock(mu_);
      return derived->finish(prepared.status);
    }
    std::vector<GenerationRequest> requests;
    for (PlannedChoice& c : prepared.plan.choices) requests.push_back(std::move(c.request));
    {
      std::lock_guard lock(mu_);
      prompt_ids_ = requests.front().prompt_ids;
      if (text_prompt_) prompt_text_ = std::move(prepared.plan.choices[0].prompt_text);
      want_logprobs_ = requests.front().sampling.logprobs >= 0;
      for (size_t i = 0; i < requests.size(); ++i) progress_.emplace_back(int32_t(i), want_logprobs_, Derived::kKeepsHistory);
      derived->on_prepared_locked();
    }
    ctx_.metrics().active_generations.fetch_add(1);
    // Not under mu_: the engine may call the sinks before submit returns. A sink
    // only posts the event onto this call's strand. The choices share their
    // prompt: one fork group (the prompt is prefilled once).
    std::shared_ptr<Derived> self = self_;
    std::vector<EventSink> sinks;
    for (size_t i = 0; i < requests.size(); ++i) {
      sinks.push_back(
          posting_sink(strand_, [self, i](GenerationEvent&& event) { self->handle_event(i, std::move(event)); }));
    }
    Expected<std::vector<uint64_t>> ids = ctx_.engine().submit_group(std::move(requests), std::move(sinks));
    std::lock_guard lock(mu_);
    if (!ids.has_value()) {
      ctx_.metrics().active_generations.fetch_sub(1);
      if (ids.status().code() == StatusCode::kResourceExhausted) ctx_.metrics().rejected_overload.fetch_add(1);
      return derived->finish(grpc_status_from(api_error_from_status(ids.status())));
    }
    engine_ids_ = *ids;
    if (client_gone_) {
      for (uint64_t id : engine_ids_) ctx_.engine().cancel(id);  // cancelled while submitting
    }
  }

  // On the strand: one engine event of one choice, in order.
  void handle_event(size_t choice, GenerationEvent&& event) {
    std::lock_guard lock(mu_);
    const bool last = event.finish != FinishReason::kNone;
    ChoiceProgress& progress = progress_[choice];
    ChoiceDelta delta = progress.apply(std::move(event), ctx_.engine().tokenizer());
    bool all_done = false;
    if (last) {
      if (progress.finish() == FinishReason::kStop || progress.finish() == FinishReason::kLength) {
        after_choice_finished(ctx_, id_, prompt_ids_, progress.token_ids(),
                              next_turn_prefix(ctx_, chat_ ? &messages_ : nullptr,
                                               text_prompt_ && !chat_ ? &prompt_text_ : nullptr, progress.text()));
      }
      all_done = ++choices_finished_ == progress_.size();
      if (all_done) ctx_.metrics().active_generations.fetch_sub(1);
    }
    static_cast<Derived*>(this)->on_event_locked(choice, std::move(delta), last, all_done);
  }

  void cancel_locked() {
    client_gone_ = true;
    for (uint64_t id : engine_ids_) ctx_.engine().cancel(id);
  }

  ServerContext& ctx_;
  WorkerStrand strand_;
  const bool authorized_;
  std::shared_ptr<Derived> self_;  // released in OnDone
  std::string id_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::mutex mu_;
  std::vector<uint64_t> engine_ids_;     // by choice, once submitted
  std::vector<ChoiceProgress> progress_;  // by choice
  size_t choices_finished_ = 0;
  bool want_logprobs_ = false;
  bool client_gone_ = false;
  bool finish_called_ = false;
  grpc::Status logged_status_;  // what Finish was given
  bool text_prompt_ = false;    // the prompt was text or chat (not token ids)
  std::vector<int32_t> prompt_ids_;
  std::string prompt_text_;     // the text the prompt's tokens came from, when text_prompt_
  bool chat_ = false;
  std::vector<ChatMessage> messages_;  // a chat prompt's messages (the next turn's history)
};

// Unary Generate: events accumulate; the last fills the response and Finishes.
class UnaryGenerateCall final : public grpc::ServerUnaryReactor, public GenerationCall<UnaryGenerateCall> {
 public:
  UnaryGenerateCall(ServerContext& ctx, grpc::CallbackServerContext* call, tnl::v1::GenerateResponse* response)
      : GenerationCall(ctx, call), response_(response) {}

  void OnCancel() override {
    std::lock_guard lock(mu_);
    cancel_locked();
  }
  void OnDone() override {
    log_call("Generate", id_, logged_status_, started_);
    self_.reset();
  }

 private:
  friend class GenerationCall<UnaryGenerateCall>;
  static constexpr bool kKeepsHistory = true;  // the response carries the whole text

  void finish(grpc::Status status) {
    if (finish_called_) return;
    finish_called_ = true;
    logged_status_ = status;
    Finish(std::move(status));
  }
  void on_prepared_locked() {
    response_->set_id(id_);
    for (size_t i = 0; i < progress_.size(); ++i) response_->add_choices()->set_index(int32_t(i));
  }
  // Choice 0 also fills the top-level fields (the n = 1 shape).
  void on_event_locked(size_t choice, ChoiceDelta&& delta, bool last, bool all_done) {
    tnl::v1::Choice* out = response_->mutable_choices(int(choice));
    if (want_logprobs_) {
      add_proto_logprobs(delta.logprobs, out->mutable_logprobs());
      if (choice == 0) add_proto_logprobs(delta.logprobs, response_->mutable_logprobs());
    }
    if (last) {
      const ChoiceProgress& p = progress_[choice];
      out->set_text(p.text());
      for (int32_t id : p.token_ids()) out->add_token_ids(id);
      out->set_finish_reason(proto_finish_reason(p.finish()));
      if (choice == 0) {
        response_->set_text(p.text());
        for (int32_t id : p.token_ids()) response_->add_token_ids(id);
        response_->set_finish_reason(proto_finish_reason(p.finish()));
      }
    }
    if (!all_done) return;
    fill_usage(progress_, response_->mutable_usage());
    finish(finish_status(progress_));
  }

  tnl::v1::GenerateResponse* response_;
};

// Server-streaming GenerateStream: one write in flight at a time; chunks that
// arrive meanwhile queue up (at most --stream-buffer-bytes of them: a client that
// stops reading past that is cut off, its generation cancelled) and go out in
// order; Finish once the queue is empty after the last event.
class StreamGenerateCall final : public grpc::ServerWriteReactor<tnl::v1::GenerateStreamResponse>,
                                 public GenerationCall<StreamGenerateCall> {
 public:
  StreamGenerateCall(ServerContext& ctx, grpc::CallbackServerContext* call) : GenerationCall(ctx, call) {}

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) {
      // The client is gone: drop what is queued; Finish still waits for the engine's last event.
      drop_queue_locked();
      cancel_locked();
    }
    write_next_locked();
  }
  void OnCancel() override {
    std::lock_guard lock(mu_);
    cancel_locked();
  }
  void OnDone() override {
    log_call("GenerateStream", id_, logged_status_, started_);
    self_.reset();
  }

 private:
  friend class GenerationCall<StreamGenerateCall>;
  static constexpr bool kKeepsHistory = false;  // chunks carry deltas only

  void finish(grpc::Status status) {
    if (finish_called_) return;
    finish_called_ = true;
    logged_status_ = status;
    Finish(std::move(status));
  }
  void on_prepared_locked() {}

  void on_event_locked(size_t choice, ChoiceDelta&& delta, bool last, bool all_done) {
    if (!client_gone_ && (!delta.text.empty() || !delta.token_ids.empty() || last)) {
      tnl::v1::GenerateStreamResponse chunk;
      chunk.set_id(id_);
      chunk.set_index(int32_t(choice));
      chunk.set_text(std::move(delta.text));
      for (int32_t id : delta.token_ids) chunk.add_token_ids(id);
      if (want_logprobs_) add_proto_logprobs(delta.logprobs, chunk.mutable_logprobs());
      if (last) chunk.set_finish_reason(proto_finish_reason(progress_[choice].finish()));
      if (all_done) fill_usage(progress_, chunk.mutable_usage());
      queued_bytes_ += chunk.ByteSizeLong();
      queue_.push_back(std::move(chunk));
      if (queued_bytes_ > ctx_.front_end_limits().stream_buffer_bytes) cut_off_stalled_client_locked();
    }
    if (all_done) {
      final_status_ = stalled_ ? stalled_status() : finish_status(progress_);
      finished_ = true;
    }
    write_next_locked();
  }

  void cut_off_stalled_client_locked() {
    spdlog::warn("grpc GenerateStream {}: client stopped reading: over --stream-buffer-bytes ({} bytes) unsent; "
                 "cancelling its generation",
                 id_, ctx_.front_end_limits().stream_buffer_bytes);
    ctx_.metrics().stalled_clients.fetch_add(1);
    stalled_ = true;
    drop_queue_locked();
    cancel_locked();
  }

  grpc::Status stalled_status() const {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "the client stopped reading the stream: more than --stream-buffer-bytes (" +
                            std::to_string(ctx_.front_end_limits().stream_buffer_bytes) + ") unsent");
  }

  void drop_queue_locked() {
    queue_.clear();
    queued_bytes_ = 0;
  }

  void write_next_locked() {
    if (writing_ || finish_called_) return;
    if (!queue_.empty() && !client_gone_) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= std::min<uint64_t>(queued_bytes_, current_.ByteSizeLong());
      writing_ = true;
      StartWrite(&current_);
      return;
    }
    if (finished_) {
      if (stalled_) return finish(stalled_status());
      finish(client_gone_ ? grpc::Status(grpc::StatusCode::CANCELLED, "cancelled") : final_status_);
    }
  }

  std::deque<tnl::v1::GenerateStreamResponse> queue_;
  uint64_t queued_bytes_ = 0;                  // serialized size of queue_
  tnl::v1::GenerateStreamResponse current_;    // the message of the write in flight
  grpc::Status final_status_;                  // from the engine's last event
  bool writing_ = false;
  bool finished_ = false;
  bool stalled_ = false;
};

}  // namespace

grpc::ServerUnaryReactor* GenerationService::Generate(grpc::CallbackServerContext* call,
                                                      const tnl::v1::GenerateRequest* request,
                                                      tnl::v1::GenerateResponse* response) {
  auto reactor = std::make_shared<UnaryGenerateCall>(context_, call, response);
  reactor->start(reactor, request);
  return reactor.get();
}

grpc::ServerWriteReactor<tnl::v1::GenerateStreamResponse>* GenerationService::GenerateStream(
    grpc::CallbackServerContext* call, const tnl::v1::GenerateRequest* request) {
  auto reactor = std::make_shared<StreamGenerateCall>(context_, call);
  reactor->start(reactor, request);
  return reactor.get();
}

grpc::ServerUnaryReactor* GenerationService::Tokenize(grpc::CallbackServerContext* call,
                                                      const tnl::v1::TokenizeRequest* request,
                                                      tnl::v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  if (!authorized(context_, call)) {
    reactor->Finish(kUnauthenticated);
    return reactor;
  }
  // On a worker: a long text is no work for gRPC's threads; one surely over
  // --max-model-len tokens is refused untokenized.
  asio::post(context_.workers(), [this, reactor, request, response] {
    const Tokenizer& tokenizer = context_.engine().tokenizer();
    const int64_t max_model_len = context_.engine().options().max_model_len;
    if (std::optional<ApiError> error = check_tokenize_size(request->text().size(), tokenizer, max_model_len, "text")) {
      return reactor->Finish(grpc_status_from(*error));
    }
    std::vector<int32_t> ids =
        request->add_special_tokens() ? tokenizer.encode(request->text()) : tokenizer.encode_plain(request->text());
    for (int32_t id : ids) {
      response->add_token_ids(id);
      response->add_pieces(tokenizer.piece(id));
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* GenerationService::ExportState(grpc::CallbackServerContext* call,
                                                         const tnl::v1::ExportStateRequest* request,
                                                         tnl::v1::StateBlob* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  if (!authorized(context_, call)) {
    reactor->Finish(kUnauthenticated);
    return reactor;
  }
  asio::post(context_.workers(), [this, reactor, request, response] {
    if (!request->model().empty() && request->model() != context_.served_model_name()) {
      return reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "model: no model `" + request->model() + "`"));
    }
    StateSource source;
    switch (request->source_case()) {
      case tnl::v1::ExportStateRequest::kText:
        source.text = request->text();
        break;
      case tnl::v1::ExportStateRequest::kTokenIds:
        source.kind = StateSource::Kind::kTokenIds;
        source.token_ids.assign(request->token_ids().ids().begin(), request->token_ids().ids().end());
        break;
      case tnl::v1::ExportStateRequest::kChat:
        source.kind = StateSource::Kind::kChat;
        for (const auto& m : request->chat().messages()) source.messages.push_back({m.role(), m.content()});
        break;
      case tnl::v1::ExportStateRequest::kResponseId:
        source.kind = StateSource::Kind::kResponse;
        source.response_id = request->response_id();
        source.choice = request->choice();
        break;
      default:
        return reactor->Finish(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "source: give text, token_ids, chat or response_id"));
    }
    ApiResult<std::vector<int32_t>> tokens = resolve_state_tokens(context_, source);
    if (!tokens.ok()) return reactor->Finish(grpc_status_from(tokens.error()));
    Status posted = context_.engine().export_state(std::move(tokens).value(), [reactor, response](Expected<std::string> blob) {
      // Engine thread: Finish does not block.
      if (!blob.has_value()) return reactor->Finish(grpc_status_from(api_error_from_status(blob.status())));
      response->set_data(std::move(*blob));
      reactor->Finish(grpc::Status::OK);
    });
    if (!posted.is_ok()) reactor->Finish(grpc_status_from(api_error_from_status(posted)));
  });
  return reactor;
}

grpc::ServerUnaryReactor* GenerationService::ImportState(grpc::CallbackServerContext* call,
                                                         const tnl::v1::StateBlob* request,
                                                         tnl::v1::ImportStateResponse* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  if (!authorized(context_, call)) {
    reactor->Finish(kUnauthenticated);
    return reactor;
  }
  asio::post(context_.workers(), [this, reactor, request, response] {
    const std::string& data = request->data();
    Status posted = context_.engine().import_state(std::as_bytes(std::span(data.data(), data.size())),
                                                   [reactor, response](Expected<int64_t> n) {
                                                     if (!n.has_value()) {
                                                       return reactor->Finish(
                                                           grpc_status_from(api_error_from_status(n.status())));
                                                     }
                                                     response->set_num_tokens(*n);
                                                     reactor->Finish(grpc::Status::OK);
                                                   });
    if (!posted.is_ok()) reactor->Finish(grpc_status_from(api_error_from_status(posted)));
  });
  return reactor;
}

grpc::ServerUnaryReactor* GenerationService::GetModelInfo(grpc::CallbackServerContext* call,
                                                          const tnl::v1::GetModelInfoRequest*,
                                                          tnl::v1::ModelInfo* info) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  if (!authorized(context_, call)) {
    reactor->Finish(kUnauthenticated);
    return reactor;
  }
  const Engine& engine = context_.engine();
  const ModelConfig& config = engine.config();
  info->set_name(context_.served_model_name());
  info->set_vocab_size(config.vocab_size);
  info->set_max_model_len(engine.options().max_model_len);
  info->set_num_layers(config.num_layers);
  info->set_dim(config.dim);
  info->set_num_heads(config.num_heads);
  info->set_backend(engine.backend_name());
  info->set_bos_token_id(engine.tokenizer().bos_id());
  info->set_eos_token_id(engine.tokenizer().eos_id());
  info->set_max_num_seqs(engine.options().max_num_seqs);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace tnl::server
