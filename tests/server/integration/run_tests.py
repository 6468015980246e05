"""Integration tests of tnl-server over real HTTP (stdlib clients only).
Run by ctest (server_integration) with TNL_SERVER_BIN, TNL_MAKE_TEST_MODEL_BIN,
TNL_SOURCE_DIR and TNL_TEST_WORK_DIR set."""
import concurrent.futures
import json
import os
import socket
import sys
import threading
import time
import unittest

import server_harness as h

MODEL = None
SERVER = None
# Under ASan/UBSan (tools/test_sanitized.sh) the server is several times slower:
# long generations are shortened so that they still finish within the timeouts.
SANITIZED = os.environ.get("TNL_TEST_SANITIZED") == "1"
DRAIN_TOKENS = 2000 if SANITIZED else 20000


def setUpModule():
    global MODEL, SERVER
    MODEL = h.make_test_model()
    # A long context so that "long" generations outlast any scheduling hiccup.
    SERVER = h.Server(MODEL, "--max-model-len", "100000")


def tearDownModule():
    if SERVER:
        assert SERVER.terminate() == 0


def completion(prompt, max_tokens=12, **kw):
    body = {"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
    body.update(kw)
    return body


PROMPTS = ["The cat sat", "Once upon a time", "In the beginning", "A quick brown fox", "Numbers: 1 2 3",
           "She said hello", "The weather today", "Rivers flow to the sea"]


class Generation(unittest.TestCase):
    def test_stream_equals_non_stream_completions(self):
        for prompt in PROMPTS[:4]:
            status, _, whole = SERVER.post("/v1/completions", completion(prompt))
            self.assertEqual(status, 200, whole)
            status, chunks, done = SERVER.stream("/v1/completions", completion(prompt, stream=True))
            self.assertEqual(status, 200)
            self.assertTrue(done)
            self.assertEqual(h.stream_text(chunks)[0], whole["choices"][0]["text"])
            self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "length")
            self.assertEqual(whole["choices"][0]["finish_reason"], "length")
            for c in chunks:
                self.assertEqual(c["object"], "text_completion")
                self.assertEqual(c["id"], chunks[0]["id"])
                self.assertEqual(c["model"], "tiny")

    def test_stream_equals_non_stream_chat(self):
        body = {"messages": [{"role": "system", "content": "Be short."}, {"role": "user", "content": "Hi there"}],
                "max_tokens": 10, "temperature": 0, "ignore_eos": True}
        status, _, whole = SERVER.post("/v1/chat/completions", body)
        self.assertEqual(status, 200, whole)
        self.assertEqual(whole["object"], "chat.completion")
        self.assertEqual(whole["choices"][0]["message"]["role"], "assistant")
        status, chunks, done = SERVER.stream("/v1/chat/completions", dict(body, stream=True))
        self.assertTrue(done)
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        self.assertEqual(chunks[0]["object"], "chat.completion.chunk")
        self.assertEqual(h.stream_text(chunks, chat=True)[0], whole["choices"][0]["message"]["content"])

    def test_usage_counts(self):
        prompt = "The cat sat on the mat"
        _, _, tok = SERVER.post("/tokenize", {"content": prompt})
        status, _, whole = SERVER.post("/v1/completions", completion(prompt, max_tokens=7))
        self.assertEqual(status, 200)
        self.assertEqual(whole["usage"]["prompt_tokens"], tok["count"])
        self.assertEqual(whole["usage"]["completion_tokens"], 7)
        self.assertEqual(whole["usage"]["total_tokens"], tok["count"] + 7)
        # Streaming usage chunk: last before [DONE], choices empty, same counts.
        _, chunks, done = SERVER.stream("/v1/completions", completion(
            prompt, max_tokens=7, stream=True, stream_options={"include_usage": True}))
        self.assertTrue(done)
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"], whole["usage"])
        self.assertTrue(all(c["usage"] is None for c in chunks[:-1]))
        # Token-id prompts count as given; n and list prompts add up.
        status, _, ids = SERVER.post("/v1/completions", completion(tok["tokens"], max_tokens=3))
        self.assertEqual(ids["usage"]["prompt_tokens"], tok["count"])
        self.assertEqual(ids["choices"][0]["text"], whole["choices"][0]["text"][:len(ids["choices"][0]["text"])])
        status, _, multi = SERVER.post("/v1/completions", completion(["a b", "c d e"], max_tokens=2, n=2))
        self.assertEqual(status, 200, multi)
        self.assertEqual(sorted(c["index"] for c in multi["choices"]), [0, 1, 2, 3])
        self.assertEqual(multi["usage"]["completion_tokens"], 8)

    def test_echo_logprobs_stop(self):
        status, _, r = SERVER.post("/v1/completions", completion("Hello world", max_tokens=4, echo=True, logprobs=2))
        self.assertEqual(status, 200, r)
        choice = r["choices"][0]
        self.assertTrue(choice["text"].startswith("Hello world"))
        lp = choice["logprobs"]
        self.assertEqual(len(lp["tokens"]), len(lp["token_logprobs"]))
        self.assertGreaterEqual(len(lp["tokens"]), 4)
        self.assertTrue(all(len(t) <= 2 for t in lp["top_logprobs"] if t is not None))
        # A stop string found in the greedy text cuts it there.
        _, _, plain = SERVER.post("/v1/completions", completion("Hello world", max_tokens=12))
        text = plain["choices"][0]["text"]
        if len(text) > 3:
            stop = text[2:4]
            _, _, stopped = SERVER.post("/v1/completions", completion("Hello world", max_tokens=12, stop=[stop]))
            self.assertEqual(stopped["choices"][0]["finish_reason"], "stop")
            self.assertEqual(stopped["choices"][0]["text"], text[:text.index(stop)])

    def test_models_tokenize_detokenize_health(self):
        status, _, models = SERVER.request("GET", "/v1/models")
        self.assertEqual(status, 200)
        self.assertEqual(models["data"][0]["id"], "tiny")
        _, _, tok = SERVER.post("/tokenize", {"content": "hello there", "add_special": False})
        _, _, detok = SERVER.post("/detokenize", {"tokens": tok["tokens"]})
        self.assertEqual(detok["content"], "hello there")
        self.assertEqual(SERVER.request("GET", "/health")[0], 200)
        self.assertEqual(SERVER.request("GET", "/ready")[0], 200)
        _, headers, metrics = SERVER.request("GET", "/metrics")
        self.assertIn("tnl_time_to_first_token_seconds_bucket", metrics)
        self.assertIn("tnl_step_time_seconds_count", metrics)
        self.assertIn("tnl_generation_tokens_total", metrics)

    def test_keep_alive_connection_serves_several_requests(self):
        conn = SERVER.connection()
        try:
            texts = []
            for stream in (False, True, False):
                conn.request("POST", "/v1/completions", body=json.dumps(completion("keep alive", max_tokens=5,
                                                                                  stream=stream)),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                raw = resp.read().decode()
                if stream:
                    chunks, done = h.parse_sse(raw)
                    self.assertTrue(done)
                    texts.append(h.stream_text(chunks)[0])
                else:
                    texts.append(json.loads(raw)["choices"][0]["text"])
            self.assertEqual(texts[0], texts[1])
            self.assertEqual(texts[1], texts[2])
        finally:
            conn.close()

    def test_chat_stream_with_n_choices(self):
        body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6, "temperature": 0, "n": 2,
                "ignore_eos": True, "stream": True}
        status, chunks, done = SERVER.stream("/v1/chat/completions", body)
        self.assertEqual(status, 200)
        self.assertTrue(done)
        texts = h.stream_text(chunks, chat=True)
        self.assertEqual(sorted(texts), [0, 1])
        self.assertEqual(texts[0], texts[1])  # greedy: both choices agree
        finishes = [c["choices"][0] for c in chunks if c["choices"][0]["finish_reason"]]
        self.assertEqual(sorted(f["index"] for f in finishes), [0, 1])

    def test_expect_100_continue(self):
        body = json.dumps(completion("continue", max_tokens=3)).encode()
        sock = socket.create_connection(("127.0.0.1", SERVER.port))
        sock.settimeout(10)
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\nContent-Length: " + str(len(body)).encode() +
                     b"\r\n\r\n")
        self.assertTrue(sock.recv(64).startswith(b"HTTP/1.1 100 Continue"))
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        sock.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK"), answer[:80])

    def test_64_concurrent_streams_match_solo_runs(self):
        prompts = [f"{PROMPTS[i % len(PROMPTS)]} {i}" for i in range(64)]
        solo = {}
        for p in prompts:
            _, _, r = SERVER.post("/v1/completions", completion(p, max_tokens=8))
            solo[p] = r["choices"][0]["text"]

        def run(p):
            status, chunks, done = SERVER.stream("/v1/completions", completion(p, max_tokens=8, stream=True))
            return p, status, done, h.stream_text(chunks).get(0, "")

        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            results = list(pool.map(run, prompts))
        for p, status, done, text in results:
            self.assertEqual(status, 200)
            self.assertTrue(done)
            self.assertEqual(text, solo[p], p)

    def test_disconnect_mid_stream_frees_the_slot(self):
        before = SERVER.metric("tnl_client_disconnects_total")
        sock = socket.create_connection(("127.0.0.1", SERVER.port))
        body = json.dumps(completion("Long story", max_tokens=90000, stream=True))
        sock.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
        received = b""
        while received.count(b"data: ") < 3:
            received += sock.recv(65536)
        self.assertGreaterEqual(SERVER.metric("tnl_state_slots_used"), 1)
        sock.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            if SERVER.metric("tnl_state_slots_used") == 0 and SERVER.metric("tnl_requests_running") == 0:
                break
            time.sleep(0.02)
        self.assertEqual(SERVER.metric("tnl_state_slots_used"), 0)
        self.assertEqual(SERVER.metric("tnl_client_disconnects_total"), before + 1)

    def test_disconnect_while_waiting_for_a_whole_answer_frees_the_slot(self):
        before = SERVER.metric("tnl_client_disconnects_total")
        sock = socket.create_connection(("127.0.0.1", SERVER.port))
        body = json.dumps(completion("Long answer", max_tokens=90000))
        sock.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
        deadline = time.time() + 10
        while SERVER.metric("tnl_state_slots_used") < 1 and time.time() < deadline:
            time.sleep(0.01)
        self.assertGreaterEqual(SERVER.metric("tnl_state_slots_used"), 1)
        sock.close()
        deadline = time.time() + 10
        while SERVER.metric("tnl_state_slots_used") != 0 and time.time() < deadline:
            time.sleep(0.02)
        self.assertEqual(SERVER.metric("tnl_state_slots_used"), 0)
        self.assertEqual(SERVER.metric("tnl_client_disconnects_total"), before + 1)


