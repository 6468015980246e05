// Support for the gRPC front-end tests: starts the real tnl-server (tiny generated
// model, free loopback ports) and reads its HTTP probes and metrics.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "tnl/v1/generate.grpc.pb.h"

extern char** environ;

namespace tnl::grpc_test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

inline int free_port() {
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
inline std::string http_get(int port, const std::string& path) {
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

inline double metric(int http_port, const std::string& name) {
  const std::string text = http_get(http_port, "/metrics");
  const size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

// The real tnl-server as a child process. `extra` flags go after the defaults;
// `env` adds environment variables; stdout/stderr go to log_path().
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extra, std::map<std::string, std::string> env_vars = {},
                         int grpc_port_wanted = 0) {
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
    grpc_port = grpc_port_wanted ? grpc_port_wanted : free_port();
    log_path_ = work / ("server-" + std::to_string(http_port) + ".log");
    std::vector<std::string> args = {env("TNL_SERVER_BIN"), "--model", model_.string(), "--port",
                                     std::to_string(http_port), "--grpc-port", std::to_string(grpc_port),
                                     "--device", "cpu", "--threads", "1", "--served-model-name", "tiny",
                                     "--log-level", "info"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) envs.emplace_back(*e);
    for (const auto& [k, v] : env_vars) envs.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (std::string& e : envs) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data()), 0);
    posix_spawn_file_actions_destroy(&actions);
    for (int i = 0; i < 600 && http_get(http_port, "/health").find("200 OK") == std::string::npos; ++i) {
      if (exited()) return;
      std::this_thread::sleep_for(50ms);
    }
    channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port), grpc::InsecureChannelCredentials());
    EXPECT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() + 30s));
  }
  ~ServerProcess() {
    if (exit_status_ >= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "tnl-server exit status " << status;
  }

  // True (and the status kept) once the process has exited on its own.
  bool exited() {
    if (exit_status_ >= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }
  int exit_status() const { return exit_status_; }
  pid_t pid() const { return pid_; }
  std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  int http_port = 0;
  int grpc_port = 0;
  std::shared_ptr<grpc::Channel> channel;

 private:
  fs::path model_;
  fs::path log_path_;
  pid_t pid_ = 0;
  int exit_status_ = -1;
};

// Resident set size of a process, from /proc (bytes).
inline int64_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

inline tnl::v1::GenerateRequest greedy(const std::string& prompt, int max_tokens) {
  tnl::v1::GenerateRequest r;
  r.set_text(prompt);
  r.set_max_tokens(max_tokens);
  r.set_ignore_eos(true);
  r.mutable_sampling()->set_temperature(0);
  return r;
}

}  // namespace tnl::grpc_test
