// HttpServer: the listening socket of the HTTP front end. Accepts connections on
// an io_context run by a few io threads (main() owns them) and gives each
// connection its own strand and HttpSession — no thread per connection.
//
// Out of file descriptors (EMFILE/ENFILE) the pending connection stays in the
// backlog and accept fails at once, again and again: the loop then backs off
// (10 ms doubling to 1 s) and logs at most one line per 10 s, while established
// connections keep being served.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "engine/status.h"
#include "server/http/http_session.h"

namespace tnl::server {

class HttpServer {
 public:
  HttpServer(asio::io_context& io, ServerContext& context, HttpLimits limits);
  // Binds and starts accepting. Port 0 picks a free port (see port()).
  Status listen(const std::string& host, uint16_t port);
  uint16_t port() const { return port_; }
  // Draining: close the listening socket; open connections finish their requests.
  void stop_accepting();

 private:
  void accept_next();
  void on_accept_error(const beast::error_code& ec);

  asio::io_context& io_;
  ServerContext& context_;
  HttpLimits limits_;
  tcp::acceptor acceptor_;
  asio::steady_timer backoff_timer_;
  std::chrono::milliseconds backoff_{0};            // 0: accepting normally
  std::chrono::steady_clock::time_point last_error_log_;
  uint64_t errors_since_log_ = 0;
  uint16_t port_ = 0;
};

}  // namespace tnl::server
