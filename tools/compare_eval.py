#!/usr/bin/env python3
"""Compares two `tnl-eval --json` outputs (e.g. --device cuda against --device cpu):
same tokens, per-token log-prob differences, perplexities. Exit 1 past the tolerance
(default: model-spec §6's bf16 bound, relative norm error of the log-probs ≤ 1e-2)."""
import argparse
import json
import math
import sys


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("candidate")
    p.add_argument("reference")
    p.add_argument("--tolerance", type=float, default=1e-2)
    a = p.parse_args()
    cand, ref = (json.load(open(f)) for f in (a.candidate, a.reference))
    if cand["tokens"] != ref["tokens"]:
        print("token ids differ")
        return 1
    x, y = cand["logprobs"], ref["logprobs"]
    diff = [u - v for u, v in zip(x, y)]
    rel = math.sqrt(sum(d * d for d in diff)) / math.sqrt(sum(v * v for v in y))
    # A random model's perplexity overflows to inf (null in JSON); the log-probs still compare.
    ppl = [float("inf") if d["perplexity"] is None else d["perplexity"] for d in (cand, ref)]
    ppl_rel = abs(ppl[0] - ppl[1]) / ppl[1] if math.isfinite(ppl[1]) else float("nan")
    print(f"tokens {len(cand['tokens'])}  logprob rel-norm err {rel:.3e}  max |diff| {max(map(abs, diff)):.3e}  "
          f"ppl {ppl[0]:.4f} vs {ppl[1]:.4f} (rel {ppl_rel:.2e})  nan {any(map(math.isnan, x))}")
    return 0 if rel <= a.tolerance and not any(map(math.isnan, x)) else 1


if __name__ == "__main__":
    sys.exit(main())
