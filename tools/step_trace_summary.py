#!/usr/bin/env python3
"""Summarizes a `tnl-server --step-trace` file: where the step loop's time goes.

  python3 tools/step_trace_summary.py TRACE.jsonl [--group K] [--requests LOADGEN.json]

Steps: how long planning, the backend's run_step and handing tokens to the sinks
took, the loop's time between steps, run_step by kind of step, and the step cycle
a decoding sequence lives through per token (weighted by decode rows: what a
client's TPOT can at best be, and the device's share of it). First tokens:
the engine's time to first token (arrival at the engine -> token to the sink) and,
for each request, what the loop did meanwhile (steps, prefill tokens of all
sequences, and the wait before the first of those steps began), and the front
end's time before the engine got it (received -> arrival: parsing, tokenizing,
handing over). --group K
reports first tokens in groups of K in arrival order (K concurrent
conversations: a group is a turn). --requests joins a tools/loadgen report saved
with --save-requests on the same machine (its clock stamps and the trace's origin
are both CLOCK_MONOTONIC) and splits each request's client-side time to first
text: client -> received (building the request, connecting, sending the body,
the server reading it), the server's parts above, and first token -> the client's
first text (detokenizing, the SSE write, the client's read; more when the first
tokens carry no text).
"""
import argparse
import bisect
import json
import statistics
import sys


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def describe(name, xs, unit="ms", scale=1e-3):
    if not xs:
        print(f"  {name:34s} -")
        return
    v = [x * scale for x in xs]
    print(f"  {name:34s} n={len(v):6d}  mean {statistics.fmean(v):8.3f}  p50 {pct(v, 50):8.3f}  "
          f"p99 {pct(v, 99):8.3f}  max {max(v):8.3f} {unit}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--group", type=int, default=0, help="first tokens per group, in arrival order (0: one group)")
    ap.add_argument("--requests", metavar="LOADGEN.json", help="a loadgen report with --save-requests, same machine")
    a = ap.parse_args()
    steps, firsts, origin = [], [], None
    with open(a.trace) as f:
        for line in f:
            j = json.loads(line)
            if "origin_steady_us" in j:
                origin = j["origin_steady_us"]
                continue
            (firsts if "first_token" in j else steps).append(j)
    if not steps:
        sys.exit(f"{a.trace}: no steps")
    for s in steps:
        s["end_us"] = s["step_us"] + s["plan_us"] + s["run_us"] + s["emit_us"]
    span = steps[-1]["end_us"] - steps[0]["step_us"]
    busy = sum(s["end_us"] - s["step_us"] for s in steps)
    print(f"{len(steps)} steps over {span / 1e3:.1f} ms; the loop was in a step {100 * busy / max(span, 1):.1f}% of it")
    describe("plan (schedule, swaps, checks)", [s["plan_us"] for s in steps])
    describe("run_step", [s["run_us"] for s in steps])
    describe("emit (sampling on host, events)", [s["emit_us"] for s in steps])
    gaps = [b["step_us"] - a_["end_us"] for a_, b in zip(steps, steps[1:])]
    busy_gaps = [g for g, b in zip(gaps, steps[1:]) if g < 1000]  # back-to-back steps (not idle waits)
    describe("gap between steps (< 1 ms ones)", busy_gaps)
    print("run_step by kind:")
    describe("decode only", [s["run_us"] for s in steps if s["prefill_chunks"] == 0])
    for lo, hi in BUCKETS[1:]:
        xs = [s["run_us"] for s in steps if lo <= s["prefill_tokens"] <= hi]
        describe(f"with {lo}-{hi if hi < 1 << 30 else 'more'} prefill tokens", xs)
    slow_steps(steps)
    multi = [s for s in steps if s["prefill_chunks"] > 1]
    print(f"  steps with more than one prefill chunk: {len(multi)} of "
          f"{sum(1 for s in steps if s['prefill_chunks'])}; copies before/after: "
          f"{sum(s['copies_before'] for s in steps)}/{sum(s['copies_after'] for s in steps)}")
    # What a decoding sequence lives through per token: each step it decodes in,
    # weighted by the step's decode rows, from that step's start to the next's
    # (planning, run_step with whatever prefill shares it, the tokens handed out,
    # the gap). A client's TPOT can at best equal it; its run_step share is the
    # device's work for the same tokens, prefills included.
    cycles = [(b["step_us"] - s["step_us"], s["run_us"], s["decodes"]) for s, g, b in zip(steps, gaps, steps[1:])
              if s["decodes"] > 0 and g < 1000]  # back-to-back steps only, as for the gaps above
    rows = sum(n for _, _, n in cycles)
    if rows:
        cycle = sum(c * n for c, _, n in cycles) / rows
        run = sum(r * n for _, r, n in cycles) / rows
        print(f"per decoded token, the step it shared (weighted by decode rows): {cycle / 1e3:.3f} ms from step to "
              f"step, of it run_step {run / 1e3:.3f} ms ({100 * run / cycle:.1f}%)")
    if not firsts:
        return
    starts = [s["step_us"] for s in steps]
    firsts.sort(key=lambda j: j["arrival_us"])
    groups = [firsts] if a.group <= 0 else [firsts[i:i + a.group] for i in range(0, len(firsts), a.group)]
    print("first tokens (engine side: arrival at the engine -> token to the sink):")
    for gi, g in enumerate(groups):
        ttft, wait, nsteps, ptoks, prompt, front, prep = [], [], [], [], [], [], []
        for j in g:
            if "received_us" in j:
                front.append(j["arrival_us"] - j["received_us"])
            if "received_us" in j and "prepared_us" in j:
                prep.append(j["prepared_us"] - j["received_us"])
            lo = bisect.bisect_left(starts, j["arrival_us"])
            hi = bisect.bisect_right(starts, j["at_us"])
            inside = steps[lo:hi]
            ttft.append(j["at_us"] - j["arrival_us"])
            wait.append((inside[0]["step_us"] if inside else j["at_us"]) - j["arrival_us"])
            nsteps.append(len(inside))
            ptoks.append(sum(s["prefill_tokens"] for s in inside))
            prompt.append(j["prompt_tokens"])
        label = "all" if len(groups) == 1 else f"group {gi + 1}"
        print(f"  {label}: {len(g)} requests, prompt {statistics.fmean(prompt):.0f} tokens; TTFT mean "
              f"{statistics.fmean(ttft) / 1e3:.2f} p50 {pct(ttft, 50) / 1e3:.2f} max {max(ttft) / 1e3:.2f} ms; "
              + (f"before it, in the front end {statistics.fmean(front) / 1e3:.2f} (p50 {pct(front, 50) / 1e3:.2f}, "
                 f"max {max(front) / 1e3:.2f}) ms" + (f", of it parsing and tokenizing {statistics.fmean(prep) / 1e3:.2f}"
                                                       if prep else "") + "; " if front else "") +
              f"wait for a step {statistics.fmean(wait) / 1e3:.2f} ms; meanwhile {statistics.fmean(nsteps):.1f} steps "
              f"prefilling {statistics.fmean(ptoks):.0f} tokens")
    if a.requests:
        client_split(a.requests, firsts, origin, a.group)


