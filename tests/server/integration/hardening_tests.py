"""Regression tests for what a hostile-client probe of tnl-server found (issue 9):
stalled readers, fd exhaustion, keep-alive idle close, pipelining, huge prompts,
drain-timeout streams, HTTP/1.0 streaming, signals, unfittable n, a dead engine.
Each test starts its own server (real tnl-server binary, CPU backend, tiny model)."""
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import unittest

import server_harness as h

MODEL = None
# Under ASan/UBSan (tools/test_sanitized.sh) memory and timing bounds do not hold
# (shadow memory, quarantine, slowdown): those assertions are skipped, the code
# paths still run.
SANITIZED = os.environ.get("TNL_TEST_SANITIZED") == "1"


def setUpModule():
    global MODEL
    MODEL = h.make_test_model()


def completion(prompt, max_tokens=12, **kw):
    body = {"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
    body.update(kw)
    return body


def raw_post(path, body, version="1.1", extra_headers=""):
    data = json.dumps(body) if not isinstance(body, (bytes, str)) else body
    data = data.encode() if isinstance(data, str) else data
    head = (f"POST {path} HTTP/{version}\r\nHost: x\r\nContent-Type: application/json\r\n{extra_headers}"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    return head + data


def read_http_response(sock, timeout=30):
    """Reads one HTTP/1.1 response (Content-Length or chunked) from a socket that may
    carry more after it; returns (status, headers, body bytes, leftover bytes)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response header: %r" % buf[:200])
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            rest += sock.recv(65536)
        return status, headers, rest[:n], rest[n:]
    assert headers.get("transfer-encoding") == "chunked", headers
    body = b""
    while True:
        while b"\r\n" not in rest:
            rest += sock.recv(65536)
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        while len(rest) < size + 2:
            rest += sock.recv(65536)
        body += rest[:size]
        rest = rest[size + 2:]
        if size == 0:
            return status, headers, body, rest


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(predicate, timeout=10, interval=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class StalledReaders(unittest.TestCase):
    def test_never_reading_streams_are_cut_off_and_memory_stays_bounded(self):
        # 50 streams that never read: each may buffer at most --stream-buffer-bytes in
        # the server; past that the client is cut off and its slot freed.
        server = h.Server(MODEL, "--max-model-len", "1000000", "--max-num-seqs", "64",
                          "--stream-buffer-bytes", "65536")
        socks = []
        try:
            before = rss_bytes(server.proc.pid)
            body = completion("never read", max_tokens=900000, stream=True, logprobs=5)
            for _ in range(50):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", server.port))
                s.sendall(raw_post("/v1/completions", body))
                socks.append(s)
            started = time.time()
            peak = before
            while time.time() - started < 20:
                peak = max(peak, rss_bytes(server.proc.pid))
                time.sleep(0.25)
            growth = peak - before
            # 50 × 64 KiB of buffers plus allocator slack; unbounded, this grows by GBs.
            if not SANITIZED:
                self.assertLess(growth, 96 << 20, f"RSS grew by {growth >> 20} MiB")
            # Kernel socket buffers take megabytes before the server's own buffer
            # fills; under the sanitizers' slowdown the 50 streams do not get there
            # within the test (the code paths above still ran under them).
            if not SANITIZED:
                self.assertTrue(wait_for(lambda: server.metric("tnl_state_slots_used") == 0, 10))
                self.assertGreaterEqual(server.metric("tnl_stalled_clients_total"), 50)
                self.assertIn("stopped reading", server.read_log())
            # The server still serves.
            self.assertEqual(server.post("/v1/completions", completion("ok", max_tokens=2))[0], 200)
        finally:
            for s in socks:
                s.close()
            self.assertEqual(server.terminate(), 0)


class FileDescriptors(unittest.TestCase):
    def test_out_of_fds_the_accept_loop_backs_off_and_keeps_serving(self):
        import resource

        def low_fd_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))

        server = h.Server(MODEL, preexec_fn=low_fd_limit)
        flood = []
        try:
            kept = server.connection()
            kept.request("GET", "/health")
            self.assertEqual(kept.getresponse().read(), b'{"status":"ok"}')
            for _ in range(150):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", server.port))
                flood.append(s)
            time.sleep(0.5)
            cpu_before = cpu_seconds(server.proc.pid)
            lines_before = server.read_log().count("accept")
            time.sleep(3)
            cpu = cpu_seconds(server.proc.pid) - cpu_before
            lines = server.read_log().count("accept") - lines_before
            if not SANITIZED:
                self.assertLess(cpu, 0.6, f"the server burned {cpu:.2f} s of CPU in 3 s while out of descriptors")
            self.assertLess(lines, 10, f"{lines} accept log lines in 3 s")
            # An established connection is still served.
            kept.request("GET", "/health")
            self.assertEqual(kept.getresponse().status, 200)
            kept.close()
            for s in flood:
                s.close()
            flood = []
            # Descriptors back: new connections are accepted again.
            self.assertTrue(wait_for(lambda: server.request("GET", "/health", timeout=2)[0] == 200, 10))
        finally:
            for s in flood:
                s.close()
            self.assertEqual(server.terminate(), 0)


class KeepAliveAndPipelining(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = h.Server(MODEL, "--header-timeout", "0.5", "--max-model-len", "100000")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.terminate() == 0

    def assert_closed_soon(self, sock, within):
        sock.settimeout(within + 5)
        started = time.time()
        self.assertEqual(sock.recv(100), b"")
        self.assertLess(time.time() - started, within)

    def test_idle_keep_alive_closed_after_completion_chat_and_stream(self):
        bodies = [("/v1/completions", completion("idle", max_tokens=3)),
                  ("/v1/completions", completion("idle", max_tokens=3, stream=True)),
                  ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})]
        for path, body in bodies:
            sock = socket.create_connection(("127.0.0.1", self.server.port))
            sock.sendall(raw_post(path, body))
            status, _, _, leftover = read_http_response(sock)
            self.assertEqual(status, 200)
            self.assertEqual(leftover, b"")
            self.assert_closed_soon(sock, 3)
            sock.close()

    def test_two_pipelined_posts_get_two_answers_in_order(self):
        sock = socket.create_connection(("127.0.0.1", self.server.port))
        sock.sendall(raw_post("/v1/completions", completion("first", max_tokens=4)) +
                     raw_post("/v1/completions", completion("second", max_tokens=2)))
        s1, _, b1, rest = read_http_response(sock)
        self.assertEqual(s1, 200)
        self.assertEqual(json.loads(b1)["usage"]["completion_tokens"], 4)
        # The second answer may already be in `rest`.
        sock2 = _Prefixed(sock, rest)
        s2, _, b2, _ = read_http_response(sock2)
        self.assertEqual(s2, 200)
        self.assertEqual(json.loads(b2)["usage"]["completion_tokens"], 2)
        sock.close()

    def test_get_sent_during_a_long_post_is_answered_after_it(self):
        sock = socket.create_connection(("127.0.0.1", self.server.port))
        sock.sendall(raw_post("/v1/completions", completion("long one", max_tokens=400)))
        time.sleep(0.01)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        s1, _, b1, rest = read_http_response(sock)
        self.assertEqual(s1, 200)
        self.assertEqual(json.loads(b1)["usage"]["completion_tokens"], 400)
        s2, _, b2, _ = read_http_response(_Prefixed(sock, rest))
        self.assertEqual((s2, b2), (200, b'{"status":"ok"}'))
        sock.close()

    def test_pipelined_stream_then_post(self):
        sock = socket.create_connection(("127.0.0.1", self.server.port))
        sock.sendall(raw_post("/v1/completions", completion("s", max_tokens=5, stream=True)) +
                     raw_post("/v1/completions", completion("t", max_tokens=3)))
        s1, _, b1, rest = read_http_response(sock)
        self.assertEqual(s1, 200)
        chunks, done = h.parse_sse(b1.decode())
        self.assertTrue(done)
        s2, _, b2, _ = read_http_response(_Prefixed(sock, rest))
        self.assertEqual(json.loads(b2)["usage"]["completion_tokens"], 3)
        sock.close()


class _Prefixed:
    """A socket whose first recv() returns bytes already read."""

    def __init__(self, sock, prefix):
        self.sock, self.prefix = sock, prefix

    def settimeout(self, t):
        self.sock.settimeout(t)

    def recv(self, n):
        if self.prefix:
            out, self.prefix = self.prefix, b""
            return out
        return self.sock.recv(n)


class HugeInput(unittest.TestCase):
    def test_huge_prompts_are_refused_cheaply_and_health_stays_fast(self):
        server = h.Server(MODEL, "--max-model-len", "256", "--max-body-bytes", str(16 << 20))
        try:
            prompt = "lorem ipsum dolor sit amet " * (7_000_000 // 27)
            results = []

            def post(path, body):
                started = time.time()
                results.append((server.post(path, body, timeout=60), time.time() - started))

            threads = [threading.Thread(target=post, args=("/v1/completions", {"prompt": prompt}))
                       for _ in range(3)]
            threads.append(threading.Thread(target=post, args=("/tokenize", {"content": prompt})))
            for t in threads:
                t.start()
            health = []
            for _ in range(10):
                started = time.time()
                self.assertEqual(server.request("GET", "/health")[0], 200)
                health.append(time.time() - started)
                time.sleep(0.05)
            for t in threads:
                t.join(60)
            self.assertEqual(len(results), 4)
            for (status, _, body), _ in results:
                self.assertEqual(status, 400, str(body)[:300])
                self.assertIn("max-model-len", body["error"]["message"])
            if not SANITIZED:
                self.assertLess(max(health), 0.5, health)
                self.assertLess(rss_bytes(server.proc.pid), 300 << 20)
            # A prompt just under the limit still tokenizes and runs.
            self.assertEqual(server.post("/v1/completions", completion("short", max_tokens=2))[0], 200)
        finally:
            self.assertEqual(server.terminate(), 0)


class ShutdownAndProtocol(unittest.TestCase):
    def test_drain_timeout_ends_streams_with_an_error_event_and_done(self):
        server = h.Server(MODEL, "--drain-timeout", "0.5", "--max-model-len", "1000000")
        result = []

        def run():
            result.append(server.stream("/v1/completions", completion("forever", max_tokens=900000, stream=True)))

        t = threading.Thread(target=run)
        t.start()
        self.assertTrue(wait_for(lambda: server.metric("tnl_requests_running") == 1))
        server.proc.send_signal(signal.SIGTERM)
        t.join(30)
        self.assertEqual(server.terminate(), 0)
        status, chunks, done = result[0]
        self.assertEqual(status, 200)
        self.assertTrue(done, "no [DONE] after the drain timeout")
        self.assertIn("error", chunks[-1])
        self.assertIn("drain", chunks[-1]["error"]["message"])

    def test_http10_stream_is_not_chunked(self):
        server = h.Server(MODEL)
        try:
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(raw_post("/v1/completions", completion("old client", max_tokens=4, stream=True), "1.0"))
            sock.settimeout(30)
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
            head, body = raw.split(b"\r\n\r\n", 1)
            self.assertNotIn(b"chunked", head.lower())
            self.assertTrue(head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head)
            chunks, done = h.parse_sse(body.decode())
            self.assertTrue(done)
            self.assertEqual(len(chunks), 5)
        finally:
            self.assertEqual(server.terminate(), 0)

    def test_sighup_and_sigusr1_do_not_kill_the_server(self):
        server = h.Server(MODEL)
        try:
            for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
                server.proc.send_signal(sig)
                time.sleep(0.2)
                self.assertIsNone(server.proc.poll(), f"signal {sig} killed the server")
                self.assertEqual(server.request("GET", "/health")[0], 200)
        finally:
            self.assertEqual(server.terminate(), 0)

    def test_n_above_max_queue_is_400_not_429(self):
        server = h.Server(MODEL, "--max-queue", "2")
        try:
            status, headers, body = server.post("/v1/completions", completion("many", max_tokens=2, n=4))
            self.assertEqual(status, 400, str(body)[:300])
            self.assertEqual(body["error"]["param"], "n")
            self.assertNotIn("Retry-After", headers)
            status, _, _ = server.post("/v1/completions", completion("few", max_tokens=2, n=2))
            self.assertEqual(status, 200)
        finally:
            self.assertEqual(server.terminate(), 0)

    def test_bearer_scheme_is_case_insensitive(self):
        server = h.Server(MODEL, "--api-key", "k3y")
        try:
            for scheme in ("Bearer", "bearer", "BEARER"):
                status, _, _ = server.post("/v1/completions", completion("x", max_tokens=1),
                                           headers={"Content-Type": "application/json",
                                                    "Authorization": f"{scheme} k3y"})
                self.assertEqual(status, 200, scheme)
            self.assertEqual(server.post("/v1/completions", completion("x", max_tokens=1),
                                         headers={"Authorization": "Basic k3y"})[0], 401)
        finally:
            self.assertEqual(server.terminate(), 0)


class DeadEngine(unittest.TestCase):
    def test_a_fatal_backend_error_fails_requests_and_health(self):
        # Test hook: the backend reports a sticky (fatal) error from its 40th step on.
        server = h.Server(MODEL, "--max-model-len", "100000", env={"TNL_TEST_FATAL_STEP": "40"})
        try:
            status, _, body = server.post("/v1/completions", completion("doomed", max_tokens=5000))
            self.assertEqual(status, 503, body)
            self.assertEqual(body["error"]["type"], "unavailable_error")
            self.assertIn("injected", body["error"]["message"])
            status, _, health = server.request("GET", "/health")
            self.assertEqual(status, 503)
            self.assertEqual(health["status"], "dead")
            # New work is refused at once, not queued forever.
            status, _, body = server.post("/v1/completions", completion("after", max_tokens=2), timeout=5)
            self.assertEqual(status, 503, body)
            self.assertIn("engine", body["error"]["message"])
        finally:
            self.assertEqual(server.terminate(), 0)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