class Errors(unittest.TestCase):
    def assert_error(self, response, status, param=None, code=None):
        got_status, _, body = response
        self.assertEqual(got_status, status, body)
        self.assertIsInstance(body, dict, body)
        error = body["error"]
        self.assertEqual(set(error), {"message", "type", "param", "code"})
        self.assertTrue(error["message"])
        if param is not None:
            self.assertEqual(error["param"], param)
        if code is not None:
            self.assertEqual(error["code"], code)

    def test_bad_requests(self):
        post = SERVER.post
        self.assert_error(post("/v1/completions", "{not json"), 400, code="invalid_json")
        self.assert_error(post("/v1/completions", "[1, 2]"), 400, code="invalid_json")
        self.assert_error(post("/v1/completions", {"prompt": 3}), 400, "prompt")
        self.assert_error(post("/v1/completions", {"prompt": "x", "max_tokens": "10"}), 400, "max_tokens")
        self.assert_error(post("/v1/completions", {"prompt": "x", "temperature": -1}), 400, "temperature")
        self.assert_error(post("/v1/completions", {"prompt": "x", "top_p": 2}), 400, "top_p")
        self.assert_error(post("/v1/completions", {"prompt": "x", "n": 0}), 400, "n")
        self.assert_error(post("/v1/completions", {"prompt": ""}), 400, "prompt")
        self.assert_error(post("/v1/completions", {"prompt": [99999]}), 400, "prompt")
        self.assert_error(post("/v1/completions", {"prompt": "x", "model": "gpt-4"}), 404, "model", "model_not_found")
        self.assert_error(post("/v1/chat/completions", {"messages": []}), 400, "messages")
        self.assert_error(post("/v1/chat/completions", {"messages": [{"role": "user", "content": 1}]}), 400,
                          "messages")
        self.assert_error(post("/tokenize", {"content": 5}), 400, "content")
        self.assert_error(post("/detokenize", {"tokens": [-1]}), 400, "tokens")
        self.assert_error(SERVER.request("GET", "/v1/nothing"), 404)
        self.assert_error(SERVER.request("GET", "/v1/completions"), 405)
        # The server is still fine.
        self.assertEqual(post("/v1/completions", completion("ok", max_tokens=1))[0], 200)

    def test_limits_auth_and_slow_clients(self):
        server = h.Server(MODEL, "--max-body-bytes", "2048", "--api-key", "sekret", "--header-timeout", "0.5",
                          "--max-model-len", "64")
        try:
            auth = {"Content-Type": "application/json", "Authorization": "Bearer sekret"}
            self.assert_error(server.post("/v1/completions", completion("x")), 401, code="invalid_api_key")
            self.assert_error(server.post("/v1/completions", completion("x"),
                                          headers={"Authorization": "Bearer wrong"}), 401)
            self.assertEqual(server.request("GET", "/health")[0], 200)  # probes need no key
            self.assertEqual(server.post("/v1/completions", completion("x", max_tokens=2), headers=auth)[0], 200)
            self.assert_error(server.post("/v1/completions", {"prompt": "y" * 5000}, headers=auth), 413,
                              code="body_too_large")
            self.assert_error(server.post("/v1/completions", {"prompt": "word " * 100}, headers=auth), 400, "prompt",
                              "context_length_exceeded")
            self.assert_error(server.post("/v1/completions", {"prompt": "x", "max_tokens": 100}, headers=auth), 400,
                              "max_tokens", "context_length_exceeded")
            # Slow client: half a header, then silence → the server hangs up.
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
            sock.settimeout(5)
            started = time.time()
            self.assertEqual(sock.recv(100), b"")
            self.assertLess(time.time() - started, 3)
            sock.close()
        finally:
            self.assertEqual(server.terminate(), 0)


