#!/usr/bin/env python3
"""tnl-loadgen: load tests for tnl-server over HTTP (OpenAI completions/chat) or gRPC
(tnl.v1), closed loop (--concurrency N) or open loop (--rate R, Poisson arrivals),
one level or a sweep (comma-separated levels), single- or multi-turn prompts cut
from a corpus or read from a JSONL dataset. Reports TTFT, ITL, TPOT and end-to-end
percentiles, throughput, goodput against SLOs, errors by kind and the server's own
/metrics delta, as a terminal table, a JSON report (--json) and an SVG plot (--plot).
Every run ends by itself: after --duration or --num-requests the window closes and
in-flight requests get --drain-timeout. Only --host is contacted.

  python3 tools/loadgen/loadgen.py --port 8000 --rate 1,2,4,8 --duration 60 \\
      --input-tokens 512 --output-tokens 128 --slo-ttft-ms 200 --json r.json --plot r.svg
  python3 tools/loadgen/loadgen.py --compare cache-on.json cache-off.json --plot turns.svg

See docs/operations.md, "Load testing"."""
import argparse
import asyncio
import datetime
import json
import math
import os
import resource
import subprocess
import sys

import figures
import report as reports
import server_metrics
import terminal
from client_http import HttpClient
from runner import PhaseSpec, run_phase
from workloads import LengthDist, Corpus, PromptSizer, build_corpus_workload, load_dataset_workload

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SYSTEM_PYTHON = "/usr/bin/python3"  # where Debian's python3-grpcio installs


def default_corpus():
    brown = os.path.join(REPO, "data", "brown", "train.txt")  # tools/data/fetch_brown.sh
    return brown if os.path.exists(brown) else os.path.join(REPO, "tests", "data", "heldout_slice.txt")