BUCKETS = ((0, 0), (1, 256), (257, 1024), (1025, 2048), (2049, 4096), (4097, 1 << 30))


def slow_steps(steps, factor=1.5, limit=12):
    """Steps whose run_step took over `factor` x the median of their kind (the
    prefill-token buckets above). With the backend's timing in the trace
    (enqueue_us, device_us) each says whether the device ran long (device span ~
    run_step) or the host did (enqueue or the wait around it)."""
    timed = [s for s in steps if "device_us" in s]
    if timed:
        describe("run_step: host enqueue", [s["enqueue_us"] for s in timed])
        describe("run_step: device span", [s["device_us"] for s in timed])
    slow = []
    for lo, hi in BUCKETS:
        kind = [s for s in steps if lo <= s["prefill_tokens"] <= hi]
        if len(kind) < 3:
            continue
        median = pct([s["run_us"] for s in kind], 50)
        slow += [(s, median) for s in kind if s["run_us"] > factor * median]
    if not slow:
        return
    slow.sort(key=lambda x: x[0]["step_us"])
    print(f"steps whose run_step took over {factor}x the median of their kind ({len(slow)}"
          f"{', the first ' + str(limit) if len(slow) > limit else ''}):")
    for s, median in slow[:limit]:
        split = (f"; host enqueue {s['enqueue_us'] / 1e3:.3f}, device span {s['device_us'] / 1e3:.3f}"
                 if "device_us" in s else "")
        print(f"  at {s['step_us'] / 1e3:9.1f} ms: {s['prefill_tokens']} prefill tokens, {s['decodes']} decodes; "
              f"run_step {s['run_us'] / 1e3:.3f} ms (median {median / 1e3:.3f}){split}; plan {s['plan_us'] / 1e3:.3f}, "
              f"emit {s['emit_us'] / 1e3:.3f}")


def client_split(path, firsts, origin, group):
    """Each client request matched to the first-token line received after it was
    sent (same prompt length, nearest in time): where its client-side TTFT went."""
    if origin is None:
        sys.exit(f"{path}: the trace has no origin line (a trace from an older server)")
    with open(path) as f:
        report = json.load(f)
    records = [r for run in report["runs"] for r in run.get("request_records") or ()
               if r.get("ok") and r.get("first_clock_s") is not None and r.get("start_clock_s") is not None]
    if not records:
        sys.exit(f"{path}: no request records with clock stamps (run tools/loadgen with --save-requests)")
    taken = set()
    rows = []  # (turn, client->received, received->prepared, prepared->arrival, arrival->token, token->client) µs
    for r in sorted(records, key=lambda r: r["start_clock_s"]):
        start = r["start_clock_s"] * 1e6 - origin
        first = r["first_clock_s"] * 1e6 - origin
        best = None
        for i, j in enumerate(firsts):
            if i in taken or "received_us" not in j or j["prompt_tokens"] != r["prompt_tokens"]:
                continue
            if start <= j["received_us"] and j["at_us"] <= first and (best is None or j["received_us"] < firsts[best]["received_us"]):
                best = i
        if best is None:
            continue
        taken.add(best)
        j = firsts[best]
        prepared = j.get("prepared_us", j["arrival_us"])
        rows.append((r["turn"], j["received_us"] - start, prepared - j["received_us"], j["arrival_us"] - prepared,
                     j["at_us"] - j["arrival_us"], first - j["at_us"]))
    print(f"client time to first text, split ({len(rows)} of {len(records)} requests matched), mean ms:")
    turns = sorted({t for t, *_ in rows}) if group > 0 else [None]
    for t in turns:
        sel = [x for x in rows if t is None or x[0] == t]
        m = [statistics.fmean(x[k] for x in sel) / 1e3 for k in range(1, 6)]
        label = "all" if t is None else f"turn {t}"
        print(f"  {label}: {len(sel)} requests; client -> received {m[0]:.2f}, parse+tokenize {m[1]:.2f}, "
              f"hand-over {m[2]:.2f}, engine {m[3]:.2f}, first token -> client's first text {m[4]:.2f}; "
              f"sum {sum(m):.2f}")


if __name__ == "__main__":
    main()
