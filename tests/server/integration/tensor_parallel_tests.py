"""Tensor parallelism through the real tnl-server (CPU backend, in-process
communicator, tiny model with 2 heads): --tensor-parallel-size 2 streams the
same greedy completion as one rank and says so in its start-up log; a size the
model cannot split stops the server at start-up naming what to change; a rank
whose step fails makes requests 503 and /health dead, never a hang."""
import subprocess
import sys
import time
import unittest

import server_harness as h

MODEL = None


def setUpModule():
    global MODEL
    MODEL = h.make_test_model()


def completion(prompt, max_tokens=24, **kw):
    body = {"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
    body.update(kw)
    return body


class TensorParallelServer(unittest.TestCase):
    def test_two_ranks_stream_what_one_rank_generates(self):
        one = h.Server(MODEL)
        two = h.Server(MODEL, "--tensor-parallel-size", "2")
        try:
            self.assertIn("cpu x2", two.read_log())
            for prompt in ("The cat sat", "Once upon a time", "Rivers flow to the sea"):
                status, _, want = one.post("/v1/completions", completion(prompt, logprobs=1))
                self.assertEqual(status, 200, want)
                status, chunks, done = two.stream("/v1/completions", completion(prompt, stream=True))
                self.assertEqual(status, 200, chunks)
                self.assertTrue(done)
                self.assertEqual(h.stream_text(chunks)[0], want["choices"][0]["text"], prompt)
                status, _, got = two.post("/v1/completions", completion(prompt, logprobs=1))
                self.assertEqual(status, 200, got)
                want_lp = want["choices"][0]["logprobs"]["token_logprobs"]
                got_lp = got["choices"][0]["logprobs"]["token_logprobs"]
                self.assertEqual(len(got_lp), len(want_lp))
                for a, b in zip(got_lp, want_lp):
                    self.assertAlmostEqual(a, b, delta=1e-5)
        finally:
            self.assertEqual(one.terminate(), 0)
            self.assertEqual(two.terminate(), 0)

    def test_a_size_the_model_cannot_split_fails_at_start_up(self):
        proc = subprocess.run([h.SERVER_BIN, "--model", MODEL, "--device", "cpu", "--port", "0", "--grpc-port", "-1",
                               "--tensor-parallel-size", "3"], capture_output=True, timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        self.assertIn("does not divide the model's 2 attention heads", out)
        self.assertIn("choose a divisor of 2", out)

    def test_a_failed_rank_kills_the_engine_and_health_says_so(self):
        # Test hook: the last rank fails from its 40th step on; rank 0 then waits
        # at a collective that the failure aborts.
        server = h.Server(MODEL, "--max-model-len", "100000", "--tensor-parallel-size", "2",
                          env={"TNL_TEST_FATAL_STEP": "40"})
        try:
            start = time.time()
            status, _, body = server.post("/v1/completions", completion("doomed", max_tokens=5000), timeout=60)
            self.assertLess(time.time() - start, 30)
            self.assertEqual(status, 503, body)
            self.assertIn("tensor-parallel", body["error"]["message"])
            status, _, health = server.request("GET", "/health", timeout=5)
            self.assertEqual(status, 503)
            self.assertEqual(health["status"], "dead")
        finally:
            self.assertEqual(server.terminate(), 0)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