def levels(text):
    out = []
    for part in text.split(","):
        v = float(part)
        if not v > 0:
            raise argparse.ArgumentTypeError(f"levels must be > 0, got {part}")
        out.append(v)
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(prog="tnl-loadgen", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    t = p.add_argument_group("target")
    t.add_argument("--host", default="127.0.0.1")
    t.add_argument("--port", type=int, default=8000, help="HTTP port, or the gRPC port with --protocol grpc")
    t.add_argument("--protocol", choices=("http", "grpc"), default="http")
    t.add_argument("--endpoint", choices=("completions", "chat"), default="completions",
                   help="HTTP /v1/completions or /v1/chat/completions; gRPC text or chat prompt")
    t.add_argument("--api-key", default=os.environ.get("TNL_API_KEY", ""), help="default: $TNL_API_KEY")
    t.add_argument("--model", default="", help="the request's model field (default: the served model)")
    t.add_argument("--metrics-port", type=int, default=None,
                   help="HTTP port for /metrics and /v1/models (default: --port with http, none with grpc)")
    t.add_argument("--no-metrics", action="store_true", help="do not scrape /metrics")
    t.add_argument("--keep-alive", action=argparse.BooleanOptionalAction, default=False,
                   help="HTTP: reuse connections between generation requests as an SDK's pool does "
                        "(default: a fresh connection each)")
    t.add_argument("--uvloop", action=argparse.BooleanOptionalAction, default=True,
                   help="use uvloop's event loop when the interpreter has it (Debian: python3-uvloop)")
    t.add_argument("--grpc-channels", type=int, default=1, help="HTTP/2 connections for gRPC calls")
    t.add_argument("--server-pid", type=int, default=0, help="report this local process's peak RSS (VmHWM)")

    load = p.add_argument_group("load (closed loop or open loop; a comma list is a sweep)")
    mode = load.add_mutually_exclusive_group()
    mode.add_argument("--concurrency", type=levels, help="closed loop: N sessions in flight, e.g. 64 or 1,8,64")
    mode.add_argument("--rate", type=str, help="open loop: sessions/s, Poisson arrivals, e.g. 4 or 1,2,4,8; "
                                               "'inf' sends --num-requests at once")
    mode.add_argument("--connections", type=int, help="the old burst: --concurrency N --num-requests N --warmup 0")
    load.add_argument("--duration", type=float, help="seconds of measurement per level (default 30 without "
                                                     "--num-requests)")
    load.add_argument("--num-requests", type=int, help="measured requests per level")
    load.add_argument("--warmup", type=float, default=None,
                      help="seconds excluded from the figures at the start of each level "
                           "(default: 10%% of --duration, at most 10 s; 0 with --num-requests only)")
    load.add_argument("--drain-timeout", type=float, default=120.0,
                      help="seconds in-flight requests get after the window closes; then cancelled")
    load.add_argument("--request-timeout", type=float, default=600.0)
    load.add_argument("--max-inflight", type=int, default=10000, help="open loop: arrivals beyond are counted "
                                                                      "as client_inflight_limit, not sent")
    load.add_argument("--seed", type=int, default=0, help="prompts, lengths and arrival times")

    w = p.add_argument_group("workload")
    w.add_argument("--corpus", default=None, help="text file prompts are cut from (default: the Brown Corpus in "
                                                  "data/brown if fetched, else tests/data/heldout_slice.txt)")
    w.add_argument("--input-tokens", type=LengthDist, default=LengthDist("128"), help="N or A:B (uniform)")
    w.add_argument("--output-tokens", "--max-tokens", type=LengthDist, default=LengthDist("128"),
                   help="max_tokens: N or A:B (uniform)")
    w.add_argument("--dataset", help="JSONL of {\"prompt\": str, \"max_tokens\": int} instead of the corpus")
    w.add_argument("--turns", type=int, default=1, help="multi-turn: each turn resends the history")
    w.add_argument("--turn-tokens", type=LengthDist, default=None,
                   help="new user message per turn after the first (default: --input-tokens)")
    w.add_argument("--think-time-ms", type=float, default=0.0, help="pause between the turns of a conversation")
    w.add_argument("--prompt-pool", type=int, default=None, help="distinct conversations built before the run "
                                                                 "(default: the expected count, 16..1000)")
    w.add_argument("--no-tokenize", action="store_true",
                   help="size prompts as words x 1.3 instead of asking the server's tokenizer")
    w.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True)
    w.add_argument("--ignore-eos", action=argparse.BooleanOptionalAction, default=True,
                   help="generate exactly max_tokens (default on)")
    w.add_argument("--temperature", type=float)
    w.add_argument("--extra-body", type=json.loads, default=None, metavar="JSON",
                   help="HTTP: fields merged into every request body, e.g. '{\"response_format\": "
                        "{\"type\": \"json_object\"}}' (structured output needs --no-ignore-eos)")
    w.add_argument("--top-p", type=float)
    w.add_argument("--top-k", type=int)

    o = p.add_argument_group("SLOs and output")
    o.add_argument("--slo-ttft-ms", type=float)
    o.add_argument("--slo-tpot-ms", type=float)
    o.add_argument("--slo-e2e-ms", type=float)
    o.add_argument("--json", metavar="FILE", help="write the JSON report")
    o.add_argument("--plot", metavar="FILE", help="write an SVG plot")
    o.add_argument("--save-requests", action="store_true", help="include every request's record in the JSON")
    o.add_argument("--quiet", action="store_true", help="no progress line")
    o.add_argument("--compare", nargs="+", metavar="REPORT", help="print (and --plot) saved JSON reports side by "
                                                                  "side, e.g. prefix cache on vs off; no load")
    args = p.parse_args(argv)

    if args.compare:
        return args
    if args.connections:
        args.concurrency, args.num_requests, args.warmup = [float(args.connections)], args.connections, 0.0
    if args.concurrency is None and args.rate is None:
        p.error("give --concurrency N (closed loop) or --rate R (open loop)")
    if args.rate is not None:
        args.rate = [math.inf if r.strip() == "inf" else levels(r)[0] for r in args.rate.split(",")]
        if math.inf in args.rate and not args.num_requests:
            p.error("--rate inf needs --num-requests")
    if args.duration is None and args.num_requests is None:
        args.duration = 30.0
    if args.warmup is None:
        args.warmup = min(10.0, 0.1 * args.duration) if args.duration else 0.0
    if args.turns < 1:
        p.error("--turns must be >= 1")
    if args.dataset and args.turns > 1:
        p.error("--dataset rows are single-turn; use the corpus for --turns")
    args.turn_tokens = args.turn_tokens or args.input_tokens
    args.corpus = args.corpus or default_corpus()
    if args.metrics_port is None and args.protocol == "http":
        args.metrics_port = args.port
    return args


def ensure_grpc():
    """gRPC comes from Debian's python3-grpcio, which installs for /usr/bin/python3
    only: re-run this command under that interpreter if ours lacks it."""
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401
        return
    except ImportError:
        pass
    here_is_system = os.path.realpath(sys.executable) == os.path.realpath(SYSTEM_PYTHON)
    if not here_is_system and not os.environ.get("TNL_LOADGEN_REEXEC") and os.path.exists(SYSTEM_PYTHON):
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import grpc, google.protobuf"], capture_output=True)
        if probe.returncode == 0:
            os.environ["TNL_LOADGEN_REEXEC"] = "1"
            os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__), *sys.argv[1:]])
    sys.exit("tnl-loadgen: --protocol grpc needs Python's grpc and protobuf modules "
             "(Debian: apt-get install python3-grpcio python3-protobuf, for /usr/bin/python3)")