class RequestTimeout(unittest.TestCase):
    def test_long_generation_ends_with_finish_reason_timeout(self):
        server = h.Server(MODEL, "--request-timeout", "0.2", "--max-model-len", "100000")
        try:
            started = time.time()
            status, _, r = server.post("/v1/completions", completion("x", max_tokens=90000))
            self.assertEqual(status, 200, r)
            self.assertEqual(r["choices"][0]["finish_reason"], "timeout")
            self.assertLess(r["usage"]["completion_tokens"], 90000)
            self.assertLess(time.time() - started, 10)
            _, chunks, done = server.stream("/v1/completions", completion("x", max_tokens=90000, stream=True))
            self.assertTrue(done)
            self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "timeout")
        finally:
            self.assertEqual(server.terminate(), 0)


class Overload(unittest.TestCase):
    def test_small_queue_answers_429_while_admitted_complete(self):
        server = h.Server(MODEL, "--max-num-seqs", "1", "--max-queue", "1")
        try:
            def run(i):
                return server.post("/v1/completions", completion(f"load {i}", max_tokens=60))

            with concurrent.futures.ThreadPoolExecutor(12) as pool:
                results = list(pool.map(run, range(12)))
            ok = [r for r in results if r[0] == 200]
            rejected = [r for r in results if r[0] == 429]
            self.assertEqual(len(ok) + len(rejected), 12)
            self.assertGreaterEqual(len(ok), 1)
            self.assertGreaterEqual(len(rejected), 1)
            for status, headers, body in rejected:
                self.assertEqual(headers.get("Retry-After"), "1")
                self.assertEqual(body["error"]["type"], "rate_limit_error")
            for status, headers, body in ok:
                self.assertEqual(body["usage"]["completion_tokens"], 60)
        finally:
            self.assertEqual(server.terminate(), 0)


