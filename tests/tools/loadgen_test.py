#!/usr/bin/env python3
"""tnl-loadgen (issue 14): the statistics on known inputs, the HTTP response parser
under arbitrary read boundaries, and the CLI end to end against the real tnl-server
(CPU backend, tiny model): every mode (closed loop, open loop, a sweep, multi-turn)
and protocol (HTTP completions and chat, gRPC; streaming and not) gives a complete
JSON report; an unreachable server and a server answering 429 are reported as
errors by kind, not crashes.

Environment (set by CMake): TNL_SERVER_BIN, TNL_MAKE_TEST_MODEL_BIN, TNL_SOURCE_DIR,
TNL_TEST_WORK_DIR. Without the binaries only the unit tests run."""
import asyncio
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

SOURCE_DIR = os.environ.get("TNL_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LOADGEN_DIR = os.path.join(SOURCE_DIR, "tools", "loadgen")
LOADGEN = os.path.join(LOADGEN_DIR, "loadgen.py")
sys.path.insert(0, LOADGEN_DIR)
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "server", "integration"))

import client_http  # noqa: E402
import report  # noqa: E402
import server_metrics  # noqa: E402
import stats  # noqa: E402
from records import RequestResult  # noqa: E402
from runner import PhaseResult, PhaseSpec  # noqa: E402
from workloads import LengthDist  # noqa: E402

HAVE_SERVER = bool(os.environ.get("TNL_SERVER_BIN") and os.environ.get("TNL_MAKE_TEST_MODEL_BIN"))
SMALL = ["--input-tokens", "24", "--output-tokens", "12", "--prompt-pool", "16", "--quiet"]


