#include "server/grpc/generation_service.h"

#include <deque>
#include <memory>
#include <mutex>

#include <spdlog/spdlog.h>

#include "server/core/generation_plan.h"
#include "server/grpc/proto_translation.h"

namespace tnl::server {
namespace {

bool authorized(ServerContext& ctx, grpc::CallbackServerContext* call) {
  if (ctx.api_key().empty()) return true;
  auto it = call->client_metadata().find("authorization");
  if (it == call->client_metadata().end()) return false;
  return ctx.authorized(std::string_view(it->second.data(), it->second.size()));
}

// Validates, plans and names one generation call; an error is ready to Finish with.
struct PreparedCall {
  grpc::Status status;
  std::string id;
  GenerationPlan plan;
};

PreparedCall prepare(ServerContext& ctx, grpc::CallbackServerContext* call, const tnl::v1::GenerateRequest& request) {
  PreparedCall p;
  ctx.metrics().grpc_requests.fetch_add(1);
  p.id = ctx.next_request_id("grpc");
  if (!authorized(ctx, call)) {
    p.status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or invalid 'authorization: Bearer <key>'");
    return p;
  }
  ApiResult<CompletionSpec> spec = spec_from_proto(request, ctx.limits());
  if (!spec.ok()) {
    p.status = grpc_status_from(spec.error());
    return p;
  }
  ApiResult<GenerationPlan> plan =
      plan_generation(spec.value(), ctx.engine().tokenizer(), ctx.chat_template(), ctx.engine().options().max_model_len, p.id);
  if (!plan.ok()) {
    p.status = grpc_status_from(plan.error());
    return p;
  }
  p.plan = std::move(plan).value();
  return p;
}

grpc::Status finish_status(const ChoiceProgress& c) {
  if (c.finish() == FinishReason::kError) return grpc_status_from(api_error_from_status(c.error()));
  if (c.finish() == FinishReason::kCancelled) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  return grpc::Status::OK;
}

void fill_usage(const ChoiceProgress& c, tnl::v1::Usage* usage) {
  usage->set_prompt_tokens(c.prompt_tokens());
  usage->set_completion_tokens(c.completion_tokens());
  usage->set_total_tokens(c.prompt_tokens() + c.completion_tokens());
}

// One access line per gRPC generation call, like the HTTP front end's.
void log_call(const char* method, const std::string& id, const grpc::Status& status,
              std::chrono::steady_clock::time_point started) {
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("access id={} grpc {} status={} latency_ms={:.1f}", id.empty() ? "-" : id, method,
               int(status.error_code()), ms);
}

// Unary Generate. Owns itself through self_ (released in OnDone) so that the engine's
// sink, which holds another reference, never sees a dangling reactor.
class UnaryGenerateCall final : public grpc::ServerUnaryReactor {
 public:
  UnaryGenerateCall(ServerContext& ctx, tnl::v1::GenerateResponse* response) : ctx_(ctx), response_(response) {}

  void start(std::shared_ptr<UnaryGenerateCall> self, PreparedCall prepared) {
    self_ = self;
    id_ = prepared.id;
    if (!prepared.status.ok()) return finish(prepared.status);
    response_->set_id(prepared.id);
    want_logprobs_ = prepared.plan.choices[0].request.sampling.logprobs >= 0;
    progress_.emplace(0, want_logprobs_);
    ctx_.metrics().active_generations.fetch_add(1);
    // Not under mu_: the engine may call the sink (which locks mu_) before submit returns.
    Expected<uint64_t> id = ctx_.engine().submit(
        std::move(prepared.plan.choices[0].request),
        [self](GenerationEvent&& event) { self->on_event(std::move(event)); });
    std::lock_guard lock(mu_);
    if (!id.has_value()) {
      ctx_.metrics().active_generations.fetch_sub(1);
      if (id.status().code() == StatusCode::kResourceExhausted) ctx_.metrics().rejected_overload.fetch_add(1);
      finish_called_ = true;
      return finish(grpc_status_from(api_error_from_status(id.status())));
    }
    engine_id_ = *id;
    if (client_gone_) ctx_.engine().cancel(*id);  // cancelled while submitting
  }

