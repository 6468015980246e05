// tnl-server: OpenAI-compatible HTTP and tnl.v1 gRPC front ends over one Engine.
//
// Threads:
//   main thread + (--http-threads − 1) io threads: run the HTTP io_context (all
//       connections, the signal_set and the drain timer);
//   the engine's step-loop thread: owned by Engine, calls EventSinks;
//   gRPC's callback threads: owned by grpc::Server.
// Shutdown (SIGTERM/SIGINT): stop accepting, /ready and gRPC health go false, the
// engine refuses new work, in-flight requests finish until --drain-timeout, exit 0.
// A second signal exits at once.
#include <sys/resource.h>

#include <csignal>
#include <ctime>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "engine/backend_factory/backend_factory.h"
#include "engine/checkpoint/checkpoint.h"
#include "server/core/server_context.h"
#include "server/grpc/grpc_front_end.h"
#include "server/http/http_server.h"
#include "server/server_options.h"

namespace tnl::server {
namespace {

Expected<std::unique_ptr<Engine>> load_engine(const ServerOptions& options) {
  TNL_ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> checkpoint, Checkpoint::open(options.model));
  TNL_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, make_backend(*checkpoint, options.backend_options()));
  TNL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::load(options.model));
  return Engine::create(std::move(backend), std::move(tokenizer), options.engine_options());
}

// Drives the drain: polls until nothing is in flight or the deadline passes, then
// stops the io_context (which ends main()'s io.run()).
class Drain {
 public:
  Drain(asio::io_context& io, ServerContext& ctx, HttpServer& http, GrpcFrontEnd* grpc, double timeout_s)
      : io_(io), ctx_(ctx), http_(http), grpc_(grpc), timer_(io), timeout_(int64_t(timeout_s * 1000)) {}

  void begin() {
    deadline_ = std::chrono::steady_clock::now() + timeout_;
    spdlog::info("draining: no new requests; waiting up to {:.1f} s for in-flight ones",
                 std::chrono::duration<double>(deadline_ - std::chrono::steady_clock::now()).count());
    http_.stop_accepting();
    ctx_.begin_drain();
    if (grpc_) grpc_->set_serving(false);
    poll();
  }

 private:
  void poll() {
    const bool done = ctx_.engine().idle() && ctx_.metrics().active_generations.load() == 0;
    if (done || std::chrono::steady_clock::now() >= deadline_) {
      if (!done) spdlog::warn("drain timeout: cancelling what is still running");
      // A short grace so the last responses leave the socket buffers.
      timer_.expires_after(std::chrono::milliseconds(100));
      timer_.async_wait([this](boost::system::error_code) { io_.stop(); });
      return;
    }
    timer_.expires_after(std::chrono::milliseconds(50));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) poll();
    });
  }

  asio::io_context& io_;
  ServerContext& ctx_;
  HttpServer& http_;
  GrpcFrontEnd* grpc_;
  asio::steady_timer timer_;
  std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point deadline_;
};

int run(const ServerOptions& options) {
  spdlog::info("tnl-server: loading {} (device {})", options.model, options.device);
  Expected<std::unique_ptr<Engine>> engine = load_engine(options);
  if (!engine.has_value()) {
    spdlog::error("cannot load the model: {}", engine.status().to_string());
    return 1;
  }
  Expected<ChatTemplate> chat_template = resolve_chat_template(options.chat_template, options.model);
  if (!chat_template.has_value()) {
    spdlog::error("{}", chat_template.status().to_string());
    return 1;
  }
  spdlog::info("chat template: {}", chat_template->source);
  ServerContext ctx(**engine, options.served_model_name, *chat_template, options.api_key, int64_t(std::time(nullptr)));

  asio::io_context io(options.http_threads);
  HttpServer http(io, ctx, options.http_limits());
  if (Status s = http.listen(options.host, uint16_t(options.port)); !s) {
    spdlog::error("{}", s.to_string());
    return 1;
  }
  std::unique_ptr<GrpcFrontEnd> grpc;
  if (options.grpc_port >= 0) {
    grpc = std::make_unique<GrpcFrontEnd>(ctx);
    if (Status s = grpc->start(options.host, options.grpc_port); !s) {
      spdlog::error("{}", s.to_string());
      return 1;
    }
  }
  spdlog::info("serving model '{}' on http://{}:{}{}", options.served_model_name, options.host, http.port(),
               grpc ? " and grpc " + options.host + ":" + std::to_string(grpc->port()) : std::string());

  Drain drain(io, ctx, http, grpc.get(), options.drain_timeout_s);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  bool draining = false;
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int signo) {
    if (ec) return;
    spdlog::info("signal {} received", signo);
    if (draining) {
      io.stop();  // second signal: do not wait any longer
      return;
    }
    draining = true;
    drain.begin();
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  std::vector<std::thread> io_threads;
  for (int i = 1; i < options.http_threads; ++i) io_threads.emplace_back([&io] { io.run(); });
  io.run();
  for (std::thread& t : io_threads) t.join();

  if (grpc) grpc->shutdown(std::chrono::milliseconds(1000));
  engine->reset();  // joins the step loop; anything unfinished is cancelled
  spdlog::info("tnl-server: stopped");
  return 0;
}

}  // namespace
}  // namespace tnl::server

int main(int argc, char** argv) {
  tnl::server::ServerOptions options;
  CLI::App app{"tnl-server: OpenAI-compatible HTTP and gRPC serving of a TransNormerLLM checkpoint"};
  tnl::server::add_server_flags(app, options);
  CLI11_PARSE(app, argc, argv);
  tnl::server::finalize_server_options(options);
  spdlog::set_level(spdlog::level::from_str(options.log_level));
  if (tnl::Status s = options.validate(); !s) {
    spdlog::error("invalid options: {}", s.message());
    return 2;
  }
  // One descriptor per connection: lift the soft limit to the hard one (thousands of
  // held streams must not hit a default 1024).
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  // A client that vanishes mid-write must give EPIPE on that socket, not kill us.
  std::signal(SIGPIPE, SIG_IGN);
  return tnl::server::run(options);
}