class StatsTest(unittest.TestCase):
    def test_percentiles_on_known_inputs(self):
        values = list(range(1, 11))  # 1..10; rank k = 9p/100, linear between ranks
        self.assertEqual(stats.percentile(values, 50), 5.5)
        self.assertAlmostEqual(stats.percentile(values, 90), 9.1)
        self.assertAlmostEqual(stats.percentile(values, 99), 9.91)
        self.assertEqual(stats.percentile(values, 100), 10)
        self.assertEqual(stats.percentile(values, 0), 1)
        self.assertEqual(stats.percentile(list(reversed(values)), 50), 5.5, "order must not matter")
        self.assertEqual(stats.percentile([7.0], 99), 7.0)
        self.assertTrue(math.isnan(stats.percentile([], 50)))
        self.assertEqual(stats.percentile([0, 100], 25), 25)

    def test_summary_scales_and_is_none_when_empty(self):
        s = stats.summarize([0.001, 0.002, 0.003, 0.004], scale=1000.0)
        self.assertEqual(s, {"n": 4, "mean": 2.5, "p50": 2.5, "p90": 3.7, "p99": 3.97, "max": 4.0})
        self.assertIsNone(stats.summarize([]))

    def test_crossing_interpolates(self):
        self.assertEqual(stats.crossing([1, 2, 4], [50, 150, 400], 200), 2 + 2 * (200 - 150) / (400 - 150))
        self.assertIsNone(stats.crossing([1, 2], [10, 20], 200))
        self.assertEqual(stats.crossing([3, 5], [300, 400], 200), 3)

    def test_histogram_quantile(self):
        buckets = [(0.1, 10.0), (0.2, 30.0), (0.5, 40.0), (float("inf"), 40.0)]
        self.assertAlmostEqual(server_metrics.histogram_quantile(0.5, buckets), 0.15)
        self.assertAlmostEqual(server_metrics.histogram_quantile(0.25, buckets), 0.1)
        self.assertIsNone(server_metrics.histogram_quantile(0.5, [(float("inf"), 0.0)]))
        self.assertEqual(server_metrics.histogram_quantile(0.99, [(1.0, 1.0), (float("inf"), 5.0)]), 1.0)

    def test_metrics_delta(self):
        text = ('# TYPE tnl_x_total counter\ntnl_x_total {x}\n# TYPE tnl_g gauge\ntnl_g {g}\n'
                '# TYPE tnl_h_seconds histogram\ntnl_h_seconds_bucket{{le="0.1"}} {b1}\n'
                'tnl_h_seconds_bucket{{le="+Inf"}} {b2}\ntnl_h_seconds_sum {s}\ntnl_h_seconds_count {b2}\n'
                'other_total 5\n')
        before = server_metrics.parse(text.format(x=3, g=1, b1=1, b2=2, s=0.1))
        after = server_metrics.parse(text.format(x=10, g=4, b1=5, b2=6, s=0.5))
        d = server_metrics.diff(before, after, [server_metrics.parse(text.format(x=5, g=8, b1=1, b2=2, s=0.1))])
        self.assertEqual(d["counters"], {"tnl_x_total": 7})
        self.assertEqual(d["gauges"]["tnl_g"], {"before": 1, "after": 4, "mean_during": 8, "max_during": 8})
        h = d["histograms"]["tnl_h_seconds"]
        self.assertEqual((h["count"], h["mean"]), (4, 0.1))
        self.assertAlmostEqual(h["p50"], 0.05)

    def test_held_output_rate_counts_the_tokens_inside_the_window(self):
        # Chunks at 1.0, 1.5, 2.0, 2.5 (4 tokens); at 2.2, 2.8, 3.4 (6 tokens: 2 a chunk);
        # one from before the window; a failed request that streamed nothing.
        a = RequestResult(0, 1, 0.5, t_first=1.0, t_end=2.5, ok=True, output_tokens=4, gaps=[0.5, 0.5, 0.5],
                          warmup=True)
        b = RequestResult(1, 1, 2.0, t_first=2.2, t_end=3.4, ok=True, output_tokens=6, gaps=[0.6, 0.6])
        c = RequestResult(2, 1, 0.0, t_first=0.2, t_end=0.9, ok=True, output_tokens=2, gaps=[0.7], warmup=True)
        d = RequestResult(3, 1, 2.0, t_end=2.1, error="http_500")
        whole = RequestResult(4, 1, 2.0, t_end=2.9, ok=True, output_tokens=5)  # not streamed: all at t_end
        self.assertEqual(report.tokens_between(a, 1.5, 3.0), 3.0)
        self.assertEqual(report.tokens_between(b, 1.5, 3.0), 4.0)
        self.assertEqual(report.tokens_between(c, 1.5, 3.0), 0.0)
        self.assertEqual(report.tokens_between(d, 1.5, 3.0), 0.0)
        self.assertEqual(report.tokens_between(whole, 1.5, 3.0), 5.0)
        self.assertEqual(report.tokens_between(whole, 1.5, 2.5), 0.0)
        phase = PhaseResult(PhaseSpec("closed", 2), results=[a, b, c, d, whole], t_measure=1.5, t_closed=3.0)
        self.assertEqual(report.held_output_rate(phase), round(12.0 / 1.5, 1))
        self.assertIsNone(report.held_output_rate(PhaseResult(PhaseSpec("closed", 2), t_measure=2.0, t_closed=2.0)))

    def test_length_distributions(self):
        rng = random.Random(1)
        self.assertEqual({LengthDist("7").sample(rng) for _ in range(20)}, {7})
        self.assertEqual({LengthDist("3:5").sample(rng) for _ in range(200)}, {3, 4, 5})
        for bad in ("0", "5:3", "x"):
            with self.assertRaises(ValueError):
                LengthDist(bad)