class Drain(unittest.TestCase):
    def test_sigterm_finishes_in_flight_streams_and_exits_0(self):
        server = h.Server(MODEL, "--drain-timeout", "30", "--max-model-len", "100000")
        probe = server.connection()  # opened before SIGTERM: keep-alive survives the closed listener
        probe.request("GET", "/ready")
        self.assertEqual(probe.getresponse().read() and 200, 200)
        results = []

        def run(i):
            results.append(server.stream("/v1/completions", completion(f"drain {i}", max_tokens=DRAIN_TOKENS, stream=True,
                                                                    stream_options={"include_usage": True})))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        deadline = time.time() + 10
        while server.metric("tnl_requests_running") + server.metric("tnl_requests_waiting") < 4 and time.time() < deadline:
            time.sleep(0.01)
        server.proc.send_signal(h.signal.SIGTERM)
        time.sleep(0.02)
        probe.request("GET", "/ready")
        ready = probe.getresponse()
        ready.read()
        self.assertEqual(ready.status, 503)
        for t in threads:
            t.join(60)
        # The server exits by itself once drained; terminate() would send a second
        # SIGTERM, which races that exit (seen under the sanitizers on a loaded machine).
        self.assertEqual(server.proc.wait(60), 0)
        server.terminate()
        self.assertEqual(len(results), 4)
        for status, chunks, done in results:
            self.assertEqual(status, 200)
            self.assertTrue(done)
            self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "length")
            self.assertEqual(chunks[-1]["usage"]["completion_tokens"], DRAIN_TOKENS)
        self.assertIn("draining", server.read_log())


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
