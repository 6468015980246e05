#include "server/grpc/proto_translation.h"

#include <algorithm>

namespace tnl::server {

ApiResult<CompletionSpec> spec_from_proto(const tnl::v1::GenerateRequest& r, const SpecLimits& limits) {
  CompletionSpec spec;
  spec.model = r.model();
  switch (r.prompt_case()) {
    case tnl::v1::GenerateRequest::kText:
      spec.prompts.push_back({true, r.text(), {}});
      break;
    case tnl::v1::GenerateRequest::kTokenIds:
      spec.prompts.push_back({false, {}, {r.token_ids().ids().begin(), r.token_ids().ids().end()}});
      break;
    case tnl::v1::GenerateRequest::kChat:
      spec.kind = ApiKind::kChat;
      for (const auto& m : r.chat().messages()) spec.messages.push_back({m.role(), m.content()});
      break;
    default:
      return invalid_request("prompt is required (text, token_ids or chat)", "prompt");
  }
  const tnl::v1::SamplingParams& s = r.sampling();
  SamplingParams& p = spec.sampling;
  if (s.has_temperature()) p.temperature = s.temperature();
  if (s.has_top_p()) p.top_p = s.top_p();
  if (s.has_top_k()) p.top_k = s.top_k();
  if (s.has_min_p()) p.min_p = s.min_p();
  if (s.has_presence_penalty()) p.presence_penalty = s.presence_penalty();
  if (s.has_frequency_penalty()) p.frequency_penalty = s.frequency_penalty();
  if (s.has_repetition_penalty()) p.repetition_penalty = s.repetition_penalty();
  if (s.has_seed()) p.seed = s.seed();
  if (r.has_max_tokens()) spec.max_tokens = r.max_tokens();
  spec.stop.assign(r.stop().begin(), r.stop().end());
  spec.stop_token_ids.assign(r.stop_token_ids().begin(), r.stop_token_ids().end());
  spec.ignore_eos = r.ignore_eos();
  spec.priority = r.priority();
  if (r.has_logprobs()) {
    if (r.logprobs() < 0) return invalid_request("logprobs must be ≥ 0", "logprobs");
    p.logprobs = r.logprobs();
  }
  switch (r.constraint_case()) {
    case tnl::v1::GenerateRequest::kJsonSchema:
      spec.constraint = ConstraintSpec{ConstraintSpec::Kind::kJsonSchema, r.json_schema()};
      spec.constraint_param = "json_schema";
      break;
    case tnl::v1::GenerateRequest::kJsonObject:
      if (r.json_object()) {
        spec.constraint = ConstraintSpec{ConstraintSpec::Kind::kJsonObject, ""};
        spec.constraint_param = "json_object";
      }
      break;
    case tnl::v1::GenerateRequest::kRegex:
      spec.constraint = ConstraintSpec{ConstraintSpec::Kind::kRegex, r.regex()};
      spec.constraint_param = "regex";
      break;
    case tnl::v1::GenerateRequest::kGrammar:
      spec.constraint = ConstraintSpec{ConstraintSpec::Kind::kGrammar, r.grammar()};
      spec.constraint_param = "grammar";
      break;
    default:
      break;
  }
  for (const auto& [token, bias] : r.logit_bias()) spec.logit_bias.emplace_back(token, bias);
  std::sort(spec.logit_bias.begin(), spec.logit_bias.end());  // a proto map has no order
  spec.allowed_token_ids.assign(r.allowed_token_ids().begin(), r.allowed_token_ids().end());
  spec.min_tokens = r.min_tokens();
  spec.bad_words.assign(r.bad_words().begin(), r.bad_words().end());
  spec.include_stop_str_in_output = r.include_stop_str_in_output();
  if (r.has_n()) spec.n = r.n();
  if (std::optional<ApiError> error = validate_completion_spec(spec, limits)) return *error;
  return spec;
}

grpc::Status grpc_status_from(const ApiError& error) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (error.http_status) {
    case 400: case 413: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case 401: code = grpc::StatusCode::UNAUTHENTICATED; break;
    case 404: code = grpc::StatusCode::NOT_FOUND; break;
    case 408: code = grpc::StatusCode::DEADLINE_EXCEEDED; break;
    case 429: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case 499: code = grpc::StatusCode::CANCELLED; break;
    case 503: code = grpc::StatusCode::UNAVAILABLE; break;
    default: break;
  }
  std::string message = error.param.empty() ? error.message : error.param + ": " + error.message;
  return grpc::Status(code, message);
}

tnl::v1::FinishReason proto_finish_reason(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return tnl::v1::FINISH_REASON_STOP;
    case FinishReason::kLength: return tnl::v1::FINISH_REASON_LENGTH;
    case FinishReason::kCancelled: return tnl::v1::FINISH_REASON_CANCELLED;
    case FinishReason::kTimeout: return tnl::v1::FINISH_REASON_TIMEOUT;
    default: return tnl::v1::FINISH_REASON_UNSPECIFIED;
  }
}

void add_proto_logprobs(const std::vector<TokenLogprobView>& views,
                        google::protobuf::RepeatedPtrField<tnl::v1::TokenLogprob>* out) {
  for (const TokenLogprobView& view : views) {
    tnl::v1::TokenLogprob* lp = out->Add();
    lp->set_token_id(view.token_id);
    lp->set_token(view.token);
    lp->set_logprob(view.logprob);
    for (size_t k = 0; k < view.top.size(); ++k) {
      tnl::v1::TopLogprob* top = lp->add_top();
      if (k < view.top_ids.size()) top->set_token_id(view.top_ids[k]);
      top->set_token(view.top[k].first);
      top->set_logprob(view.top[k].second);
    }
  }
}

}  // namespace tnl::server
