"""Turns a phase's request records into the figures of the JSON report: latency
percentiles, throughput, goodput, errors by kind, per-turn TTFT, client health and
the server's metrics delta. Only requests whose session started after the warm-up
count; the throughput window runs from the end of the warm-up to the last measured
request's end."""
import math

import server_metrics
from stats import crossing, percentile_sorted, summarize

SCHEMA_VERSION = 1
CDF_POINTS = 101  # quantiles kept per latency metric, enough to draw its CDF


def _quantiles(values, scale=1000.0):
    if not values:
        return None
    ordered = sorted(values)
    return [round(percentile_sorted(ordered, 100.0 * i / (CDF_POINTS - 1)) * scale, 3) for i in range(CDF_POINTS)]


def is_good(r, slo):
    """A request meets the SLOs if it succeeded and each given bound holds. Without
    streaming the first token arrives with the last, so TTFT is checked on e2e."""
    if not r.ok:
        return False
    ttft = r.ttft if r.ttft is not None else r.e2e
    if slo.get("ttft_ms") is not None and ttft * 1000 > slo["ttft_ms"]:
        return False
    if slo.get("tpot_ms") is not None and r.tpot is not None and r.tpot * 1000 > slo["tpot_ms"]:
        return False
    if slo.get("e2e_ms") is not None and r.e2e * 1000 > slo["e2e_ms"]:
        return False
    return True


def tokens_between(result, a, b):
    """Output tokens of `result` that reached the client in [a, b): its text-bearing
    chunks arrive at t_first and then after each gap, and each chunk counts for an
    equal share of the request's output tokens (the server streams one token a
    chunk, more only when it coalesces). A response that did not stream arrives
    whole at t_end."""
    if not result.output_tokens:
        return 0.0
    if result.t_first is None:
        return float(result.output_tokens) if result.ok and result.t_end is not None and a <= result.t_end < b else 0.0
    t = result.t_first
    inside = 1 if a <= t < b else 0
    for g in result.gaps:
        t += g
        inside += 1 if a <= t < b else 0
    return result.output_tokens * inside / (len(result.gaps) + 1)


def held_output_rate(phase):
    """Output tokens per second while the load was held: every token that arrived
    between the end of the warm-up and the window's close (warm-up requests' tokens
    included), over that time. The throughput figures count whole measured
    requests over a window that also holds the warm-up requests' tails and the
    drain, when fewer streams are left: at the concurrency or rate itself this is
    the rate the server kept up."""
    a, b = phase.t_measure, phase.t_closed
    if b <= a:
        return None
    return round(sum(tokens_between(r, a, b) for r in phase.results) / (b - a), 1)


