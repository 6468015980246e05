"""The prefix state cache through the real tnl-server (CPU backend, tiny model):
metrics, multi-turn chat hitting the previous turn's state, n > 1 as a fork,
resumable sessions (POST /v1/states, /v1/states/import) across two servers, bad
blobs refused, and the cache turned off by its flag."""
import json
import sys
import time
import unittest

import server_harness as h

MODEL = None


def setUpModule():
    global MODEL
    MODEL = h.make_test_model()


def completion(prompt, max_tokens=8, **kw):
    body = {"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
    body.update(kw)
    return body


def post_bytes(server, path, data, timeout=60):
    conn = server.connection(timeout)
    try:
        conn.request("POST", path, body=data, headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw
        return resp.status, dict(resp.getheaders()), payload
    finally:
        conn.close()


def wait_idle(server, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.metric("tnl_requests_running") == 0 and server.metric("tnl_requests_waiting") == 0:
            return True
        time.sleep(0.02)
    return False


def blob_tokens(blob):
    """The token ids a state blob holds (engine/state_blob.h)."""
    assert blob[:8] == b"TNLSTATE"
    header_len = int.from_bytes(blob[12:16], "little")
    header = json.loads(blob[16:16 + header_len])
    start = 16 + header_len
    return [int.from_bytes(blob[start + 4 * i:start + 4 * i + 4], "little") for i in range(header["tokens"])]


def export_blob(server, body):
    conn = server.connection()
    try:
        conn.request("POST", "/v1/states", body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


class PrefixCache(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = h.Server(MODEL, "--max-model-len", "4096", "--prefill-chunk", "32",
                              "--max-num-batched-tokens", "128")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.terminate() == 0

    def test_metrics_and_a_repeated_prompt_hit(self):
        s = self.server
        prompt = "The river ran through the old town and " * 4
        _, _, first = s.post("/v1/completions", completion(prompt))
        hits = s.metric("tnl_prefix_cache_hits_total")
        cached = s.metric("tnl_prompt_tokens_cached_total")
        _, _, second = s.post("/v1/completions", completion(prompt))
        self.assertEqual(second["choices"][0]["text"], first["choices"][0]["text"])
        self.assertEqual(s.metric("tnl_prefix_cache_hits_total"), hits + 1)
        self.assertGreaterEqual(s.metric("tnl_prompt_tokens_cached_total") - cached,
                                second["usage"]["prompt_tokens"])
        for name in ("tnl_prefix_cache_enabled", "tnl_prefix_cache_queries_total", "tnl_prefix_cache_slots_used",
                     "tnl_prefix_cache_slots_total", "tnl_prefix_cache_evictions_total",
                     "tnl_prefix_cache_snapshots_total", "tnl_prefix_cache_host_bytes_in_total"):
            s.metric(name)  # present
        self.assertEqual(s.metric("tnl_prefix_cache_enabled"), 1)

    def test_the_next_turn_of_a_chat_starts_from_the_previous_turns_state(self):
        s = self.server
        messages = [{"role": "system", "content": "You answer briefly."},
                    {"role": "user", "content": "Tell me about the river and the old town by the sea."}]
        _, _, turn1 = s.post("/v1/chat/completions", {"messages": messages, "max_tokens": 24, "temperature": 0})
        reply = turn1["choices"][0]["message"]["content"]
        prompt1 = turn1["usage"]["prompt_tokens"]
        # The next turn comes after the reply was read: by then the server has warmed
        # the state of the re-tokenized conversation (when it differs from the tokens
        # generated) in the background.
        time.sleep(0.3)  # the warm-up is posted as the answer goes out
        self.assertTrue(wait_idle(s))
        messages += [{"role": "assistant", "content": reply},
                     {"role": "user", "content": "And then what happened?"}]
        cached = s.metric("tnl_prompt_tokens_cached_total")
        computed = s.metric("tnl_prompt_tokens_total")
        _, _, turn2 = s.post("/v1/chat/completions", {"messages": messages, "max_tokens": 4, "temperature": 0})
        restored = s.metric("tnl_prompt_tokens_cached_total") - cached
        # The whole first turn (its prompt and its reply) comes from the cache; only
        # the tail of the reply and the new message are computed.
        self.assertGreaterEqual(restored, prompt1 + turn1["usage"]["completion_tokens"] - 2,
                                (restored, prompt1, turn1["usage"]))
        self.assertLess(s.metric("tnl_prompt_tokens_total") - computed,
                        turn2["usage"]["prompt_tokens"] - prompt1)

    def test_n_choices_prefill_the_prompt_once(self):
        s = self.server
        forks = s.metric("tnl_forks_total")
        computed = s.metric("tnl_prompt_tokens_total")
        prompt = "A fresh prompt that no earlier test has used, about lanterns "
        status, _, r = s.post("/v1/completions", completion(prompt, n=3, temperature=1.0, seed=5))
        self.assertEqual(status, 200, r)
        self.assertEqual(len(r["choices"]), 3)
        self.assertEqual(s.metric("tnl_forks_total") - forks, 2)
        self.assertEqual(s.metric("tnl_prompt_tokens_total") - computed, r["usage"]["prompt_tokens"])


class ResumableSessions(unittest.TestCase):
    def test_export_import_and_continue_on_another_server_equals_continuing_here(self):
        a = h.Server(MODEL, "--max-model-len", "4096")
        b = h.Server(MODEL, "--max-model-len", "4096")
        try:
            _, _, tok = a.post("/tokenize", {"content": "Once upon a time in a quiet valley"})
            _, _, first = a.post("/v1/completions", completion(tok["tokens"], max_tokens=10))
            # The state of the finished response (prompt + the 10 generated tokens), by its id.
            status, headers, blob = export_blob(a, {"response_id": first["id"]})
            self.assertEqual(status, 200, blob[:200])
            self.assertEqual(headers.get("Content-Type"), "application/octet-stream")
            self.assertEqual(int(headers["X-State-Tokens"]), tok["count"] + 10)
            tokens = blob_tokens(blob)
            self.assertEqual(tokens[:tok["count"]], tok["tokens"])
            status, _, imported = post_bytes(b, "/v1/states/import", blob)
            self.assertEqual(status, 200, imported)
            self.assertEqual(imported["tokens"], len(tokens))
            # The same continuation asked of both: b starts from the imported state,
            # a from its own; same state, same pieces, same output.
            more = a.post("/tokenize", {"content": " and the wind", "add_special": False})[2]["tokens"]
            body = completion(tokens + more, max_tokens=6, logprobs=0)
            cached_b = b.metric("tnl_prompt_tokens_cached_total")
            _, _, on_a = a.post("/v1/completions", body)
            _, _, on_b = b.post("/v1/completions", body)
            self.assertEqual(b.metric("tnl_prompt_tokens_cached_total") - cached_b, len(tokens))
            self.assertEqual(on_b["choices"][0]["text"], on_a["choices"][0]["text"])
            self.assertEqual(on_b["choices"][0]["logprobs"]["token_logprobs"],
                             on_a["choices"][0]["logprobs"]["token_logprobs"])
        finally:
            self.assertEqual(a.terminate(), 0)
            self.assertEqual(b.terminate(), 0)

    def test_blobs_of_another_model_or_corrupted_are_400s(self):
        a = h.Server(MODEL)
        other_model = h.make_test_model(seed=9, name="tiny-other")
        c = h.Server(other_model)
        try:
            status, _, blob = export_blob(a, {"prompt": "a short text to export"})
            self.assertEqual(status, 200)
            status, _, err = post_bytes(c, "/v1/states/import", blob)
            self.assertEqual(status, 400, err)
            self.assertIn("another model", err["error"]["message"])
            corrupted = bytearray(blob)
            corrupted[len(corrupted) // 2] ^= 0x10
            status, _, err = post_bytes(a, "/v1/states/import", bytes(corrupted))
            self.assertEqual(status, 400, err)
            self.assertIn("checksum", err["error"]["message"])
            status, _, err = post_bytes(a, "/v1/states/import", b"garbage")
            self.assertEqual(status, 400, err)
            status, _, err = a.post("/v1/states", {"response_id": "cmpl-nope"})
            self.assertEqual(status, 404, err)
            status, _, err = a.post("/v1/states", {"prompt": "x", "messages": []})
            self.assertEqual(status, 400, err)
            status, _, err = a.post("/v1/states", {"prompt": "x", "frobnicate": 1})
            self.assertEqual((status, err["error"]["param"]), (400, "frobnicate"))
            # The server still serves.
            self.assertEqual(a.post("/v1/completions", completion("ok", max_tokens=2))[0], 200)
        finally:
            self.assertEqual(a.terminate(), 0)
            self.assertEqual(c.terminate(), 0)


class TurnedOff(unittest.TestCase):
    def test_the_flag_turns_the_cache_off(self):
        s = h.Server(MODEL, "--prefix-cache", "off")
        try:
            prompt = "The same prompt twice, with the cache off, is computed twice"
            s.post("/v1/completions", completion(prompt, max_tokens=2))
            s.post("/v1/completions", completion(prompt, max_tokens=2))
            self.assertEqual(s.metric("tnl_prefix_cache_enabled"), 0)
            self.assertEqual(s.metric("tnl_prefix_cache_hits_total"), 0)
            self.assertEqual(s.metric("tnl_prompt_tokens_cached_total"), 0)
            status, _, blob = export_blob(s, {"prompt": "exports still work: the state is computed"})
            self.assertEqual(status, 200)
            status, _, err = post_bytes(s, "/v1/states/import", blob)
            self.assertEqual(status, 503, err)
            self.assertIn("prefix cache is off", err["error"]["message"])
        finally:
            self.assertEqual(s.terminate(), 0)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
