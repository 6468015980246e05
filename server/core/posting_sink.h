// posting_sink: the only kind of EventSink the front ends hand to the engine.
// The engine calls sinks on its step-loop thread, which must never wait on a
// front end: this sink moves the event into a handler posted to `executor` (the
// HTTP connection's strand, a gRPC call's worker strand) and returns. Building
// JSON or protobufs, taking the call's lock and starting writes happen there.
// Events of one request reach the handler in order: the engine calls the sink in
// order and a strand runs posted handlers in order.
#pragma once

#include <memory>
#include <utility>

#include <boost/asio/post.hpp>

#include "engine/scheduler/engine.h"

namespace tnl::server {

template <typename Executor, typename Handler>
EventSink posting_sink(Executor executor, Handler handler) {
  return [executor, handler = std::move(handler)](GenerationEvent&& event) mutable {
    boost::asio::post(executor, [handler, event = std::move(event)]() mutable { handler(std::move(event)); });
  };
}

}  // namespace tnl::server
