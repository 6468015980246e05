// tnl.v1 messages ↔ the front-end-neutral types: a GenerateRequest becomes the same
// CompletionSpec the HTTP API builds (and is validated by the same function); an
// ApiError becomes a grpc::Status with the matching code.
#pragma once

#include <grpcpp/support/status.h>

#include "server/api/completion_spec.h"
#include "server/core/choice_progress.h"
#include "tnl/v1/generate.pb.h"

namespace tnl::server {

ApiResult<CompletionSpec> spec_from_proto(const tnl::v1::GenerateRequest& request, const SpecLimits& limits);
grpc::Status grpc_status_from(const ApiError& error);
tnl::v1::FinishReason proto_finish_reason(FinishReason reason);
void add_proto_logprobs(const std::vector<TokenLogprobView>& views,
                        google::protobuf::RepeatedPtrField<tnl::v1::TokenLogprob>* out);

}  // namespace tnl::server
