// HttpServer: the listening socket of the HTTP front end. Accepts connections on
// an io_context run by a few io threads (main() owns them) and gives each
// connection its own strand and HttpSession — no thread per connection.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>

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

  asio::io_context& io_;
  ServerContext& context_;
  HttpLimits limits_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
};

}  // namespace tnl::server