  void OnCancel() override {
    std::lock_guard lock(mu_);
    client_gone_ = true;
    if (engine_id_) ctx_.engine().cancel(*engine_id_);
  }
  void OnDone() override {
    log_call("Generate", id_, final_status_, started_);
    self_.reset();
  }

 private:
  void finish(grpc::Status status) {
    final_status_ = status;
    Finish(std::move(status));
  }

  // Engine thread: accumulate; on the last event fill the response and Finish (non-blocking).
  void on_event(GenerationEvent&& event) {
    std::lock_guard lock(mu_);
    const bool last = event.finish != FinishReason::kNone;
    ChoiceDelta delta = progress_->apply(std::move(event), ctx_.engine().tokenizer());
    if (want_logprobs_) add_proto_logprobs(delta.logprobs, response_->mutable_logprobs());
    if (!last) return;
    response_->set_text(progress_->text());
    for (int32_t id : progress_->token_ids()) response_->add_token_ids(id);
    response_->set_finish_reason(proto_finish_reason(progress_->finish()));
    fill_usage(*progress_, response_->mutable_usage());
    ctx_.metrics().active_generations.fetch_sub(1);
    finish(finish_status(*progress_));
  }

  ServerContext& ctx_;
  tnl::v1::GenerateResponse* response_;
  std::shared_ptr<UnaryGenerateCall> self_;
  std::string id_;
  grpc::Status final_status_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::mutex mu_;
  std::optional<uint64_t> engine_id_;
  std::optional<ChoiceProgress> progress_;
  bool want_logprobs_ = false;
  bool client_gone_ = false;
  bool finish_called_ = false;
};

// Server-streaming GenerateStream: one write in flight at a time; events that arrive
// meanwhile queue up and go out in order; Finish once the queue is empty after the
// last event.
class StreamGenerateCall final : public grpc::ServerWriteReactor<tnl::v1::GenerateStreamResponse> {
 public:
  explicit StreamGenerateCall(ServerContext& ctx) : ctx_(ctx) {}

  void start(std::shared_ptr<StreamGenerateCall> self, PreparedCall prepared) {
    self_ = self;
    id_ = prepared.id;
    if (!prepared.status.ok()) return finish(prepared.status);
    want_logprobs_ = prepared.plan.choices[0].request.sampling.logprobs >= 0;
    progress_.emplace(0, want_logprobs_);
    ctx_.metrics().active_generations.fetch_add(1);
    // Not under mu_: the engine may call the sink (which locks mu_) before submit returns.
    Expected<uint64_t> id = ctx_.engine().submit(
        std::move(prepared.plan.choices[0].request),
        [self](GenerationEvent&& event) { self->on_event(std::move(event)); });
    std::lock_guard lock(mu_);
    if (!id.has_value()) {
      ctx_.metrics().active_generations.fetch_sub(1);
      if (id.status().code() == StatusCode::kResourceExhausted) ctx_.metrics().rejected_overload.fetch_add(1);
      finish_called_ = true;
      return finish(grpc_status_from(api_error_from_status(id.status())));
    }
    engine_id_ = *id;
    if (client_gone_) ctx_.engine().cancel(*id);  // cancelled while submitting
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) {
      // The client is gone: drop what is queued; Finish still waits for the engine's last event.
      client_gone_ = true;
      queue_.clear();
      if (engine_id_) ctx_.engine().cancel(*engine_id_);
    }
    write_next_locked();
  }
  void OnCancel() override {
    std::lock_guard lock(mu_);
    client_gone_ = true;
    if (engine_id_) ctx_.engine().cancel(*engine_id_);
  }
  void OnDone() override {
    log_call("GenerateStream", id_, logged_status_, started_);
    self_.reset();
  }

