#include "server/http/request_router.h"

#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>

#include "server/api/json_body.h"
#include "server/api/json_fields.h"
#include "server/api/openai_request.h"
#include "server/api/openai_response.h"
#include "server/api/prometheus.h"
#include "server/core/generation_plan.h"
#include "server/core/state_source.h"
#include "server/http/completion_exchange.h"
#include "server/http/http_session.h"

namespace tnl::server {
namespace {

using nlohmann::json;
using Request = http::request<http::string_body>;

constexpr std::string_view kJson = "application/json";

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Runs `work` on the front-end workers (off the io threads: parsing and tokenizing
// a large body takes milliseconds to seconds), then `answer(result)` back on the
// connection's strand.
template <typename Work, typename Answer>
void off_io_thread(const std::shared_ptr<HttpSession>& session, Work work, Answer answer) {
  asio::post(session->context().workers(), [session, work = std::move(work), answer = std::move(answer)]() mutable {
    auto result = std::make_shared<decltype(work())>(work());
    asio::post(session->executor(), [session, result, answer = std::move(answer)]() mutable {
      if (session->client_gone()) return;
      answer(std::move(*result));
    });
  });
}

void generate(const std::shared_ptr<HttpSession>& session, Request&& request, ApiKind kind) {
  ServerContext& ctx = session->context();
  const char* prefix = kind == ApiKind::kChat ? "chatcmpl" : "cmpl";
  session->set_request_id(ctx.next_request_id(prefix));
  struct Prepared {
    ApiResult<CompletionSpec> spec = ApiError{};
    ApiResult<GenerationPlan> plan = ApiError{};
  };
  auto work = [&ctx, kind, id = session->request_id(), body = std::move(request.body()),
               received = std::chrono::steady_clock::now()]() {
    Prepared p;
    p.spec = kind == ApiKind::kChat ? parse_chat_request(body, ctx.limits()) : parse_completion_request(body, ctx.limits());
    if (!p.spec.ok()) return p;
    p.plan = plan_generation(
        p.spec.value(), ctx.prompt_tokens(),
        [&ctx](const ConstraintSpec& c) { return ctx.engine().compile_constraint(c); }, ctx.chat_template(),
        ctx.engine().options().max_model_len, id);
    if (p.plan.ok()) p.plan.value().mark_prepared(received);
    return p;
  };
  off_io_thread(session, std::move(work), [session, kind](Prepared p) {
    ServerContext& ctx = session->context();
    if (!p.spec.ok()) return session->send_error(p.spec.error());
    if (!p.plan.ok()) return session->send_error(p.plan.error());
    ResponseMeta meta{kind, session->request_id(), int64_t(std::time(nullptr)), ctx.served_model_name()};
    auto exchange = std::make_shared<CompletionExchange>(session, std::move(p.spec).value(), std::move(p.plan).value(),
                                                         std::move(meta));
    session->attach_exchange(exchange);
    exchange->start();
  });
}

// {"content"|"prompt": string, "add_special": bool} → {"tokens": [...], "count", "max_model_len"}.
// Runs on a worker; texts that are surely over --max-model-len tokens are refused
// untokenized, which bounds what a reply may cost.
ApiResult<std::string> tokenize_body(const ServerContext& ctx, const std::string& body_text) {
  ApiResult<json> parsed = parse_json_object_body(body_text);
  if (!parsed.ok()) return parsed.error();
  const json& b = parsed.value();
  const char* field = b.contains("content") ? "content" : "prompt";
  if (!b.contains(field) || !b[field].is_string()) return invalid_request("content must be a string", "content");
  const json add_special = b.value("add_special", json(true));
  if (!add_special.is_boolean()) return invalid_request("add_special must be a boolean", "add_special");
  const Tokenizer& tokenizer = ctx.engine().tokenizer();
  const int64_t max_model_len = ctx.engine().options().max_model_len;
  const std::string& text = b[field].get_ref<const std::string&>();
  if (std::optional<ApiError> error = check_tokenize_size(text.size(), tokenizer, max_model_len, field)) {
    return *error;
  }
  std::vector<int32_t> ids = add_special.get<bool>() ? tokenizer.encode(text) : tokenizer.encode_plain(text);
  return dump(json{{"tokens", ids}, {"count", ids.size()}, {"max_model_len", max_model_len}});
}

void tokenize(const std::shared_ptr<HttpSession>& session, Request&& request) {
  ServerContext& ctx = session->context();
  off_io_thread(
      session, [&ctx, body = std::move(request.body())] { return tokenize_body(ctx, body); },
      [session](ApiResult<std::string> reply) {
        if (!reply.ok()) return session->send_error(reply.error());
        session->send_response(200, kJson, reply.value());
      });
}

// {"tokens": [ids]} → {"content": text}.
void detokenize(const std::shared_ptr<HttpSession>& session, const Request& request) {
  ApiResult<json> body = parse_json_object_body(request.body());
  if (!body.ok()) return session->send_error(body.error());
  const json& b = body.value();
  const Tokenizer& tokenizer = session->context().engine().tokenizer();
  if (!b.contains("tokens") || !b["tokens"].is_array()) {
    return session->send_error(invalid_request("tokens must be a list of token ids", "tokens"));
  }
  std::vector<int32_t> ids;
  for (const json& t : b["tokens"]) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tokenizer.vocab_size()) {
      return session->send_error(invalid_request(
          "tokens must be token ids in [0, " + std::to_string(tokenizer.vocab_size()) + ")", "tokens"));
    }
    ids.push_back(int32_t(t.get<int64_t>()));
  }
  session->send_response(200, kJson, dump({{"content", tokenizer.decode(ids)}}));
}

// POST /v1/states {"prompt": text | [ids] | "messages": [...] | "response_id": id, "choice": i}
// → the state blob (application/octet-stream) reached after those tokens.
ApiResult<std::vector<int32_t>> state_tokens(const ServerContext& ctx, const std::string& body_text) {
  ApiResult<json> parsed = parse_json_object_body(body_text);
  if (!parsed.ok()) return parsed.error();
  const json& b = parsed.value();
  FieldReader fields(b);
  std::string model;
  fields.string("model", &model);
  const json* prompt = fields.find("prompt");
  const json* messages = fields.find("messages");
  const json* response_id = fields.find("response_id");
  StateSource source;
  fields.integer("choice", &source.choice);
  fields.reject_unread();
  if (fields.error()) return *fields.error();
  if (!model.empty() && model != ctx.served_model_name()) {
    return not_found_error("The model `" + model + "` does not exist", "model", "model_not_found");
  }
  if (int(prompt != nullptr) + int(messages != nullptr) + int(response_id != nullptr) != 1) {
    return invalid_request("give exactly one of prompt, messages or response_id", "prompt");
  }
  if (response_id != nullptr) {
    if (!response_id->is_string()) return invalid_request("response_id must be a string", "response_id");
    source.kind = StateSource::Kind::kResponse;
    source.response_id = response_id->get<std::string>();
  } else if (messages != nullptr) {
    // The chat parser reads and checks the messages as for /v1/chat/completions.
    ApiResult<CompletionSpec> chat = parse_chat_request(json{{"messages", *messages}}.dump(), ctx.limits());
    if (!chat.ok()) return chat.error();
    source.kind = StateSource::Kind::kChat;
    source.messages = chat.value().messages;
  } else if (prompt->is_string()) {
    source.text = prompt->get<std::string>();
  } else if (prompt->is_array()) {
    source.kind = StateSource::Kind::kTokenIds;
    for (const json& v : *prompt) {
      if (!v.is_number_integer()) return invalid_request("prompt must be a string or a list of token ids", "prompt");
      const int64_t id = v.get<int64_t>();
      source.token_ids.push_back(id < 0 || id > INT32_MAX ? -1 : int32_t(id));
    }
  } else {
    return invalid_request("prompt must be a string or a list of token ids", "prompt");
  }
  return resolve_state_tokens(ctx, source);
}

void export_state(const std::shared_ptr<HttpSession>& session, Request&& request) {
  ServerContext& ctx = session->context();
  off_io_thread(
      session, [&ctx, body = std::move(request.body())] { return state_tokens(ctx, body); },
      [session](ApiResult<std::vector<int32_t>> tokens) {
        if (!tokens.ok()) return session->send_error(tokens.error());
        const size_t n = tokens.value().size();
        auto executor = session->executor();
        Status posted = session->context().engine().export_state(
            std::move(tokens).value(), [session, executor, n](Expected<std::string> blob) {
              // Engine thread: hand over to the connection's strand.
              asio::post(executor, [session, n, blob = std::move(blob)]() mutable {
                if (!blob.has_value()) return session->send_error(api_error_from_status(blob.status()));
                session->send_response(200, "application/octet-stream", *blob,
                                       {{"X-State-Tokens", std::to_string(n)}});
              });
            });
        if (!posted.is_ok()) session->send_error(api_error_from_status(posted));
      });
}

// POST /v1/states/import, body: a blob from POST /v1/states (any replica of this model).
void import_state(const std::shared_ptr<HttpSession>& session, Request&& request) {
  ServerContext& ctx = session->context();
  auto executor = session->executor();
  // Parsing validates every byte (checksum, finiteness): on a worker, not the io thread.
  asio::post(ctx.workers(), [session, executor, &ctx, body = std::move(request.body())]() mutable {
    auto blob = std::make_shared<std::string>(std::move(body));
    Status posted = ctx.engine().import_state(
        std::as_bytes(std::span(blob->data(), blob->size())), [session, executor, blob](Expected<int64_t> n) {
          asio::post(executor, [session, n = std::move(n)] {
            if (!n.has_value()) return session->send_error(api_error_from_status(n.status()));
            session->send_response(200, kJson, dump({{"object", "state"}, {"tokens", *n}, {"cached", true}}));
          });
        });
    if (!posted.is_ok()) {
      asio::post(executor, [session, posted] { session->send_error(api_error_from_status(posted)); });
    }
  });
}

bool needs_auth(std::string_view path) { return path != "/health" && path != "/ready" && path != "/metrics"; }

}  // namespace

