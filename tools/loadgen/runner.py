"""Runs one load phase: closed loop (N workers, each sending its next request when
the last one finished) or open loop (sessions arriving as a Poisson process at a
rate, whatever the server's state). A session is one conversation; its turns run
one after another. Phases are bounded by construction: the window closes after
--duration or --num-requests, then in-flight requests get --drain-timeout to
finish and are cancelled after it."""
import asyncio
import gc
import math
import random
import sys
import time
from dataclasses import dataclass, field

from records import RequestResult

perf = time.perf_counter
RETRY_AFTER_CAP_S = 1.0  # a closed-loop worker pauses at most this long after a 429
ERROR_PAUSE_S = 0.05  # ... and this long after any other failure (no hot failure loop)


@dataclass
class PhaseSpec:
    mode: str  # "closed" or "open"
    level: float  # concurrency (closed) or sessions per second (open; math.inf: all at once)
    duration_s: float = None
    num_requests: int = None
    warmup_s: float = 0.0
    drain_timeout_s: float = 120.0
    max_inflight: int = 10000
    think_time_s: float = 0.0
    seed: int = 0

    @property
    def label(self):
        if self.mode == "closed":
            return f"concurrency {int(self.level)}"
        return "rate inf" if math.isinf(self.level) else f"rate {self.level:g}/s"


@dataclass
class PhaseResult:
    spec: PhaseSpec
    results: list = field(default_factory=list)
    t_start: float = 0.0
    t_measure: float = 0.0  # end of warm-up
    t_closed: float = 0.0  # no request started after this
    t_end: float = 0.0  # drained (or gave up)
    sessions_started: int = 0
    cpu_s: float = 0.0
    loop_lag_s: list = field(default_factory=list)
    server_before: dict = None
    server_after: dict = None
    server_samples: list = field(default_factory=list)


class _Phase:
    def __init__(self, client, workload, spec, progress):
        self.client = client
        self.workload = workload
        self.spec = spec
        self.progress = progress
        self.out = PhaseResult(spec)
        self.measured_started = 0
        self.inflight = 0
        self.closed = asyncio.Event()  # the window: no request starts once set
        self.finished = asyncio.Event()

    def window_open(self):
        if self.closed.is_set():
            return False
        s = self.spec
        now = perf()
        if (s.duration_s is not None and now >= self.out.t_measure + s.duration_s) or \
                (s.num_requests is not None and self.measured_started >= s.num_requests):
            self.out.t_closed = now
            self.closed.set()
            return False
        return True

    async def run_session(self, index):
        """Runs one conversation; returns the pause a closed-loop worker should take."""
        warm = perf() < self.out.t_measure
        conversation, tag = self.workload.session(index)
        spec = conversation.first(index, tag)
        while spec is not None and self.window_open():
            if not warm:
                self.measured_started += 1
            self.inflight += 1
            t0 = perf()
            try:
                res = await self.client.send(spec)
            except asyncio.CancelledError:
                self.out.results.append(RequestResult(spec.session, spec.turn, t0, t_end=perf(),
                                                      error="cancelled_at_end", warmup=warm))
                raise
            except Exception as e:  # noqa: BLE001 - a client bug must show in the report, not kill the run
                print(f"tnl-loadgen: request failed inside the client: {e!r}", file=sys.stderr)
                res = RequestResult(spec.session, spec.turn, t0, t_end=perf(),
                                    error=f"client_exception_{type(e).__name__}")
            finally:
                self.inflight -= 1
            res.warmup = warm
            self.out.results.append(res)
            if not res.ok:
                return min(res.retry_after, RETRY_AFTER_CAP_S) if res.retry_after else ERROR_PAUSE_S
            spec = conversation.follow(spec, res.text)
            if spec is not None and self.spec.think_time_s:
                await asyncio.sleep(self.spec.think_time_s)
        return 0.0

    def next_session(self):
        index = self.out.sessions_started
        self.out.sessions_started += 1
        return index

    async def closed_worker(self):
        while self.window_open():
            pause = await self.run_session(self.next_session())
            if pause:
                await asyncio.sleep(pause)

    async def open_arrivals(self, tasks):
        rng = random.Random(self.spec.seed)
        rate = self.spec.level
        due = perf()
        while self.window_open():
            if self.inflight >= self.spec.max_inflight:
                # Not sent: the client's own bound, counted so the report shows it.
                self.out.results.append(RequestResult(-1, 1, perf(), t_end=perf(), error="client_inflight_limit",
                                                      warmup=perf() < self.out.t_measure))
            else:
                task = asyncio.ensure_future(self.run_session(self.next_session()))
                tasks.add(task)
                task.add_done_callback(tasks.discard)  # only sessions still running are kept
            if math.isinf(rate):
                await asyncio.sleep(0)
                continue
            due += rng.expovariate(rate)
            delay = due - perf()
            if delay > 0:
                await asyncio.sleep(delay)

    async def run(self):
        out, spec = self.out, self.spec
        out.t_start = perf()
        out.t_measure = out.t_start + spec.warmup_s
        cpu0 = time.process_time()
        lag_task = asyncio.ensure_future(_watch_loop_lag(out.loop_lag_s, self.finished))
        progress_task = asyncio.ensure_future(self.progress(self)) if self.progress else None
        tasks = set()
        if spec.mode == "closed":
            tasks = {asyncio.ensure_future(self.closed_worker()) for _ in range(int(spec.level))}
            driver = None
        else:
            driver = asyncio.ensure_future(self.open_arrivals(tasks))
        # Close the window on time even while every worker waits on a long request.
        while self.window_open() and not (driver.done() if driver else all(t.done() for t in tasks)):
            await asyncio.sleep(0.05)
        if not self.closed.is_set():
            out.t_closed = perf()
            self.closed.set()
        if driver:
            await driver
        pending = {t for t in tasks if not t.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=spec.drain_timeout_s)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending)
        out.t_end = perf()
        out.cpu_s = time.process_time() - cpu0
        self.finished.set()
        await lag_task
        if progress_task:
            progress_task.cancel()
            try:
                await progress_task
            except asyncio.CancelledError:
                pass
        return out


async def _watch_loop_lag(samples, stop, period=0.01):
    """How late the event loop wakes up: the error on every client-side timestamp."""
    while not stop.is_set():
        t = perf()
        await asyncio.sleep(period)
        samples.append(max(0.0, perf() - t - period))


async def run_phase(client, workload, spec, progress=None):
    # No cyclic GC while measuring: with ~10^6 live objects (a thousand streams'
    # chunks) a full collection stalls the loop for hundreds of milliseconds, which
    # would show up as latency. The few cycles made meanwhile are collected after.
    gc.collect()
    gc.disable()
    try:
        return await _Phase(client, workload, spec, progress).run()
    finally:
        gc.enable()
        gc.collect()
