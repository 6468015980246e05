"""Which charts a report gets (from the JSON report alone, so that a saved report
can be drawn again): a sweep → latency percentiles and throughput against the
offered load; one phase → latency CDFs (+ TTFT per turn); several reports →
the same figures overlaid, one colour per report."""
from plot_svg import PALETTE, Chart, figure

P_STYLES = (("p50", None), ("p90", "5 3"), ("p99", "2 2"))


def _axis_label(runs):
    return "offered rate (sessions/s)" if runs[0]["mode"] == "open" else "concurrency (closed loop)"


def _xs(runs):
    key = "rate" if runs[0]["mode"] == "open" else "concurrency"
    return [r[key] for r in runs]


def _pct(runs, metric, p):
    return [(r["latency_ms"][metric] or {}).get(p) for r in runs]


def _subtitle(report):
    t, w = report["target"], report["workload"]
    shape = f"{w.get('input_tokens', 'dataset')} in / {w.get('output_tokens', '')} out tokens"
    if w.get("turns", 1) > 1:
        shape += f", {w['turns']} turns (+{w.get('turn_tokens')} each)"
    model = (report.get("server") or {}).get("model") or "?"
    return f"{t['protocol']} {t['endpoint']}{' streaming' if t['stream'] else ''} | model {model} | {shape}"


def sweep_charts(runs, slo, name_prefix="", color=None, crossing=None, charts=None):
    xs, xl = _xs(runs), _axis_label(runs)
    if charts is None:
        charts = [Chart("Time to first token", xl, "ms (log)", log_y=True),
                  Chart("Time per output token", xl, "ms (log)", log_y=True),
                  Chart("End-to-end latency", xl, "ms (log)", log_y=True),
                  Chart("Output throughput", xl, "tokens/s"),
                  Chart("Request throughput", xl, "requests/s")]
    for chart, metric in zip(charts[:3], ("ttft", "tpot", "e2e")):
        for i, (p, dash) in enumerate(P_STYLES):
            chart.line(f"{name_prefix}{p}", xs, _pct(runs, metric, p), color=color or PALETTE[i], dash=dash)
    charts[3].line(f"{name_prefix}output tok/s", xs, [r["throughput"]["output_tokens_per_s"] for r in runs],
                   color=color or PALETTE[0])
    charts[4].line(f"{name_prefix}completed", xs, [r["throughput"]["requests_per_s"] for r in runs],
                   color=color or PALETTE[0])
    if runs[0]["mode"] == "open" and not name_prefix:
        charts[4].line("offered", xs, xs, color="#999", dash="2 3", markers=False)
    occupancy = _occupancy(runs)
    if occupancy:
        if len(charts) < 6:
            charts.append(Chart("Server occupancy (mean while running)", xl, "sequences"))
        for i, (label, ys) in enumerate(occupancy):
            charts[5].line(f"{name_prefix}{label}", xs, ys, color=color or PALETTE[i], dash=P_STYLES[i % 3][1])
    if slo:
        charts[4].line(f"{name_prefix}goodput (SLO met)", xs, [r["goodput"]["requests_per_s"] for r in runs],
                       color=color or PALETTE[2], dash="5 3")
    if slo.get("ttft_ms") is not None:
        charts[0].hline(slo["ttft_ms"], f"SLO {slo['ttft_ms']:g} ms")
    if slo.get("tpot_ms") is not None:
        charts[1].hline(slo["tpot_ms"], f"SLO {slo['tpot_ms']:g} ms")
    if crossing is not None:
        charts[0].vline(crossing, f"p99 crosses at {crossing:.4g}")
    return charts


def _occupancy(runs):
    """Mean slots in use and requests waiting, from the server's gauges (if scraped)."""
    out = []
    for gauge, label in (("tnl_state_slots_used", "slots used"), ("tnl_requests_waiting", "waiting")):
        ys = [(((r.get("server_metrics") or {}).get("gauges") or {}).get(gauge) or {}).get("mean_during")
              for r in runs]
        if any(y is not None for y in ys):
            out.append((label, ys))
    return out


def cdf_chart(title, series, slo=None):
    chart = Chart(title, "ms (log)", "fraction of requests", log_x=True)
    for name, q, color in series:
        if q:
            chart.line(name, q, [i / (len(q) - 1) for i in range(len(q))], color=color, markers=False)
    if slo is not None:
        chart.vline(slo, f"SLO {slo:g} ms")
    return chart


def single_charts(reports, names, slo):
    charts = []
    for metric, title in (("ttft", "TTFT distribution"), ("tpot", "TPOT distribution"),
                          ("e2e", "End-to-end latency distribution")):
        charts.append(cdf_chart(title, [(n, rep["runs"][0]["cdf_ms"][metric], PALETTE[i % len(PALETTE)])
                                        for i, (n, rep) in enumerate(zip(names, reports))],
                                slo.get(f"{metric}_ms")))
    with_turns = [(n, rep["runs"][0]["per_turn"]) for n, rep in zip(names, reports) if "per_turn" in rep["runs"][0]]
    if with_turns:
        chart = Chart("TTFT by turn", "turn", "ms", y_zero=True)
        styles = P_STYLES if len(with_turns) == 1 else (P_STYLES[0], P_STYLES[2])  # keep the legend small
        for i, (n, turns) in enumerate(with_turns):
            t = [p["turn"] for p in turns]
            for p, dash in styles:
                label = f"{n} {p}" if len(with_turns) > 1 else p
                chart.line(label, t, [(x["ttft_ms"] or {}).get(p) for x in turns],
                           color=PALETTE[i if len(with_turns) > 1 else P_STYLES.index((p, dash))], dash=dash)
        charts.append(chart)
        chart = Chart("Prompt tokens by turn (server's count)", "turn", "tokens")
        for i, (n, turns) in enumerate(with_turns):
            chart.line(n, [p["turn"] for p in turns], [p["prompt_tokens_mean"] for p in turns], color=PALETTE[i])
        charts.append(chart)
    return charts


def render(reports, names=None):
    """The SVG for one report, or for several compared."""
    names = names or [""] * len(reports)  # one report: no legend entry needed
    slo = reports[0]["runs"][0]["goodput"]["slo"]
    if all(len(rep["runs"]) > 1 for rep in reports):
        charts = None
        for i, (n, rep) in enumerate(zip(names, reports)):
            sweep = rep.get("sweep") or {}
            charts = sweep_charts(rep["runs"], slo, name_prefix=(f"{n} " if len(reports) > 1 else ""),
                                  color=(PALETTE[i] if len(reports) > 1 else None),
                                  crossing=(sweep.get("p99_ttft_crosses_slo_at") if len(reports) == 1 else None),
                                  charts=charts)
        title = "tnl-loadgen sweep" if len(reports) == 1 else "tnl-loadgen: " + " vs ".join(names)
    else:
        charts = single_charts(reports, names, slo)
        label = reports[0]["runs"][0]["label"]
        title = f"tnl-loadgen: {label}" if len(reports) == 1 else "tnl-loadgen: " + " vs ".join(names)
    return figure(title, charts, subtitle=_subtitle(reports[0]))