void route_request(const std::shared_ptr<HttpSession>& session, Request&& request) {
  ServerContext& ctx = session->context();
  const std::string_view target(request.target().data(), request.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  const http::verb method = request.method();

  const auto authorization = request[http::field::authorization];
  if (needs_auth(path) && !ctx.authorized(std::string_view(authorization.data(), authorization.size()))) {
    return session->send_error(ApiError{401, "missing or invalid API key: send 'Authorization: Bearer <key>'",
                                        "authentication_error", "", "invalid_api_key"},
                               {{"WWW-Authenticate", "Bearer"}});
  }

  auto is = [&](std::string_view p, http::verb m) {
    if (path != p) return false;
    if (method != m) {
      session->send_error(ApiError{405, std::string(p) + " expects " + std::string(http::to_string(m)),
                                   "invalid_request_error", "", "method_not_allowed"},
                          {{"Allow", std::string(http::to_string(m))}});
      return false;
    }
    return true;
  };
  const bool known = path == "/v1/completions" || path == "/v1/chat/completions" || path == "/v1/models" ||
                     path == "/v1/states" || path == "/v1/states/import" ||
                     path == "/tokenize" || path == "/detokenize" || path == "/health" || path == "/ready" ||
                     path == "/metrics";
  if (!known) {
    return session->send_error(not_found_error("no route for " + std::string(path), "", "not_found"));
  }
  if (is("/v1/completions", http::verb::post)) return generate(session, std::move(request), ApiKind::kCompletion);
  if (is("/v1/chat/completions", http::verb::post)) return generate(session, std::move(request), ApiKind::kChat);
  if (is("/tokenize", http::verb::post)) return tokenize(session, std::move(request));
  if (is("/detokenize", http::verb::post)) return detokenize(session, request);
  if (is("/v1/states", http::verb::post)) return export_state(session, std::move(request));
  if (is("/v1/states/import", http::verb::post)) return import_state(session, std::move(request));
  if (is("/v1/models", http::verb::get)) {
    return session->send_response(
        200, kJson, models_body(ctx.served_model_name(), ctx.created(), ctx.engine().options().max_model_len));
  }
  if (is("/health", http::verb::get)) {
    // Liveness: 503 once the engine is dead, so the orchestrator restarts the process.
    const Status health = ctx.engine().health();
    if (health.is_ok()) return session->send_response(200, kJson, R"({"status":"ok"})");
    return session->send_response(503, kJson, dump({{"status", "dead"}, {"error", health.message()}}));
  }
  if (is("/ready", http::verb::get)) {
    if (ctx.ready()) return session->send_response(200, kJson, R"({"status":"ready"})");
    return session->send_response(503, kJson, ctx.engine().health().is_ok() ? R"({"status":"draining"})"
                                                                            : R"({"status":"dead"})");
  }
  if (is("/metrics", http::verb::get)) {
    FrontEndCounters front = ctx.metrics().snapshot(ctx.ready(), ctx.engine().health().is_ok());
    const PromptTokenCache::Stats prompts = ctx.prompt_tokens().stats();
    front.prompt_token_cache_hits_total = prompts.hits;
    front.prompt_token_cache_reused_bytes_total = prompts.reused_bytes;
    front.prompt_token_cache_encoded_bytes_total = prompts.encoded_bytes;
    return session->send_response(200, "text/plain; version=0.0.4", render_prometheus(ctx.engine().stats(), front));
  }
}

}  // namespace tnl::server