 private:
  void finish(grpc::Status status) {
    logged_status_ = status;
    Finish(std::move(status));
  }

  void on_event(GenerationEvent&& event) {
    std::lock_guard lock(mu_);
    const bool last = event.finish != FinishReason::kNone;
    ChoiceDelta delta = progress_->apply(std::move(event), ctx_.engine().tokenizer());
    if (!client_gone_ && (!delta.text.empty() || !delta.token_ids.empty() || last)) {
      tnl::v1::GenerateStreamResponse chunk;
      chunk.set_id(id_);
      chunk.set_text(std::move(delta.text));
      for (int32_t id : delta.token_ids) chunk.add_token_ids(id);
      if (want_logprobs_) add_proto_logprobs(delta.logprobs, chunk.mutable_logprobs());
      if (last) {
        chunk.set_finish_reason(proto_finish_reason(progress_->finish()));
        fill_usage(*progress_, chunk.mutable_usage());
      }
      queue_.push_back(std::move(chunk));
    }
    if (last) {
      final_status_ = finish_status(*progress_);
      finished_ = true;
      ctx_.metrics().active_generations.fetch_sub(1);
    }
    write_next_locked();
  }

  void write_next_locked() {
    if (writing_ || finish_called_) return;
    if (!queue_.empty() && !client_gone_) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
      writing_ = true;
      StartWrite(&current_);
      return;
    }
    if (finished_) {
      finish_called_ = true;
      finish(client_gone_ ? grpc::Status(grpc::StatusCode::CANCELLED, "cancelled") : final_status_);
    }
  }

  ServerContext& ctx_;
  std::shared_ptr<StreamGenerateCall> self_;
  std::mutex mu_;
  std::string id_;
  std::optional<uint64_t> engine_id_;
  std::optional<ChoiceProgress> progress_;
  std::deque<tnl::v1::GenerateStreamResponse> queue_;
  tnl::v1::GenerateStreamResponse current_;  // the message of the write in flight
  grpc::Status final_status_;   // from the engine's last event
  grpc::Status logged_status_;  // what Finish was given
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool want_logprobs_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool finish_called_ = false;
  bool client_gone_ = false;
};

}  // namespace

grpc::ServerUnaryReactor* GenerationService::Generate(grpc::CallbackServerContext* call,
                                                      const tnl::v1::GenerateRequest* request,
                                                      tnl::v1::GenerateResponse* response) {
  auto reactor = std::make_shared<UnaryGenerateCall>(context_, response);
  reactor->start(reactor, prepare(context_, call, *request));
  return reactor.get();
}

grpc::ServerWriteReactor<tnl::v1::GenerateStreamResponse>* GenerationService::GenerateStream(
    grpc::CallbackServerContext* call, const tnl::v1::GenerateRequest* request) {
  auto reactor = std::make_shared<StreamGenerateCall>(context_);
  reactor->start(reactor, prepare(context_, call, *request));
  return reactor.get();
}

grpc::ServerUnaryReactor* GenerationService::Tokenize(grpc::CallbackServerContext* call,
                                                      const tnl::v1::TokenizeRequest* request,
                                                      tnl::v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  if (!authorized(context_, call)) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or invalid 'authorization: Bearer <key>'"));
    return reactor;
  }
  const Tokenizer& tokenizer = context_.engine().tokenizer();
  std::vector<int32_t> ids =
      request->add_special_tokens() ? tokenizer.encode(request->text()) : tokenizer.encode_plain(request->text());
  for (int32_t id : ids) {
    response->add_token_ids(id);
    response->add_pieces(tokenizer.piece(id));
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* GenerationService::GetModelInfo(grpc::CallbackServerContext* call,
                                                          const tnl::v1::GetModelInfoRequest*,
                                                          tnl::v1::ModelInfo* info) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
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
