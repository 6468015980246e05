#include "server/grpc/grpc_front_end.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

namespace tnl::server {

GrpcFrontEnd::GrpcFrontEnd(ServerContext& context) : service_(context) {}

GrpcFrontEnd::~GrpcFrontEnd() { shutdown(std::chrono::milliseconds(0)); }

Status GrpcFrontEnd::start(const std::string& host, int port) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) return unavailable("cannot start the gRPC server on " + address);
  set_serving(true);
  return Status::ok();
}

void GrpcFrontEnd::set_serving(bool serving) {
  if (!server_) return;
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    // The default service only knows "" until a service name is set explicitly.
    health->SetServingStatus(tnl::v1::Generation::service_full_name(), serving);
    health->SetServingStatus(serving);  // every registered name, including the overall ""
  }
}

void GrpcFrontEnd::shutdown(std::chrono::milliseconds deadline) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + deadline);
  server_->Wait();
  server_.reset();
}

}  // namespace tnl::server
