// tnl-server's flags: defaults that work, and one start-up error per bad value,
// naming the flag.
#include "server/server_options.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

namespace tnl::server {
namespace {

// Parses argv the way main() does (without exiting on errors).
ServerOptions parse(std::vector<std::string> args) {
  ServerOptions options;
  CLI::App app;
  add_server_flags(app, options);
  args.insert(args.begin(), "tnl-server");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  app.parse(int(argv.size()), argv.data());
  finalize_server_options(options);
  return options;
}

std::string model_dir() { return std::filesystem::temp_directory_path().string(); }

TEST(ServerOptions, DefaultsAreValid) {
  ::unsetenv("TNL_API_KEY");
  ServerOptions o = parse({"--model", model_dir()});
  EXPECT_TRUE(o.validate().is_ok()) << o.validate().message();
  EXPECT_EQ(o.port, 8000);
  EXPECT_EQ(o.grpc_port, 50051);
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_TRUE(o.api_key.empty());
  EXPECT_EQ(o.served_model_name, std::filesystem::path(model_dir()).filename().string());
  EXPECT_EQ(o.engine_options().max_queue, 256);
  EXPECT_EQ(o.backend_options().max_slots, o.max_num_seqs);
  EXPECT_EQ(o.http_limits().header_timeout.count(), 10'000);
}

TEST(ServerOptions, FlagsReachTheirStructs) {
  ServerOptions o = parse({"--model", model_dir(), "--max-num-seqs", "8", "--request-timeout", "1.5",
                           "--max-body-bytes", "4096", "--threads", "3", "--api-key", "k", "--served-model-name", "m",
                           "--gpu-memory-fraction", "0.5", "--gpu-dtype", "fp16"});
  EXPECT_TRUE(o.validate().is_ok());
  EXPECT_FLOAT_EQ(o.backend_options().gpu_memory_fraction, 0.5f);
  EXPECT_EQ(o.backend_options().gpu_dtype, "fp16");
  EXPECT_EQ(o.engine_options().max_num_seqs, 8);
  EXPECT_EQ(o.engine_options().request_timeout.count(), 1500);
  EXPECT_EQ(o.http_limits().max_body_bytes, 4096u);
  EXPECT_EQ(o.backend_options().cpu_threads, 3);
  EXPECT_EQ(o.api_key, "k");
  EXPECT_EQ(o.served_model_name, "m");
}

TEST(ServerOptions, ApiKeyFromEnvironment) {
  ::setenv("TNL_API_KEY", "from-env", 1);
  EXPECT_EQ(parse({"--model", model_dir()}).api_key, "from-env");
  EXPECT_EQ(parse({"--model", model_dir(), "--api-key", "flag"}).api_key, "flag");
  ::unsetenv("TNL_API_KEY");
}

TEST(ServerOptions, BadValuesNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--model", "/nonexistent/model"}, "--model"},
      {{"--port", "70000"}, "--port"},
      {{"--grpc-port", "-2"}, "--grpc-port"},
      {{"--port", "9000", "--grpc-port", "9000"}, "--grpc-port"},
      {{"--device", "tpu"}, "--device"},
      {{"--max-num-seqs", "0"}, "--max-num-seqs"},
      {{"--max-queue", "0"}, "--max-queue"},
      {{"--max-model-len", "1"}, "--max-model-len"},
      {{"--request-timeout", "-1"}, "--request-timeout"},
      {{"--max-body-bytes", "10"}, "--max-body-bytes"},
      {{"--header-timeout", "0"}, "--header-timeout"},
      {{"--drain-timeout", "-1"}, "--drain-timeout"},
      {{"--http-threads", "0"}, "--http-threads"},
      {{"--gpu-memory-fraction", "0"}, "--gpu-memory-fraction"},
      {{"--gpu-dtype", "fp8"}, "--gpu-dtype"},
      {{"--chat-template", "/nonexistent/template.json"}, "--chat-template"},
  };
  for (const auto& [args, flag] : cases) {
    std::vector<std::string> argv = args;
    if (flag != "--model") argv.insert(argv.begin(), {"--model", model_dir()});
    Status s = parse(argv).validate();
    EXPECT_FALSE(s.is_ok()) << flag;
    EXPECT_NE(s.message().find(flag), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace tnl::server
