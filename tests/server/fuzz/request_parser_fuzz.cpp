// libFuzzer target over the pure request parsers (clang only; not run by ctest —
// the bounded randomized gtest in ../api covers CI). Build and run:
//   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DTNL_CUDA=OFF -DTNL_SERVER_FUZZ=ON
//   ninja -C build-fuzz request_parser_fuzz && build-fuzz/tests/server/request_parser_fuzz -max_total_time=60
// Invariants: no crash, no sanitizer report, rejections are 4xx with a message.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/api/openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tnl::server::SpecLimits limits = [] {
    tnl::server::SpecLimits l;
    l.served_model = "tiny";
    l.vocab_size = 512;
    return l;
  }();
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (bool chat : {false, true}) {
    auto result = chat ? tnl::server::parse_chat_request(body, limits)
                       : tnl::server::parse_completion_request(body, limits);
    if (!result.ok()) {
      const tnl::server::ApiError& e = result.error();
      if (e.http_status < 400 || e.http_status >= 500 || e.message.empty()) std::abort();
      (void)e.to_json();
    }
  }
  return 0;
}