def use_uvloop():
    """uvloop halves the event loop's own cost per read; asyncio's loop when absent."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def request_params(args):
    params = {"ignore_eos": args.ignore_eos}
    for key in ("temperature", "top_p", "top_k", "model"):
        value = getattr(args, key)
        if value not in (None, ""):
            params[key] = value
    if args.extra_body:
        if args.protocol == "grpc":
            raise SystemExit("--extra-body is for --protocol http")
        params.update(args.extra_body)
    return params


def make_client(args):
    common = dict(api_key=args.api_key, endpoint=args.endpoint, stream=args.stream, params=request_params(args),
                  request_timeout=args.request_timeout)
    if args.protocol == "grpc":
        from client_grpc import GrpcClient
        return GrpcClient(args.host, args.port, channels=args.grpc_channels, **common)
    return HttpClient(args.host, args.port, keep_alive=args.keep_alive, **common)


def pool_size(args):
    if args.prompt_pool:
        return args.prompt_pool
    if args.num_requests:
        expected = math.ceil(args.num_requests / args.turns) + int(max(args.concurrency or [0]))
    elif args.rate:
        finite = [r for r in args.rate if math.isfinite(r)] or [1.0]
        expected = max(finite) * (args.duration + args.warmup) / args.turns
    else:
        expected = 4 * max(args.concurrency)
    return int(max(16, min(1000, expected)))


def brief(e):
    """One line for an exception (gRPC errors carry a multi-line debug string)."""
    if callable(getattr(e, "code", None)) and callable(getattr(e, "details", None)):
        return f"grpc {e.code().name}: {e.details()}"
    return f"{type(e).__name__}: {e}"


async def describe_server(client, metrics_client):
    """The served model, as the server names it; an error string if unreachable."""
    try:
        if metrics_client is not None:
            status, _, body = await metrics_client.fetch("GET", "/v1/models", timeout=10.0)
            if status == 200:
                data = json.loads(body)["data"][0]
                return {"model": data.get("id"), "max_model_len": data.get("max_model_len")}
            return {"error": f"GET /v1/models answered {status}"}
        if hasattr(client, "model_info"):
            info = await client.model_info()
            return {"model": info.get("name"), "info": info}
    except Exception as e:  # noqa: BLE001 - an unreachable server is a finding, not a crash
        return {"error": brief(e)}
    return {}


async def build_workload(args, client):
    chat = args.endpoint == "chat"
    if args.dataset:
        return load_dataset_workload(args.dataset, chat=chat, default_max_tokens=args.output_tokens.lo)
    sizer = PromptSizer(Corpus(args.corpus), None if args.no_tokenize else client.count_tokens)
    try:
        await sizer.calibrate()
    except Exception as e:  # noqa: BLE001
        print(f"tnl-loadgen: cannot use the server's tokenizer ({brief(e)}); "
              f"sizing prompts as words x {sizer.tokens_per_word}", file=sys.stderr)
        sizer.count_tokens = None
    return await build_corpus_workload(sizer, pool_size=pool_size(args), turns=args.turns,
                                       input_len=args.input_tokens, turn_len=args.turn_tokens,
                                       output_len=args.output_tokens, chat=chat, seed=args.seed)


def phase_specs(args):
    mode, values = ("closed", args.concurrency) if args.concurrency else ("open", args.rate)
    return [PhaseSpec(mode=mode, level=v, duration_s=args.duration, num_requests=args.num_requests,
                      warmup_s=args.warmup, drain_timeout_s=args.drain_timeout, max_inflight=args.max_inflight,
                      think_time_s=args.think_time_ms / 1000.0, seed=args.seed + i)
            for i, v in enumerate(values)]


def peak_rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


async def run_level(client, workload, watcher, spec, slo, args, progress):
    """One load level, with /metrics scraped before, every second during, and after."""
    if not args.quiet:
        print(f"tnl-loadgen: {spec.label}: warm-up {spec.warmup_s:g} s, then "
              + (f"{spec.duration_s:g} s" if spec.duration_s else f"{spec.num_requests} requests"), file=sys.stderr)
    before = await watcher.scrape() if watcher else None
    stop_sampling, samples = asyncio.Event(), []
    sampler = asyncio.ensure_future(watcher.sample_until(stop_sampling, samples)) if watcher else None
    phase = await run_phase(client, workload, spec, progress)
    if sampler:
        stop_sampling.set()
        await sampler
    phase.server_before, phase.server_samples = before, samples
    phase.server_after = await watcher.scrape() if watcher else None
    run_report = reports.phase_report(phase, slo, save_requests=args.save_requests)
    if watcher and watcher.error:
        run_report["server_metrics_error"] = watcher.error
        watcher.error = None
    return run_report


async def run(args):
    client = make_client(args)
    metrics_client = HttpClient(args.host, args.metrics_port) if args.metrics_port else None
    watcher = server_metrics.Watcher(metrics_client) if metrics_client and not args.no_metrics else None
    slo = {"ttft_ms": args.slo_ttft_ms, "tpot_ms": args.slo_tpot_ms, "e2e_ms": args.slo_e2e_ms}
    config = {k: v for k, v in vars(args).items() if k not in ("api_key", "compare")}
    config.update(api_key="(set)" if args.api_key else "", input_tokens=str(args.input_tokens),
                  output_tokens=str(args.output_tokens), turn_tokens=str(args.turn_tokens),
                  rate=[None if math.isinf(r) else r for r in args.rate] if args.rate else None)
    out = {"tool": "tnl-loadgen", "schema": reports.SCHEMA_VERSION,
           "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "target": {"host": args.host, "port": args.port, "protocol": args.protocol, "endpoint": args.endpoint,
                      "stream": args.stream},
           "config": config}
    try:
        out["server"] = await describe_server(client, metrics_client)
        workload = await build_workload(args, client)
        out["workload"] = workload.description
        progress = None if args.quiet else terminal.progress_line()
        specs = phase_specs(args)
        out["runs"] = []
        for i, spec in enumerate(specs):
            run_report = await run_level(client, workload, watcher, spec, slo, args, progress)
            out["runs"].append(run_report)
            if len(specs) > 1 and not args.quiet:  # a sweep: one table row per level as it finishes
                lines = terminal.runs_table([run_report]).splitlines()
                print("\n".join(lines if i == 0 else lines[-1:]), file=sys.stderr)
        out["sweep"] = reports.sweep_summary(out["runs"], slo)
        if args.server_pid:
            out["server_process"] = {"pid": args.server_pid, "peak_rss_mib": peak_rss_mib(args.server_pid)}
    finally:
        await client.close()
        if metrics_client:
            await metrics_client.close()
    return out


def print_report(out, stream=sys.stdout):
    print(terminal.runs_table(out["runs"]), file=stream)
    if len(out["runs"]) == 1:
        print("\n" + terminal.detail(out["runs"][0]), file=stream)
    sweep = out.get("sweep") or {}
    if "p99_ttft_crosses_slo_at" in sweep:
        at = sweep["p99_ttft_crosses_slo_at"]
        print(f"\np99 TTFT crosses {sweep['p99_ttft_slo_ms']:g} ms at {sweep['axis']} "
              + (f"{at:.4g}" if at is not None else f"> {sweep['points'][-1]:g} (never in this sweep)"), file=stream)
    if "error" in (out.get("server") or {}):
        print(f"\nserver: {out['server']['error']}", file=stream)
    if "server_process" in out:
        print(f"server peak RSS: {out['server_process']['peak_rss_mib']} MiB", file=stream)


def write_outputs(args, reports_list, names):
    if args.json:
        with open(args.json, "w") as f:
            json.dump(reports_list[0], f, indent=1)
            f.write("\n")
    if args.plot:
        with open(args.plot, "w") as f:
            f.write(figures.render(reports_list, names))


def compare(args):
    loaded = []
    for path in args.compare:
        with open(path) as f:
            loaded.append(json.load(f))
    names = [os.path.splitext(os.path.basename(p))[0] for p in args.compare]
    if len(loaded) == 1:  # one saved report: its own tables and plot again
        print_report(loaded[0])
    else:
        print(terminal.compare_table(loaded, names))
    if args.plot:
        with open(args.plot, "w") as f:
            f.write(figures.render(loaded, names if len(loaded) > 1 else None))
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.compare:
        return compare(args)
    if args.protocol == "grpc":
        ensure_grpc()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one socket per in-flight HTTP request
    loop_name = use_uvloop() if args.uvloop else "asyncio"
    out = asyncio.run(run(args))
    for r in out["runs"]:
        r["client"]["event_loop"] = loop_name
    print_report(out)
    write_outputs(args, [out], None)
    ok = sum(r["requests"]["ok"] for r in out["runs"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
