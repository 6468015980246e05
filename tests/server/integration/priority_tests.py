"""Request priority through the real tnl-server (CPU backend, tiny model, one
slot): the `priority` field on both OpenAI endpoints, its validation (400 naming
the field), and preemption under contention — a better-priority request finishes
while a worse one streaming on the only slot is paused (its state swapped to host
memory), the preemption metrics move, and the paused stream's text equals the
same request served alone."""
import sys
import threading
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


def wait_for(predicate, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


class Priority(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = h.Server(MODEL, "--max-num-seqs", "1", "--max-model-len", "8192")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.terminate() == 0

    def test_priority_is_accepted_on_both_endpoints(self):
        s = self.server
        status, _, r = s.post("/v1/completions", completion("Hello there", priority=-3))
        self.assertEqual(status, 200, r)
        status, _, r = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}],
                                                       "max_tokens": 4, "priority": 1000000})
        self.assertEqual(status, 200, r)
        status, _, r = s.post("/v1/completions", completion("Hello there", priority=None))
        self.assertEqual(status, 200, r)  # null: the default

    def test_a_bad_priority_is_a_400_naming_the_field(self):
        s = self.server
        for bad in (1.5, "high", True, [1], 1000001, -1000001, 10 ** 12):
            for path, body in (("/v1/completions", completion("x", priority=bad)),
                               ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}],
                                                         "priority": bad})):
                status, _, r = s.post(path, body)
                self.assertEqual(status, 400, (path, bad, r))
                self.assertEqual(r["error"]["param"], "priority", (path, bad, r))
                self.assertIn("priority", r["error"]["message"])

    def test_a_better_priority_preempts_a_streaming_worse_one(self):
        s = self.server
        low = completion("Once upon a time, far away, there lived", max_tokens=8000, priority=5, stream=True)
        high = completion("Quick question:", max_tokens=6, priority=-5)
        preemptions = s.metric("tnl_preemptions_total")
        swapped_bytes = s.metric("tnl_preemption_swap_bytes_total")

        result = {}

        def stream_low():
            result["low"] = s.stream("/v1/completions", low)
            result["low_done"] = time.monotonic()

        worker = threading.Thread(target=stream_low)
        worker.start()
        try:
            self.assertTrue(wait_for(lambda: s.metric("tnl_generation_tokens_total") > 0 and
                                     s.metric("tnl_requests_running") == 1))
            status, _, r = s.post("/v1/completions", high)
            high_done = time.monotonic()
            self.assertEqual(status, 200, r)
            self.assertEqual(r["usage"]["completion_tokens"], 6)
        finally:
            worker.join(120)
        self.assertFalse(worker.is_alive())
        status, chunks, done = result["low"]
        self.assertEqual(status, 200, chunks)
        self.assertTrue(done)
        # One slot: the worse request could only end after the better one if it was paused.
        self.assertLess(high_done, result["low_done"])
        self.assertEqual(s.metric("tnl_preemptions_total") - preemptions, 1)
        self.assertGreater(s.metric("tnl_preemption_swap_bytes_total") - swapped_bytes, 0)
        self.assertEqual(s.metric("tnl_preempted_sequences"), 0)

        # The paused stream lost nothing: its text equals the request served alone.
        status, alone, _ = s.stream("/v1/completions", low)
        self.assertEqual(status, 200)
        self.assertEqual(h.stream_text(chunks), h.stream_text(alone))
        self.assertEqual(s.metric("tnl_preemptions_total") - preemptions, 1)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
