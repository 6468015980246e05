// The engine's step loop calls sinks; a front-end sink must only post (issue 9:
// gRPC used to build protobufs under a lock on the engine thread).
#include "server/core/posting_sink.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <thread>
#include <vector>

namespace tnl::server {
namespace {

TEST(PostingSink, ReturnsWithoutRunningTheHandlerWhichLaterRunsOnTheExecutorInOrder) {
  boost::asio::io_context io;  // not running yet: nothing posted to it can run
  auto strand = boost::asio::make_strand(io);
  std::vector<int32_t> seen;
  std::thread::id handler_thread;
  EventSink sink = posting_sink(strand, [&](GenerationEvent&& e) {
    seen.push_back(e.completion_tokens);
    handler_thread = std::this_thread::get_id();
  });
  std::thread engine_thread([&] {
    for (int32_t i = 1; i <= 100; ++i) {
      GenerationEvent e;
      e.completion_tokens = i;
      sink(std::move(e));
    }
  });
  engine_thread.join();
  EXPECT_TRUE(seen.empty()) << "the sink ran front-end work on the engine thread";
  io.run();
  ASSERT_EQ(seen.size(), 100u);
  for (int32_t i = 0; i < 100; ++i) EXPECT_EQ(seen[size_t(i)], i + 1);
  EXPECT_EQ(handler_thread, std::this_thread::get_id());
}

}  // namespace
}  // namespace tnl::server
