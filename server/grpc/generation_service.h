// GenerationService: tnl.v1.Generation over the engine, with gRPC's callback API
// (no thread per call). Each generation call is a reactor that submits one
// GenerationRequest; the engine's EventSink folds events into it under a small
// mutex and starts gRPC writes/Finish, which never block. A client cancellation
// (OnCancel) cancels the engine request.
//
// Threads: reactor callbacks run on gRPC's callback threads; EventSinks on the
// engine thread. Each call's state is guarded by its own mutex.
#pragma once

#include "server/core/server_context.h"
#include "tnl/v1/generate.grpc.pb.h"

namespace tnl::server {

class GenerationService final : public tnl::v1::Generation::CallbackService {
 public:
  explicit GenerationService(ServerContext& context) : context_(context) {}

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* call, const tnl::v1::GenerateRequest* request,
                                     tnl::v1::GenerateResponse* response) override;
  grpc::ServerWriteReactor<tnl::v1::GenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* call, const tnl::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* call, const tnl::v1::TokenizeRequest* request,
                                     tnl::v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* call,
                                         const tnl::v1::GetModelInfoRequest* request,
                                         tnl::v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* ExportState(grpc::CallbackServerContext* call, const tnl::v1::ExportStateRequest* request,
                                        tnl::v1::StateBlob* response) override;
  grpc::ServerUnaryReactor* ImportState(grpc::CallbackServerContext* call, const tnl::v1::StateBlob* request,
                                        tnl::v1::ImportStateResponse* response) override;

 ServerContext& context() { return context_; }

 private:
  ServerContext& context_;
};

}  // namespace tnl::server
