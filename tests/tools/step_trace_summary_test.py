#!/usr/bin/env python3
"""tools/step_trace_summary.py on synthetic traces: a step far above its kind's
median is listed, with the backend's host/device split when the trace has it,
and a trace without the split (the CPU backend's) is summarized without it.

  python3 step_trace_summary_test.py SOURCE_DIR
"""
import json
import os
import subprocess
import sys
import tempfile


def write_trace(path, timed):
    lines = [{"origin_steady_us": 1000}]
    t = 0
    for i in range(12):  # decode steps of ~0.75 ms, one of them 3 ms on the device
        run = 3000 if i == 7 else 750
        step = {"step_us": t, "plan_us": 5, "run_us": run, "emit_us": 5, "decodes": 8, "prefill_chunks": 0,
                "prefill_tokens": 0, "cached_tokens": 0, "copies_before": 0, "copies_after": 0, "first_tokens": 0,
                "running": 8, "waiting": 0, "failed": False}
        if timed:
            step["enqueue_us"] = 20
            step["device_us"] = run - 10
        lines.append(step)
        t += run + 20
    with open(path, "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")


def summarize(source, path):
    tool = os.path.join(source, "tools", "step_trace_summary.py")
    done = subprocess.run([sys.executable, tool, path], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        sys.exit(f"step_trace_summary.py failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def main():
    source = sys.argv[1]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        timed, untimed = os.path.join(tmp, "timed.jsonl"), os.path.join(tmp, "untimed.jsonl")
        write_trace(timed, True)
        write_trace(untimed, False)
        out = summarize(source, timed)
        if "run_step: device span" not in out or "run_step: host enqueue" not in out:
            failures.append("timed trace: no host/device distributions\n" + out)
        slow = [line for line in out.splitlines() if "run_step 3.000 ms" in line]
        if len(slow) != 1 or "host enqueue 0.020, device span 2.990" not in slow[0]:
            failures.append("timed trace: the 3 ms step is not listed once with its split\n" + out)
        if sum(1 for line in out.splitlines() if "(median 0.750)" in line) != 1:
            failures.append("timed trace: steps at the median are listed as slow\n" + out)
        out = summarize(source, untimed)
        if "device span" in out or "host enqueue" in out:
            failures.append("untimed trace: a split was printed\n" + out)
        if sum(1 for line in out.splitlines() if "run_step 3.000 ms (median 0.750)" in line) != 1:
            failures.append("untimed trace: the 3 ms step is not listed\n" + out)
    for f in failures:
        print("FAIL:", f)
    if failures:
        sys.exit(1)
    print("step_trace_summary: slow steps listed, with the split only when the trace has it")


if __name__ == "__main__":
    main()
