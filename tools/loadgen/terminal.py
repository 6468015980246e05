"""What a person sees: a live progress line while a phase runs, then tables."""
import asyncio
import sys
import time


def progress_line(stream=sys.stderr, interval_s=1.0):
    """A coroutine factory for runner.run_phase: one line, rewritten in place on a
    terminal, or printed every 10 s when the output is a file or pipe."""
    tty = stream.isatty()
    every = interval_s if tty else 10.0

    async def show(phase):
        last_t, last_events = time.perf_counter(), phase.client.live_events[0]
        while True:
            await asyncio.sleep(every)
            now, events = time.perf_counter(), phase.client.live_events[0]
            out = phase.out
            done = len(out.results)
            errors = sum(1 for r in out.results if not r.ok)
            elapsed = now - out.t_start
            stage = "warm-up" if now < out.t_measure else ("drain" if phase.closed.is_set() else "measure")
            line = (f"[{phase.spec.label}] {elapsed:6.1f}s {stage:7s} done {done} err {errors} "
                    f"in-flight {phase.inflight} | {(events - last_events) / (now - last_t):8.0f} chunks/s")
            last_t, last_events = now, events
            stream.write(("\r" + line + "\x1b[K") if tty else line + "\n")
            stream.flush()

    async def run(phase):
        try:
            await show(phase)
        finally:
            if tty:
                stream.write("\r\x1b[K")
                stream.flush()

    return run


def _fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def _pcts(summary, keys=("p50", "p90", "p99"), digits=1):
    if not summary:
        return "-"
    return " / ".join(_fmt(summary[k], digits) for k in keys)


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).rjust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def runs_table(runs):
    """One row per phase: the figures an operator compares across load levels."""
    headers = ["load", "ok/sent", "req/s", "out tok/s", "TTFT p50/p90/p99 ms", "TPOT p50/p90/p99 ms",
               "ITL p99", "E2E p50/p99 ms", "goodput/s", "errors"]
    rows = []
    for r in runs:
        lat = r["latency_ms"]
        errors = ", ".join(f"{k}:{v}" for k, v in r["errors"].items()) or "0"
        rows.append([r["label"], f"{r['requests']['ok']}/{r['requests']['measured']}",
                     _fmt(r["throughput"]["requests_per_s"], 2), _fmt(r["throughput"]["output_tokens_per_s"]),
                     _pcts(lat["ttft"]), _pcts(lat["tpot"], digits=2), _fmt((lat["itl"] or {}).get("p99"), 2),
                     _pcts(lat["e2e"], ("p50", "p99")), _fmt(r["goodput"]["requests_per_s"], 2), errors])
    return table(headers, rows)


def detail(r):
    """The full picture of one phase."""
    parts = []
    lat = r["latency_ms"]
    rows = [[name, _fmt(s["n"], 0) if s else "-", *(_fmt(s[k], 2) if s else "-" for k in ("mean", "p50", "p90",
                                                                                          "p99", "max"))]
            for name, s in (("TTFT", lat["ttft"]), ("ITL", lat["itl"]), ("TPOT", lat["tpot"]), ("E2E", lat["e2e"]))]
    if r["requests"]["ok"]:
        parts.append(table(["latency ms", "n", "mean", "p50", "p90", "p99", "max"], rows))
    t = r["throughput"]
    parts.append(f"throughput: {_fmt(t['requests_per_s'], 2)} req/s, {_fmt(t['output_tokens_per_s'])} output tok/s, "
                 f"{_fmt(t['total_tokens_per_s'])} total tok/s over {r['duration_s']:.1f} s "
                 f"(mean prompt {_fmt(r['tokens']['prompt_mean'])}, output {_fmt(r['tokens']['output_mean'])} tokens); "
                 f"{_fmt(t['held_output_tokens_per_s'])} output tok/s while the load was held")
    g = r["goodput"]
    if g["slo"]:
        slo = ", ".join(f"{k} <= {v}" for k, v in g["slo"].items())
        parts.append(f"goodput ({slo}): {g['good_requests']} requests, {_fmt(g['requests_per_s'], 2)} req/s, "
                     f"{_fmt(100 * g['fraction'] if g['fraction'] is not None else None)}% of measured")
    if r["errors"]:
        parts.append("errors: " + ", ".join(f"{k} x{v}" for k, v in r["errors"].items()))
    if "per_turn" in r:
        rows = [[p["turn"], f"{p['ok']}/{p['requests']}", _fmt(p["prompt_tokens_mean"]), _pcts(p["ttft_ms"]),
                 _pcts(p["e2e_ms"], ("p50", "p99"))] for p in r["per_turn"]]
        parts.append(table(["turn", "ok/sent", "prompt tok", "TTFT p50/p90/p99 ms", "E2E p50/p99 ms"], rows))
    if "server_metrics" in r:
        parts.append(server_lines(r["server_metrics"]))
    c = r["client"]
    lag = c["loop_lag_ms"] or {}
    parts.append(f"client: {c['cpu_share'] * 100:.0f}% of one core, event-loop lag p99 {_fmt(lag.get('p99'), 2)} ms "
                 f"(max {_fmt(lag.get('max'), 2)})" + (" -- the client is saturated; its latencies are inflated"
                                                      if c["cpu_share"] > 0.9 else ""))
    return "\n".join(parts)