def phase_report(phase, slo, *, save_requests=False):
    spec = phase.spec
    measured = [r for r in phase.results if not r.warmup]
    ok = [r for r in measured if r.ok]
    ends = [r.t_end for r in measured if r.t_end is not None]
    window = max(max(ends, default=phase.t_closed), phase.t_closed) - phase.t_measure
    window = max(window, 1e-9)
    errors, warm_errors = {}, {}
    for r in phase.results:
        if not r.ok:
            bucket = warm_errors if r.warmup else errors
            bucket[r.error] = bucket.get(r.error, 0) + 1
    out_tokens = sum(r.output_tokens for r in ok)
    prompt_known = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
    prompt_tokens = sum(prompt_known)
    ttft = [r.ttft for r in ok if r.ttft is not None]
    tpot = [r.tpot for r in ok if r.tpot is not None]
    e2e = [r.e2e for r in ok]
    itl = [g for r in ok for g in r.gaps]
    good = sum(1 for r in measured if is_good(r, slo))
    measured_sessions = len({r.session for r in measured if r.session >= 0})
    open_window = max(phase.t_closed - phase.t_measure, 1e-9)
    report = {
        "label": spec.label,
        "mode": spec.mode,
        "concurrency": int(spec.level) if spec.mode == "closed" else None,
        "rate": (None if math.isinf(spec.level) else spec.level) if spec.mode == "open" else None,
        "offered": {
            "sessions_measured": measured_sessions,
            "sessions_per_s": round(measured_sessions / open_window, 3),
            "window_open_s": round(phase.t_closed - phase.t_measure, 3),
        },
        "warmup_s": spec.warmup_s,
        "duration_s": round(window, 3),
        "requests": {
            "measured": len(measured),
            "ok": len(ok),
            "failed": len(measured) - len(ok),
            "warmup": len(phase.results) - len(measured),
        },
        "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])),
        "errors_warmup": warm_errors,
        "latency_ms": {
            "ttft": summarize(ttft, 1000.0),
            "itl": summarize(itl, 1000.0),
            "tpot": summarize(tpot, 1000.0),
            "e2e": summarize(e2e, 1000.0),
        },
        "throughput": {
            "requests_per_s": round(len(ok) / window, 3),
            "output_tokens_per_s": round(out_tokens / window, 1),
            "total_tokens_per_s": round((out_tokens + prompt_tokens) / window, 1) if prompt_known else None,
            "input_tokens_per_s": round(prompt_tokens / window, 1) if prompt_known else None,
            "held_output_tokens_per_s": held_output_rate(phase),
        },
        "tokens": {
            "output_total": out_tokens,
            "output_mean": round(out_tokens / len(ok), 2) if ok else None,
            "prompt_total": prompt_tokens if prompt_known else None,
            "prompt_mean": round(prompt_tokens / len(prompt_known), 2) if prompt_known else None,
        },
        "goodput": {
            "slo": {k: v for k, v in slo.items() if v is not None},
            "good_requests": good,
            "requests_per_s": round(good / window, 3),
            "fraction": round(good / len(measured), 4) if measured else None,
        },
        "cdf_ms": {"ttft": _quantiles(ttft), "tpot": _quantiles(tpot), "e2e": _quantiles(e2e)},
        "client": {
            "cpu_s": round(phase.cpu_s, 3),
            "cpu_share": round(phase.cpu_s / max(phase.t_end - phase.t_start, 1e-9), 3),
            "loop_lag_ms": summarize(phase.loop_lag_s, 1000.0),
        },
    }
    turns = sorted({r.turn for r in measured})
    if len(turns) > 1:
        report["per_turn"] = [_turn_figures(t, [r for r in measured if r.turn == t]) for t in turns]
    if phase.server_before and phase.server_after:
        report["server_metrics"] = server_metrics.diff(phase.server_before, phase.server_after,
                                                       phase.server_samples)
    if save_requests:
        report["request_records"] = [_record(r, phase.t_start) for r in phase.results]
    return report


def _turn_figures(turn, rs):
    ok = [r for r in rs if r.ok]
    prompts = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
    return {
        "turn": turn,
        "requests": len(rs),
        "ok": len(ok),
        "prompt_tokens_mean": round(sum(prompts) / len(prompts), 1) if prompts else None,
        "ttft_ms": summarize([r.ttft for r in ok if r.ttft is not None], 1000.0),
        "e2e_ms": summarize([r.e2e for r in ok], 1000.0),
    }


def _record(r, t0):
    return {"session": r.session, "turn": r.turn, "start_s": round(r.t_start - t0, 6), "ok": r.ok, "error": r.error,
            "warmup": r.warmup, "ttft_ms": _ms(r.ttft), "e2e_ms": _ms(r.e2e), "tpot_ms": _ms(r.tpot),
            "prompt_tokens": r.prompt_tokens, "output_tokens": r.output_tokens,
            # perf_counter itself (CLOCK_MONOTONIC on Linux, the server's steady clock):
            # tools/step_trace_summary.py --requests places them on a step trace.
            "start_clock_s": round(r.t_start, 6), "first_clock_s": None if r.t_first is None else round(r.t_first, 6)}


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000, 3)


def sweep_summary(runs, slo):
    """For two or more phases: the load axis and where p99 TTFT crosses its SLO."""
    if len(runs) < 2:
        return None
    axis = "rate" if runs[0]["mode"] == "open" else "concurrency"
    xs = [r[axis] for r in runs]
    summary = {"axis": axis, "points": xs}
    if slo.get("ttft_ms") is not None and None not in xs:
        ys = [(r["latency_ms"]["ttft"] or {}).get("p99") for r in runs]
        summary["p99_ttft_slo_ms"] = slo["ttft_ms"]
        summary["p99_ttft_crosses_slo_at"] = crossing(xs, ys, slo["ttft_ms"])
    return summary
