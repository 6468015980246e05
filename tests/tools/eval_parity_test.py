#!/usr/bin/env python3
"""Issue 5's parity check: tnl-eval (CPU) on the committed held-out slice gives the
perplexity PyTorch measured at training time (models/<name>/perplexity.json),
within 1% relative, over the same tokens."""
import json
import math
import subprocess
import sys
from pathlib import Path


def main() -> int:
    tnl_eval, model_dir, source_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    expected = json.loads((model_dir / "perplexity.json").read_text())["heldout_slice"]
    text_file = source_dir / expected["file"]
    run = subprocess.run([tnl_eval, "--model", str(model_dir), "--file", str(text_file), "--json",
                          "--device", "cpu"], capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        print(run.stderr)
        return 1
    got = json.loads(run.stdout)
    assert set(got) == {"tokens", "logprobs", "perplexity"}, got.keys()
    tokens, logprobs = got["tokens"], got["logprobs"]
    assert len(logprobs) == len(tokens) - 1
    assert all(math.isfinite(lp) and lp <= 0.0 for lp in logprobs)
    # The reported perplexity is the one the log-probs imply.
    implied = math.exp(-sum(logprobs) / len(logprobs))
    assert abs(implied - got["perplexity"]) <= 1e-6 * implied, (implied, got["perplexity"])
    assert len(tokens) == expected["tokens"], (len(tokens), expected["tokens"])
    rel = abs(got["perplexity"] - expected["perplexity"]) / expected["perplexity"]
    print(f"tnl-eval perplexity {got['perplexity']:.4f}, PyTorch {expected['perplexity']:.4f}, "
          f"relative difference {rel:.2e} over {len(tokens)} tokens")
    assert rel < 0.01, rel
    return 0


if __name__ == "__main__":
    sys.exit(main())