class HttpParserTest(unittest.TestCase):
    """The response parser sees whatever read boundaries TCP gives it."""

    def test_sse_stream_split_anywhere(self):
        def chunk(b):
            return b"%x\r\n%s\r\n" % (len(b), b)
        events = [b'data: {"choices":[{"text":"t%d"}]}\n\n' % i for i in range(12)]
        body = (b"".join(chunk(e) for e in events[:4]) + chunk(b"".join(events[4:8]))
                + b"".join(chunk(e[:9]) + chunk(e[9:]) for e in events[8:]) + chunk(b"data: [DONE]\n\n")
                + b"0\r\n\r\n")
        response = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + body)

        async def run():
            loop = asyncio.get_running_loop()
            for trial in range(300):
                rng = random.Random(trial)
                cuts = sorted(rng.sample(range(1, len(response)), rng.randint(0, 30))) + [len(response)]
                ex = client_http._Exchange(loop.create_future(), [0])
                prev = 0
                for c in cuts:
                    ex.feed(memoryview(response[prev:c]))
                    prev = c
                self.assertTrue(ex.future.done() and ex.future.result(), trial)
                ex.digest.flush()
                self.assertEqual(ex.digest.pieces, [f"t{i}" for i in range(12)], trial)
                self.assertEqual(len(ex.digest.gaps), 11)
                self.assertTrue(ex.done_seen)
        asyncio.run(run())

    def test_error_body_with_content_length(self):
        async def run():
            body = b'{"error": {"message": "full", "type": "rate_limit_error", "code": "queue_full"}}'
            ex = client_http._Exchange(asyncio.get_running_loop().create_future(), [0])
            ex.feed(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: %d\r\n\r\n" % len(body))
            self.assertFalse(ex.future.done())
            ex.feed(body)
            self.assertTrue(ex.future.result())
            self.assertEqual(client_http._http_error_kind(ex.status, ex.body), "http_429_queue_full")
        asyncio.run(run())


def grpc_python():
    """An interpreter loadgen can run gRPC with (itself re-execs into /usr/bin/python3)."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(exe) and subprocess.run([exe, "-c", "import grpc, google.protobuf"],
                                                  capture_output=True).returncode == 0:
            return exe
    return None


@unittest.skipUnless(HAVE_SERVER, "TNL_SERVER_BIN / TNL_MAKE_TEST_MODEL_BIN not set")
class LoadgenAgainstServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import server_harness
        cls.harness = server_harness
        cls.tmp = tempfile.TemporaryDirectory()
        model = server_harness.make_test_model()
        cls.server = server_harness.Server(model, "--max-num-seqs", "16", "--max-queue", "256", grpc=True)

    @classmethod
    def tearDownClass(cls):
        cls.server.kill()
        cls.tmp.cleanup()

    def loadgen(self, *args, port=None, expect_rc=0, name="report"):
        path = os.path.join(self.tmp.name, name + ".json")
        cmd = [sys.executable, LOADGEN, "--port", str(port or self.server.port), "--json", path, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        self.assertNotIn("Traceback", r.stderr + r.stdout, r.stderr)
        self.assertEqual(r.returncode, expect_rc, r.stdout + r.stderr)
        with open(path) as f:
            return json.load(f), r.stdout

    def assert_complete(self, report, runs=1, streaming=True):
        self.assertEqual(report["tool"], "tnl-loadgen")
        self.assertEqual(report["server"].get("model"), "tiny", report["server"])
        self.assertEqual(len(report["runs"]), runs)
        for run in report["runs"]:
            self.assertGreater(run["requests"]["ok"], 0, run)
            self.assertEqual(run["errors"], {}, run["errors"])
            lat = run["latency_ms"]
            for metric in ("e2e",) + (("ttft", "tpot", "itl") if streaming else ()):
                s = lat[metric]
                self.assertIsNotNone(s, metric)
                self.assertTrue(0 <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"], (metric, s))
            if not streaming:
                self.assertIsNone(lat["ttft"])
            self.assertLessEqual(lat["e2e"]["p50"], lat["e2e"]["max"])
            t = run["throughput"]
            self.assertGreater(t["requests_per_s"], 0)
            self.assertGreater(t["output_tokens_per_s"], 0)
            self.assertGreater(t["total_tokens_per_s"], t["output_tokens_per_s"])
            self.assertGreater(t["held_output_tokens_per_s"], 0)
            self.assertEqual(run["tokens"]["output_mean"], 12.0, "ignore_eos: exactly max_tokens")
            self.assertIn("good_requests", run["goodput"])
            m = run["server_metrics"]
            self.assertGreater(m["counters"]["tnl_generation_tokens_total"], 0)
            self.assertIn("tnl_state_slots_used", m["gauges"])
            self.assertIn("tnl_time_to_first_token_seconds", m["histograms"])
            self.assertIsNotNone(run["client"]["loop_lag_ms"])

    def test_closed_loop_http_completions_streaming(self):
        report, out = self.loadgen("--concurrency", "4", "--duration", "2", "--warmup", "0.5",
                                   "--slo-ttft-ms", "10000", "--slo-tpot-ms", "10000", *SMALL)
        self.assert_complete(report)
        run = report["runs"][0]
        self.assertEqual((run["mode"], run["concurrency"]), ("closed", 4))
        self.assertGreater(run["requests"]["warmup"], 0, "warm-up requests are counted apart")
        self.assertEqual(run["goodput"]["good_requests"], run["requests"]["ok"], "generous SLOs: all good")
        self.assertEqual(report["workload"]["sized_by"], "server tokenizer")
        self.assertIn("TTFT", out)

    def test_open_loop_http_chat_streaming(self):
        report, _ = self.loadgen("--endpoint", "chat", "--rate", "15", "--duration", "2", "--warmup", "0.3",
                                 *SMALL)
        self.assert_complete(report)
        self.assertEqual((report["runs"][0]["mode"], report["runs"][0]["rate"]), ("open", 15.0))

    def test_sweep_with_plot(self):
        svg = os.path.join(self.tmp.name, "sweep.svg")
        report, out = self.loadgen("--rate", "5,20", "--duration", "1.5", "--warmup", "0.2",
                                   "--slo-ttft-ms", "150", "--plot", svg, *SMALL)
        self.assert_complete(report, runs=2)
        self.assertEqual(report["sweep"]["axis"], "rate")
        self.assertIn("p99_ttft_crosses_slo_at", report["sweep"])
        self.assertIn("p99 TTFT crosses", out)
        root = ET.parse(svg).getroot()
        self.assertTrue(root.tag.endswith("svg"))
        self.assertGreater(len(root.findall(".//{http://www.w3.org/2000/svg}polyline")), 6)

    def test_multi_turn_reports_ttft_per_turn(self):
        svg = os.path.join(self.tmp.name, "turns.svg")
        report, out = self.loadgen("--concurrency", "3", "--turns", "3", "--turn-tokens", "16",
                                   "--num-requests", "18", "--plot", svg, *SMALL, name="turns")
        self.assert_complete(report)
        turns = report["runs"][0]["per_turn"]
        self.assertEqual([t["turn"] for t in turns], [1, 2, 3])
        prompts = [t["prompt_tokens_mean"] for t in turns]
        self.assertTrue(prompts[0] < prompts[1] < prompts[2], f"history must grow: {prompts}")
        self.assertGreater(prompts[1] - prompts[0], 16, "turn 2 = turn 1 + reply + new message")
        for t in turns:
            self.assertIsNotNone(t["ttft_ms"]["p99"])
        ET.parse(svg)
        # The cache on/off comparison reads two such reports.
        path = os.path.join(self.tmp.name, "turns.json")
        r = subprocess.run([sys.executable, LOADGEN, "--compare", path, path], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("turns TTFT p50/p90/p99 ms", r.stdout)

    def test_multi_turn_chat_non_streaming(self):
        report, _ = self.loadgen("--endpoint", "chat", "--no-stream", "--concurrency", "2", "--turns", "2",
                                 "--num-requests", "8", *SMALL)
        self.assert_complete(report, streaming=False)
        self.assertEqual(len(report["runs"][0]["per_turn"]), 2)

    def test_http_completions_non_streaming(self):
        report, _ = self.loadgen("--no-stream", "--concurrency", "3", "--num-requests", "12", *SMALL)
        self.assert_complete(report, streaming=False)

    def test_grpc_streaming_and_unary(self):
        if not grpc_python():
            self.skipTest("no Python with grpc and protobuf (apt-get install python3-grpcio python3-protobuf)")
        common = ["--protocol", "grpc", "--metrics-port", str(self.server.port), *SMALL]
        report, _ = self.loadgen("--concurrency", "3", "--duration", "1.5", "--warmup", "0.2",
                                 port=self.server.grpc_port, *common)
        self.assert_complete(report)
        self.assertGreater(report["runs"][0]["server_metrics"]["counters"]["tnl_grpc_requests_total"], 0)
        report, _ = self.loadgen("--endpoint", "chat", "--no-stream", "--rate", "10", "--num-requests", "8",
                                 port=self.server.grpc_port, *common)
        self.assert_complete(report, streaming=False)

    def test_unreachable_server_is_reported(self):
        port = self.harness.free_port()
        for protocol in ("http",) + (("grpc",) if grpc_python() else ()):
            report, out = self.loadgen("--protocol", protocol, "--concurrency", "2", "--duration", "1",
                                       "--warmup", "0", *SMALL, port=port, expect_rc=1)
            run = report["runs"][0]
            self.assertEqual(run["requests"]["ok"], 0)
            kind = "connect_refused" if protocol == "http" else "grpc_UNAVAILABLE"
            self.assertGreater(run["errors"].get(kind, 0), 0, run["errors"])
            self.assertIn("error", report["server"])
            self.assertIn(kind, out)

    def test_overloaded_server_429_is_reported(self):
        small = self.harness.Server(self.harness.make_test_model(), "--max-num-seqs", "1", "--max-queue", "1")
        try:
            report, out = self.loadgen("--concurrency", "16", "--duration", "2", "--warmup", "0",
                                       "--input-tokens", "24", "--output-tokens", "48", "--prompt-pool", "16",
                                       "--quiet", port=small.port)
        finally:
            small.kill()
        run = report["runs"][0]
        self.assertGreater(run["requests"]["ok"], 0)
        self.assertGreater(run["errors"].get("http_429_queue_full", 0), 0, run["errors"])
        self.assertGreater(run["server_metrics"]["counters"]["tnl_rejected_overload_total"], 0)
        self.assertIn("http_429", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
