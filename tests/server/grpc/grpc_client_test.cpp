// gRPC front end, end to end: starts the real tnl-server (tiny generated model,
// free loopback ports) and talks to it with the generated tnl.v1 stubs plus the
// standard health and reflection protocols.
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tnl/v1/generate.grpc.pb.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// GET over a raw socket (the tests need /metrics; no HTTP client library here).
std::string http_get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)!::write(fd, request.data(), request.size());
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) response.append(buf, size_t(n));
  ::close(fd);
  return response;
}

double metric(int http_port, const std::string& name) {
  const std::string text = http_get(http_port, "/metrics");
  const size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extra) {
    const fs::path work = fs::path(env("TNL_TEST_WORK_DIR")) / "grpc";
    model_ = work / "tiny-model";
    if (!fs::exists(model_ / "tokenizer.model")) {
      fs::create_directories(work);
      const std::string cmd = env("TNL_MAKE_TEST_MODEL_BIN") + " --out " + model_.string() + " --tokenizer-corpus " +
                              env("TNL_SOURCE_DIR") + "/tests/data/tokenizer_corpus.txt --layers 2 --dim 32 --heads 2 "
                              "--vocab 512 --seed 7 > /dev/null";
      EXPECT_EQ(std::system(cmd.c_str()), 0);
    }
    http_port = free_port();
    grpc_port = free_port();
    std::vector<std::string> args = {env("TNL_SERVER_BIN"), "--model", model_.string(), "--port",
                                     std::to_string(http_port), "--grpc-port", std::to_string(grpc_port),
                                     "--device", "cpu", "--threads", "1", "--served-model-name", "tiny",
                                     "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ), 0);
    for (int i = 0; i < 600 && http_get(http_port, "/health").find("200 OK") == std::string::npos; ++i) {
      std::this_thread::sleep_for(50ms);
    }
    channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port), grpc::InsecureChannelCredentials());
    EXPECT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() + 30s));
  }
  ~ServerProcess() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "tnl-server exit status " << status;
  }

  int http_port = 0;
  int grpc_port = 0;
  std::shared_ptr<grpc::Channel> channel;

 private:
  fs::path model_;
  pid_t pid_ = 0;
};

tnl::v1::GenerateRequest greedy(const std::string& prompt, int max_tokens) {
  tnl::v1::GenerateRequest r;
  r.set_text(prompt);
  r.set_max_tokens(max_tokens);
  r.set_ignore_eos(true);
  r.mutable_sampling()->set_temperature(0);
  return r;
}

