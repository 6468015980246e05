#!/usr/bin/env python3
"""tnl-loadgen: held-concurrency load against tnl-server's streaming HTTP API.

Opens --connections TCP connections first (all held open at once), then sends one
streaming /v1/completions request on each at the same moment and reads every SSE
stream to `data: [DONE]`. Reports completion counts, latency percentiles (time to
first token, end to end, per output token) and, with --server-pid, the server's
peak resident memory (VmHWM) and the highest VmRSS sampled during the run.

Stdlib only (asyncio). Example:
  tnl-server --model M --port 8000 --max-queue 2048 --max-num-seqs 64 &
  python3 tools/loadgen/loadgen.py --port 8000 --connections 1000 --server-pid $!
"""
import argparse
import asyncio
import json
import resource
import sys
import time


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def read_proc_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Stream:
    """One connection: connect, (wait for the start signal), request, read SSE to [DONE]."""

    def __init__(self, index, args):
        self.index = index
        self.args = args
        self.ok = False
        self.error = None
        self.tokens = 0
        self.t_sent = self.t_first = self.t_done = None

    def request_bytes(self):
        body = json.dumps({"prompt": f"Request number {self.index} says", "max_tokens": self.args.max_tokens,
                           "temperature": 0, "ignore_eos": True, "stream": True}).encode()
        head = (f"POST /v1/completions HTTP/1.1\r\nHost: {self.args.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n")
        if self.args.api_key:
            head += f"Authorization: Bearer {self.args.api_key}\r\n"
        return head.encode() + b"\r\n" + body

    async def run(self, connected, start):
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.args.host, self.args.port), self.args.connect_timeout)
        except Exception as e:  # noqa: BLE001 - reported per connection
            self.error = f"connect: {e!r}"
            connected.release()
            return
        connected.release()
        await start.wait()
        try:
            self.t_sent = time.perf_counter()
            writer.write(self.request_bytes())
            await writer.drain()
            status_line = await reader.readline()
            if b" 200 " not in status_line:
                self.error = status_line.decode(errors="replace").strip()
                return
            buffer = b""
            while True:
                data = await reader.read(65536)
                if not data:
                    self.error = "connection closed before [DONE]"
                    return
                buffer += data
                # SSE events inside chunked framing: count `data: {` events as they arrive.
                events = buffer.count(b"data: {")
                if events and self.t_first is None:
                    self.t_first = time.perf_counter()
                if b"data: [DONE]" in buffer:
                    self.t_done = time.perf_counter()
                    # Generated-token events: all chunks minus the final finish_reason chunk.
                    self.tokens = max(events - 1, 0)
                    self.ok = True
                    return
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)
        finally:
            writer.close()


async def sample_rss(pid, stop, peak):
    while not stop.is_set():
        rss = read_proc_kib(pid, "VmRSS")
        if rss:
            peak[0] = max(peak[0], rss)
        await asyncio.sleep(0.05)


async def main_async(args):
    streams = [Stream(i, args) for i in range(args.connections)]
    connected = asyncio.Semaphore(0)
    start = asyncio.Event()
    stop_sampling = asyncio.Event()
    peak_rss = [0]
    sampler = asyncio.create_task(sample_rss(args.server_pid, stop_sampling, peak_rss)) if args.server_pid else None
    tasks = [asyncio.create_task(s.run(connected, start)) for s in streams]
    for _ in streams:
        await connected.acquire()
    open_connections = sum(1 for s in streams if s.error is None)
    t0 = time.perf_counter()
    start.set()  # every request goes out at once, on connections that are all open
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    stop_sampling.set()
    if sampler:
        await sampler

    done = [s for s in streams if s.ok]
    ttft = [(s.t_first - s.t_sent) * 1000 for s in done if s.t_first]
    e2e = [(s.t_done - s.t_sent) * 1000 for s in done]
    tpot = [(s.t_done - s.t_first) * 1000 / (s.tokens - 1) for s in done if s.t_first and s.tokens > 1]
    errors = {}
    for s in streams:
        if not s.ok:
            errors[s.error] = errors.get(s.error, 0) + 1
    report = {
        "connections": args.connections,
        "held_open_before_requests": open_connections,
        "completed": len(done),
        "failed": len(streams) - len(done),
        "errors": errors,
        "max_tokens": args.max_tokens,
        "tokens_received": sum(s.tokens for s in done),
        "wall_s": round(wall, 3),
        "tokens_per_s": round(sum(s.tokens for s in done) / wall, 1) if wall else None,
        "ttft_ms": {p: round(percentile(ttft, p), 1) for p in (50, 90, 99)},
        "e2e_ms": {p: round(percentile(e2e, p), 1) for p in (50, 90, 99)},
        "tpot_ms": {p: round(percentile(tpot, p), 2) for p in (50, 90, 99)},
    }
    if args.server_pid:
        hwm = read_proc_kib(args.server_pid, "VmHWM")
        report["server_peak_rss_mib"] = round((hwm or peak_rss[0]) / 1024, 1)
        report["server_max_sampled_rss_mib"] = round(peak_rss[0] / 1024, 1)
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--connections", type=int, default=1000, help="simultaneous streaming connections")
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens generated per request")
    parser.add_argument("--server-pid", type=int, default=0, help="read the server's RSS from /proc/PID/status")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--connect-timeout", type=float, default=30)
    parser.add_argument("--json", action="store_true", help="print only the JSON report")
    args = parser.parse_args()
    # One socket per connection: lift our own descriptor limit to the hard limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.connections + 16 > hard:
        sys.exit(f"--connections {args.connections} exceeds the descriptor limit {hard}")
    report = asyncio.run(main_async(args))
    print(json.dumps(report, indent=None if args.json else 2))
    return 0 if report["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
