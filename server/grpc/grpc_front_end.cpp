#include "server/grpc/grpc_front_end.h"

#include <google/protobuf/stubs/logging.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

namespace tnl::server {
namespace {

// Protobuf's own log lines (e.g. "String field ... contains invalid UTF-8" for a
// hostile message) go through the server's logger, not raw to stderr.
void protobuf_log(google::protobuf::LogLevel level, const char* filename, int line, const std::string& message) {
  const spdlog::level::level_enum spd = level >= google::protobuf::LOGLEVEL_ERROR     ? spdlog::level::warn
                                        : level == google::protobuf::LOGLEVEL_WARNING ? spdlog::level::info
                                                                                      : spdlog::level::debug;
  spdlog::log(spd, "protobuf ({}:{}): {}", filename ? filename : "?", line, message);
}

}  // namespace

GrpcFrontEnd::GrpcFrontEnd(ServerContext& context) : service_(context) {}

GrpcFrontEnd::~GrpcFrontEnd() { shutdown(std::chrono::milliseconds(0)); }

Status GrpcFrontEnd::start(const std::string& host, int port) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  google::protobuf::SetLogHandler(&protobuf_log);  // once, before any call is served
  grpc::ServerBuilder builder;
  const std::string address = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  // gRPC binds with SO_REUSEPORT by default: a second server on the same port would
  // start silently and steal calls. Fail like the HTTP port does instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // State blobs are as large as a decode state (62 MB at the 7B shape).
  const int max_message = int(std::min<int64_t>(INT32_MAX, std::max<int64_t>(
                                                               int64_t(64) << 20,
                                                               max_state_blob_bytes(service_.context().engine().state_layout()))));
  builder.SetMaxReceiveMessageSize(max_message);
  builder.SetMaxSendMessageSize(max_message);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    return unavailable("cannot listen on " + address + " for gRPC (is another process using --grpc-port " +
                       std::to_string(port) + "?)");
  }
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