class GrpcFrontEnd : public ::testing::Test {
 protected:
  // A long context so that "long" generations outlast any scheduling hiccup.
  static void SetUpTestSuite() { server_ = new ServerProcess({"--max-model-len", "100000"}); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerProcess* server_;
  std::unique_ptr<tnl::v1::Generation::Stub> stub_ = tnl::v1::Generation::NewStub(server_->channel);
};
ServerProcess* GrpcFrontEnd::server_ = nullptr;

TEST_F(GrpcFrontEnd, UnaryAndStreamingAgreeAtTemperatureZero) {
  for (const char* prompt : {"The cat sat", "Once upon a time", "Numbers: 1 2 3"}) {
    grpc::ClientContext unary_ctx;
    tnl::v1::GenerateResponse whole;
    grpc::Status s = stub_->Generate(&unary_ctx, greedy(prompt, 10), &whole);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(whole.finish_reason(), tnl::v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(whole.token_ids_size(), 10);
    EXPECT_EQ(whole.usage().completion_tokens(), 10);
    EXPECT_GT(whole.usage().prompt_tokens(), 0);

    grpc::ClientContext stream_ctx;
    auto reader = stub_->GenerateStream(&stream_ctx, greedy(prompt, 10));
    tnl::v1::GenerateStreamResponse chunk;
    std::string text;
    int tokens = 0;
    tnl::v1::FinishReason finish = tnl::v1::FINISH_REASON_UNSPECIFIED;
    while (reader->Read(&chunk)) {
      text += chunk.text();
      tokens += chunk.token_ids_size();
      if (chunk.finish_reason() != tnl::v1::FINISH_REASON_UNSPECIFIED) {
        finish = chunk.finish_reason();
        EXPECT_EQ(chunk.usage().completion_tokens(), 10);
      }
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(text, whole.text()) << prompt;
    EXPECT_EQ(tokens, 10);
    EXPECT_EQ(finish, tnl::v1::FINISH_REASON_LENGTH);
  }
}

TEST_F(GrpcFrontEnd, LogprobsCarryTokenIds) {
  tnl::v1::GenerateRequest req = greedy("The cat", 4);
  req.set_logprobs(2);
  grpc::ClientContext ctx;
  tnl::v1::GenerateResponse resp;
  ASSERT_TRUE(stub_->Generate(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.logprobs_size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(resp.logprobs(i).token_id(), resp.token_ids(i));
    EXPECT_LE(resp.logprobs(i).logprob(), 0.0f);
    ASSERT_EQ(resp.logprobs(i).top_size(), 2);
    // Greedy: the chosen token is the best alternative.
    EXPECT_EQ(resp.logprobs(i).top(0).token_id(), resp.token_ids(i));
  }
}

TEST_F(GrpcFrontEnd, TokenizeAndModelInfo) {
  grpc::ClientContext ctx;
  tnl::v1::TokenizeRequest req;
  req.set_text("hello there");
  tnl::v1::TokenizeResponse resp;
  ASSERT_TRUE(stub_->Tokenize(&ctx, req, &resp).ok());
  EXPECT_GT(resp.token_ids_size(), 0);
  EXPECT_EQ(resp.token_ids_size(), resp.pieces_size());

  grpc::ClientContext info_ctx;
  tnl::v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModelInfo(&info_ctx, {}, &info).ok());
  EXPECT_EQ(info.name(), "tiny");
  EXPECT_EQ(info.backend(), "cpu");
  EXPECT_EQ(info.num_layers(), 2);
}

TEST_F(GrpcFrontEnd, InvalidArgumentsAreRejectedWithMessages) {
  tnl::v1::GenerateRequest bad = greedy("x", 4);
  bad.mutable_sampling()->set_top_p(2.0f);
  grpc::ClientContext ctx;
  tnl::v1::GenerateResponse resp;
  grpc::Status s = stub_->Generate(&ctx, bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("top_p"), std::string::npos) << s.error_message();

  tnl::v1::GenerateRequest empty;
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub_->Generate(&ctx2, empty, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  tnl::v1::GenerateRequest other_model = greedy("x", 4);
  other_model.set_model("gpt-4");
  grpc::ClientContext ctx3;
  EXPECT_EQ(stub_->Generate(&ctx3, other_model, &resp).error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext ctx4;
  auto reader = stub_->GenerateStream(&ctx4, bad);
  tnl::v1::GenerateStreamResponse chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GrpcFrontEnd, HealthServiceReportsServing) {
  auto health = grpc::health::v1::Health::NewStub(server_->channel);
  for (const char* service : {"", "tnl.v1.Generation"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

TEST_F(GrpcFrontEnd, ReflectionListsTheService) {
  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(server_->channel);
  grpc::ClientContext ctx;
  auto stream = reflection->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("");
  ASSERT_TRUE(stream->Write(req));
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  std::vector<std::string> names;
  for (const auto& s : resp.list_services_response().service()) names.push_back(s.name());
  EXPECT_NE(std::find(names.begin(), names.end(), "tnl.v1.Generation"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "grpc.health.v1.Health"), names.end());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(GrpcFrontEnd, ClientCancellationFreesTheSlot) {
  grpc::ClientContext ctx;
  auto reader = stub_->GenerateStream(&ctx, greedy("Long story", 90000));
  tnl::v1::GenerateStreamResponse chunk;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(reader->Read(&chunk));
  EXPECT_GE(metric(server_->http_port, "tnl_state_slots_used"), 1);
  ctx.TryCancel();
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  double used = -1;
  for (int i = 0; i < 200 && (used = metric(server_->http_port, "tnl_state_slots_used")) != 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(used, 0);
}

TEST(GrpcOverload, FullQueueIsResourceExhausted) {
  ServerProcess server({"--max-num-seqs", "1", "--max-queue", "1", "--max-model-len", "100000"});
  auto stub = tnl::v1::Generation::NewStub(server.channel);
  // One running, one waiting: the queue is full.
  grpc::ClientContext running_ctx, waiting_ctx;
  auto running = stub->GenerateStream(&running_ctx, greedy("first", 90000));
  tnl::v1::GenerateStreamResponse chunk;
  ASSERT_TRUE(running->Read(&chunk));
  auto waiting = stub->GenerateStream(&waiting_ctx, greedy("second", 90000));
  for (int i = 0; i < 200 && metric(server.http_port, "tnl_requests_waiting") < 1; ++i) std::this_thread::sleep_for(10ms);

  grpc::ClientContext ctx;
  tnl::v1::GenerateResponse resp;
  grpc::Status s = stub->Generate(&ctx, greedy("third", 4), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_FALSE(s.error_message().empty());
  running_ctx.TryCancel();
  waiting_ctx.TryCancel();
  while (running->Read(&chunk)) {
  }
  while (waiting->Read(&chunk)) {
  }
  (void)running->Finish();
  (void)waiting->Finish();
}

}  // namespace