def server_lines(m):
    """Non-zero counter deltas, gauge ranges and histogram summaries (ms)."""
    out = ["server /metrics over the phase:"]
    counters = [f"{k} +{v:g}" for k, v in m["counters"].items() if v]
    if counters:
        out.append("  " + ", ".join(counters))
    for k, g in m["gauges"].items():
        if "max_during" in g and (g["max_during"] or g.get("after")):
            out.append(f"  {k}: mean {g['mean_during']:g}, max {g['max_during']:g} (after {g['after']:g})")
    for k, h in m["histograms"].items():
        if h["count"]:
            scale, unit = (1000.0, "ms") if "seconds" in k else (1.0, "")
            vals = " / ".join(_fmt(None if h[p] is None else h[p] * scale, 2) for p in ("p50", "p90", "p99"))
            out.append(f"  {k}: n {h['count']:g}, mean {_fmt(h['mean'] * scale, 2)}{unit}, p50/p90/p99 ~{vals}{unit}")
    return "\n".join(out)


def compare_table(reports, names):
    """Phase by phase, the headline figures of several reports side by side (e.g.
    the prefix cache on and off), then TTFT per turn index when there are turns."""
    parts = []
    for i in range(max(len(rep["runs"]) for rep in reports)):
        rows = []
        for name, rep in zip(names, reports):
            if i >= len(rep["runs"]):
                continue
            r = rep["runs"][i]
            rows.append([name, r["label"], _fmt(r["throughput"]["output_tokens_per_s"]),
                         _pcts(r["latency_ms"]["ttft"]), _pcts(r["latency_ms"]["tpot"], digits=2),
                         _pcts(r["latency_ms"]["e2e"], ("p50", "p99")), _fmt(r["goodput"]["requests_per_s"], 2)])
        parts.append(table(["report", "load", "out tok/s", "TTFT p50/p90/p99 ms", "TPOT p50/p90/p99 ms",
                            "E2E p50/p99 ms", "goodput/s"], rows))
        cache = [(name, {k: v for k, v in ((rep["runs"][i].get("server_metrics") or {}).get("counters") or {}).items()
                         if "cache" in k}) for name, rep in zip(names, reports) if i < len(rep["runs"])]
        for name, counters in cache:  # e.g. the server's prefix-cache queries, hits, hit tokens
            if counters:
                parts.append(f"{name}: " + ", ".join(f"{k} +{v:g}" for k, v in counters.items()))
        turn_sets = [{p["turn"]: p for p in rep["runs"][i].get("per_turn", [])} for rep in reports
                     if i < len(rep["runs"])]
        turns = sorted(set().union(*turn_sets))
        if turns:
            rows = [[t] + [_pcts((ts.get(t) or {}).get("ttft_ms")) for ts in turn_sets] for t in turns]
            parts.append(table(["turn"] + [f"{n} TTFT p50/p90/p99 ms" for n in names], rows))
    return "\n\n".join(parts)
