// GrpcFrontEnd: the gRPC server — tnl.v1.Generation, the standard grpc.health.v1
// health service and server reflection — on its own port. gRPC owns its threads
// (callback API: a small pool, no thread per call).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/server.h>

#include "engine/status.h"
#include "server/grpc/generation_service.h"

namespace tnl::server {

class GrpcFrontEnd {
 public:
  explicit GrpcFrontEnd(ServerContext& context);
  ~GrpcFrontEnd();
  // Port 0 picks a free port (see port()).
  Status start(const std::string& host, int port);
  int port() const { return port_; }
  // Health: SERVING while ready, NOT_SERVING while draining.
  void set_serving(bool serving);
  // Stops the server; calls still running after `deadline` are cancelled.
  void shutdown(std::chrono::milliseconds deadline);

 private:
  GenerationService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace tnl::server
