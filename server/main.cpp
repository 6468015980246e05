// tnl-server: OpenAI-compatible HTTP and tnl.v1 gRPC front ends over one Engine.
//
// Threads:
//   main thread + (--http-threads − 1) io threads: run the HTTP io_context (all
//       connections, the signal_set and the drain timer);
//   the engine's step-loop thread: owned by Engine, calls EventSinks;
//   gRPC's callback threads: owned by grpc::Server.
// Shutdown (SIGTERM/SIGINT): stop accepting, /ready and gRPC health go false, the
// engine refuses new work, in-flight requests finish until --drain-timeout (then
// they end with an error), exit 0. A second signal exits at once. SIGHUP, SIGUSR1
// and SIGUSR2 are logged and otherwise ignored.
#include <sys/resource.h>
#include <unistd.h>

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
  // Capacity, per device under tensor parallelism (each rank holds 1/N of every state).
  const int32_t ranks = options.tensor_parallel_size;
  spdlog::info("backend {}: {} decode-state slots x {:.2f} MB{}", backend->name(), backend->num_slots(),
               double(backend->state_bytes_per_slot()) / 1e6,
               ranks > 1 ? fmt::format(", split over {} ranks: {:.2f} MB per slot per rank", ranks,
                                       double(backend->state_bytes_per_slot()) / ranks / 1e6)
                         : std::string());
  TNL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::load(options.model));
  EngineOptions engine_options = options.engine_options();
  engine_options.model_fingerprint = checkpoint->fingerprint();
  return Engine::create(std::move(backend), std::move(tokenizer), engine_options);
}

// Drives the drain: polls until nothing is in flight or the deadline passes. At the
// deadline every request still running or queued is ended with an error saying so
// (streams get an error event and [DONE], gRPC calls UNAVAILABLE); once those are
// written out (or 2 s later) it stops the io_context, which ends main()'s io.run().
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
  bool nothing_in_flight() const {
    return ctx_.engine().idle() && ctx_.metrics().active_generations.load() == 0;
  }

  void poll() {
    const auto now = std::chrono::steady_clock::now();
    if (nothing_in_flight()) return stop_soon();
    if (now >= deadline_) {
      spdlog::warn("drain timeout: ending what is still running with an error");
      ctx_.engine().abort_all(unavailable("the server is shutting down: the drain timeout (--drain-timeout " +
                                          std::to_string(timeout_.count() / 1000.0) + " s) expired"));
      return wait_for_answers(now + std::chrono::seconds(2));
    }
    after(std::chrono::milliseconds(50), [this] { poll(); });
  }

  // After abort_all: let the error answers reach the sockets, but not forever.
  void wait_for_answers(std::chrono::steady_clock::time_point give_up) {
    if (nothing_in_flight() || std::chrono::steady_clock::now() >= give_up) return stop_soon();
    after(std::chrono::milliseconds(20), [this, give_up] { wait_for_answers(give_up); });
  }

  void stop_soon() {
    // A short grace so the last responses leave the socket buffers.
    after(std::chrono::milliseconds(100), [this] { io_.stop(); });
  }

  template <typename Then>
  void after(std::chrono::milliseconds delay, Then then) {
    timer_.expires_after(delay);
    timer_.async_wait([then = std::move(then)](boost::system::error_code ec) {
      if (!ec) then();
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

extern "C" void exit_now(int) { _exit(0); }

// Polls the engine's health; on the first failure logs it and turns gRPC health
// NOT_SERVING (HTTP /health reads the engine directly).
class HealthWatch {
 public:
  HealthWatch(asio::io_context& io, ServerContext& ctx, GrpcFrontEnd* grpc) : ctx_(ctx), grpc_(grpc), timer_(io) {
    poll();
  }

 private:
  void poll() {
    const Status health = ctx_.engine().health();
    if (!health.is_ok()) {
      spdlog::critical("health: {}; /health answers 503 and gRPC health NOT_SERVING until restarted",
                       health.message());
      if (grpc_) grpc_->set_serving(false);
      return;
    }
    timer_.expires_after(std::chrono::milliseconds(250));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) poll();
    });
  }

  ServerContext& ctx_;
  GrpcFrontEnd* grpc_;
  asio::steady_timer timer_;
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
  ServerContext ctx(**engine, options.served_model_name, *chat_template, options.api_key, int64_t(std::time(nullptr)),
                    options.front_end_limits());

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

  // SIGHUP (a closed terminal, or an operator expecting a reload) and SIGUSR1/2 must
  // not kill a serving process: there is no configuration to reload, so log and go on;
  // SIGUSR1 also logs the engine's load.
  asio::signal_set harmless(io, SIGHUP, SIGUSR1, SIGUSR2);
  std::function<void(boost::system::error_code, int)> on_harmless = [&](boost::system::error_code ec, int signo) {
    if (ec) return;
    const EngineStats s = ctx.engine().stats();
    spdlog::info("signal {} received and ignored (SIGTERM/SIGINT drain the server); running {}, waiting {}, "
                 "slots {}/{}",
                 signo, s.running, s.waiting, s.slots_used, s.slots_total);
    harmless.async_wait(on_harmless);
  };
  harmless.async_wait(on_harmless);

  // A dead engine (a fatal backend error) turns gRPC health NOT_SERVING, as /health
  // turns 503: the orchestrator restarts the process.
  HealthWatch health_watch(io, ctx, grpc.get());

  std::vector<std::thread> io_threads;
  for (int i = 1; i < options.http_threads; ++i) io_threads.emplace_back([&io] { io.run(); });
  io.run();
  for (std::thread& t : io_threads) t.join();
  // Shutting down: a further SIGTERM/SIGINT exits at once, still with status 0.
  // The signal set lets go of its signals first: Asio resets a signal it no longer
  // watches to the default action, and had that happened in its destructor, after
  // the lines below, a SIGTERM during the rest of the teardown would kill the
  // process (status −15; seen in the hardening test's drain case).
  boost::system::error_code cleared;
  signals.clear(cleared);
  std::signal(SIGTERM, exit_now);
  std::signal(SIGINT, exit_now);

  if (grpc) grpc->shutdown(std::chrono::milliseconds(1000));
  ctx.join_workers();  // they use the engine
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
