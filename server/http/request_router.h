// The HTTP routes: /v1/completions, /v1/chat/completions, /v1/models, /tokenize,
// /detokenize, /health, /ready, /metrics. Translates each request into engine
// calls and answers through the session. Runs on the session's strand.
#pragma once

#include <memory>

#include <boost/beast/http.hpp>

namespace tnl::server {

class HttpSession;

void route_request(const std::shared_ptr<HttpSession>& session,
                   boost::beast::http::request<boost::beast::http::string_body>&& request);

}  // namespace tnl::server
