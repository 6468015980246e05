// A stand-in for tnl-server that only streams, to measure how much SSE load
// tnl-loadgen itself can follow from one core when the real server on a small
// machine cannot produce tokens fast enough. It answers POST /v1/completions and
// /v1/chat/completions (streaming or not) with chunks framed and shaped like
// tnl-server's, one chunk per active stream every --step-ms, as a batched decoder
// would. Single thread, epoll, loopback only; it exits after --lifetime seconds.
//
//   g++ -O2 -std=c++20 -o /tmp/bench-sse tools/loadgen/bench_sse_server.cpp
//   taskset -c 1 /tmp/bench-sse 18090 10 600 &      # port, step ms, lifetime s
//   taskset -c 0 python3 tools/loadgen/loadgen.py --port 18090 --concurrency 1000 --output-tokens 256
//       --no-tokenize --no-metrics --duration 20
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  std::string in, out;
  int tokens_left = 0;  // > 0 while streaming
  int total = 0;
  bool chat = false, usage = false, close_after = false, streaming = false, shut_pending = false;
};

std::string chunk(const std::string& data) {
  char head[32];
  std::snprintf(head, sizeof head, "%zx\r\n", data.size());
  return head + data + "\r\n";
}

std::string event(bool chat, const std::string& text, const char* finish) {
  std::string fin = finish ? std::string("\"") + finish + "\"" : "null";
  if (chat) {
    std::string delta = finish ? "{}" : "{\"content\":\"" + text + "\"}";
    return chunk("data: {\"choices\":[{\"delta\":" + delta + ",\"finish_reason\":" + fin +
                 ",\"index\":0,\"logprobs\":null}],\"created\":1,\"id\":\"chatcmpl-1\",\"model\":\"bench\","
                 "\"object\":\"chat.completion.chunk\"}\n\n");
  }
  return chunk("data: {\"choices\":[{\"finish_reason\":" + fin + ",\"index\":0,\"logprobs\":null,\"text\":\"" + text +
               "\"}],\"created\":1,\"id\":\"cmpl-1\",\"model\":\"bench\",\"object\":\"text_completion\",\"usage\":null}\n\n");
}

void flush(Conn& c, int ep) {
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
    c.out.erase(0, static_cast<size_t>(n));
  }
  if (c.out.empty() && c.shut_pending) {  // Connection: close, everything written
    shutdown(c.fd, SHUT_WR);
    c.shut_pending = false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | (c.out.empty() ? 0 : EPOLLOUT);
  ev.data.fd = c.fd;
  epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
}

int int_field(const std::string& body, const char* key, int fallback) {
  auto p = body.find(key);
  if (p == std::string::npos) return fallback;
  p = body.find(':', p);
  return p == std::string::npos ? fallback : std::atoi(body.c_str() + p + 1);
}

// Parses whole requests out of c.in and starts answering them.
void take_requests(Conn& c, int ep) {
  while (c.tokens_left == 0) {
    auto end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) return;
    std::string head = c.in.substr(0, end);
    for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    size_t length = static_cast<size_t>(int_field(head, "content-length", 0));
    if (c.in.size() < end + 4 + length) return;
    std::string body = c.in.substr(end + 4, length);
    c.in.erase(0, end + 4 + length);
    c.chat = head.find("/chat/") != std::string::npos;
    c.close_after = head.find("connection: close") != std::string::npos;
    c.total = int_field(body, "\"max_tokens\"", 16);
    c.usage = body.find("\"include_usage\": true") != std::string::npos ||
              body.find("\"include_usage\":true") != std::string::npos;
    c.streaming = body.find("\"stream\": true") != std::string::npos || body.find("\"stream\":true") != std::string::npos;
    if (c.streaming) {
      c.out += "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n";
      c.out += c.close_after ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
      c.tokens_left = c.total;
    } else {
      std::string text;
      for (int i = 0; i < c.total; ++i) text += " the";
      std::string json = "{\"choices\":[{\"finish_reason\":\"length\",\"index\":0,\"text\":\"" + text +
                         "\",\"message\":{\"role\":\"assistant\",\"content\":\"" + text + "\"}}],\"usage\":{"
                         "\"prompt_tokens\":8,\"completion_tokens\":" + std::to_string(c.total) +
                         ",\"total_tokens\":" + std::to_string(8 + c.total) + "}}";
      c.out += "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(json.size()) +
               "\r\n\r\n" + json;
    }
    flush(c, ep);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s PORT STEP_MS LIFETIME_S\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const auto step = std::chrono::microseconds(static_cast<long>(std::atof(argv[2]) * 1000));
  const auto stop_at = Clock::now() + std::chrono::seconds(std::atoi(argv[3]));

  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(ls, 4096) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  int ep = epoll_create1(0);
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.fd = ls;
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);

  std::unordered_map<int, Conn> conns;
  std::vector<epoll_event> events(4096);
  const std::string token_c = event(false, " the", nullptr), token_chat = event(true, " the", nullptr);
  auto next_tick = Clock::now() + step;
  char buf[65536];
  while (Clock::now() < stop_at) {
    auto left_us = std::chrono::duration_cast<std::chrono::microseconds>(next_tick - Clock::now()).count();
    int wait_ms = left_us > 0 ? static_cast<int>((left_us + 999) / 1000) : 0;  // round up: no busy wait
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), wait_ms);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == ls) {
        for (int cfd; (cfd = accept4(ls, nullptr, nullptr, SOCK_NONBLOCK)) >= 0;) {
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.fd = cfd;
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
          conns[cfd].fd = cfd;
        }
        continue;
      }
      Conn& c = conns[fd];
      bool gone = false;
      if (events[i].events & EPOLLIN) {
        for (;;) {
          ssize_t r = ::recv(fd, buf, sizeof buf, 0);
          if (r > 0) {
            c.in.append(buf, static_cast<size_t>(r));
            continue;
          }
          gone = r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
          break;
        }
      }
      if (gone) {
        close(fd);
        conns.erase(fd);
        continue;
      }
      if (events[i].events & EPOLLOUT) flush(c, ep);
      take_requests(c, ep);
    }
    if (Clock::now() < next_tick) continue;
    next_tick += step;
    for (auto& [fd, c] : conns) {
      if (c.tokens_left <= 0) continue;
      c.out += c.chat ? token_chat : token_c;
      if (--c.tokens_left == 0) {
        c.out += event(c.chat, "", "length");
        if (c.usage) {
          c.out += chunk("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":" +
                         std::to_string(c.total) + ",\"total_tokens\":" + std::to_string(8 + c.total) + "}}\n\n");
        }
        c.out += chunk("data: [DONE]\n\n") + "0\r\n\r\n";
        c.shut_pending = c.close_after;
      }
      flush(c, ep);
      if (c.tokens_left == 0) take_requests(c, ep);  // a pipelined next request
    }
  }
  return 0;
}
