"""Train a small TransNormerLLM on the Brown Corpus, export it for the C++ engine, and
measure held-out perplexity exactly as `tnl-eval` does.

Perplexity protocol (the engine's): tokens = [BOS] + encode(whole file text) as ONE
sequence, no EOS; perplexity = exp(mean_i -log p(tokens[i+1] | tokens[..i])). It is
computed in fp32 on the EXPORTED weights (bf16-rounded, then cast to fp32), so the
engine reading the exported file should land within rounding of our number.

Run on the GPU box, from tools/train:
  python3 train.py --data ../../data/brown --tokenizer ../../models/X/tokenizer.model --out DIR
"""
import argparse
import copy
import csv
import json
import math
import os
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from model import Config, TransNormer

BOS = 1


def read_docs(path):
    """Brown text files: one document per block, documents separated by one blank line."""
    text = open(path, encoding="utf-8").read()
    docs = [d.strip("\n") + "\n" for d in text.split("\n\n")]
    assert "\n".join(docs) == text, "unexpected document layout in " + path
    return docs


def encode_file_like(sp, text):
    """What tnl-eval feeds the model for a file: [BOS] + encode(text), one sequence."""
    return [BOS] + sp.encode(text)


# ---------------------------------------------------------------- evaluation

@torch.no_grad()
def sequence_nll(model, tokens, device, seg=2048, block=64):
    """Sum of -log p over one long sequence, in fp32, in segments that carry the state.
    Returns (nll per predicted position as a numpy array)."""
    model.eval()
    toks = torch.tensor(tokens, device=device)[None]
    n = toks.shape[1] - 1                 # positions that have a next token
    states, out = None, []
    for p in range(0, n, seg):
        x = toks[:, p:min(p + seg, n)]
        y = toks[:, p + 1:p + 1 + x.shape[1]]
        logits, states = model(x, states, offset=p, mode="blocked", block=block)
        nll = -torch.log_softmax(logits.float(), -1).gather(-1, y[..., None])[0, :, 0]
        out.append(nll.double().cpu())
    return torch.cat(out).numpy()


def ppl_report(nll):
    """Perplexity plus perplexity by position, to see how the model does far from the start."""
    rep = {"predictions": int(len(nll)), "perplexity": float(np.exp(nll.mean()))}
    edges = [0, 512, 2048, 8192, 32768, 1 << 30]
    buckets = {}
    for lo, hi in zip(edges[:-1], edges[1:]):
        part = nll[lo:hi]
        if len(part):
            buckets[f"{lo}-{min(hi, len(nll))}"] = round(float(np.exp(part.mean())), 3)
    rep["by_position"] = buckets
    return rep


def exported_state(model):
    """The bf16 tensors we ship (decay rates are derived from config, not stored)."""
    return {k: v.detach().to(torch.bfloat16).contiguous().cpu() for k, v in model.state_dict().items()}


def model_from_state(cfg, state, device):
    """fp32 model holding exactly the exported (bf16-rounded) weights, dropout off."""
    m = TransNormer(Config(**{**cfg.__dict__, "dropout": 0.0}))
    m.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return m.to(device).eval()


def save_weights(state, out, max_bytes=15 * 2 ** 20):
    """model.safetensors, or HF-style shards + index when over max_bytes (the device
    returns files of at most 16 MiB)."""
    total = sum(t.numel() * t.element_size() for t in state.values())
    meta = {"format": "pt"}
    if total <= max_bytes:
        save_file(state, os.path.join(out, "model.safetensors"), metadata=meta)
        return ["model.safetensors"]
    groups, size = [[]], 0
    for name, t in state.items():              # keeps layer order: embed, layer 0, 1, ...
        nbytes = t.numel() * t.element_size()
        if groups[-1] and size + nbytes > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(name)
        size += nbytes
    files, weight_map = [], {}
    for i, names in enumerate(groups):
        fname = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        save_file({n: state[n] for n in names}, os.path.join(out, fname), metadata=meta)
        weight_map.update({n: fname for n in names})
        files.append(fname)
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    return files + ["model.safetensors.index.json"]


@torch.no_grad()
def generate(model, sp, prompt, device, n_new=60, temperature=0.0, seed=0):
    """Prefill the prompt (blocked form), then decode token by token (recurrent form)."""
    g = torch.Generator(device=device).manual_seed(seed)
    toks = encode_file_like(sp, prompt)
    logits, states = model(torch.tensor([toks], device=device), mode="blocked")
    last, out = logits[0, -1], []
    for i in range(n_new):
        if temperature == 0:
            nxt = int(last.argmax())
        else:
            nxt = int(torch.multinomial(torch.softmax(last / temperature, -1), 1, generator=g))
        if nxt == 2:                           # EOS
            break
        out.append(nxt)
        logits, states = model(torch.tensor([[nxt]], device=device), states,
                               offset=len(toks) + i, mode="recurrent")
        last = logits[0, -1]
    return sp.decode(out)


# ---------------------------------------------------------------- training

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../../data/brown")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--slice", default="../../tests/data/heldout_slice.txt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--glu", type=int, default=896)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min_lr_frac", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--steps", type=int, default=0, help="cosine over this many steps (0: over --time_budget)")
    ap.add_argument("--time_budget", type=float, default=300, help="seconds of training (hard stop)")
    ap.add_argument("--eval_every", type=int, default=250)
    ap.add_argument("--val_every_nth_doc", type=int, default=48, help="train docs kept out for validation")
    ap.add_argument("--doc_start_frac", type=float, default=0.25, help="windows that start at [BOS]+document")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--no_export", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    dev = "cuda"
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    # fp32 evaluation must be real fp32 (no TF32) to match a C++ fp32 reference.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    t0 = time.time()
    sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
    nl = sp.piece_to_id("<0x0A>")
    docs = read_docs(os.path.join(args.data, "train.txt"))
    val_idx = set(range(args.val_every_nth_doc // 2, len(docs), args.val_every_nth_doc))
    train_text = "\n".join(d for i, d in enumerate(docs) if i not in val_idx)
    val_text = "\n".join(d for i, d in enumerate(docs) if i in val_idx)
    test_text = open(os.path.join(args.data, "test.txt"), encoding="utf-8").read()
    slice_text = open(args.slice, encoding="utf-8").read()
    # Training sees the same token stream format as evaluation: one [BOS] + encode(text).
    stream = np.array(encode_file_like(sp, train_text), dtype=np.int64)
    val_tok = encode_file_like(sp, val_text)
    test_tok = encode_file_like(sp, test_text)
    slice_tok = encode_file_like(sp, slice_text)
    # Document starts: the token after a blank line ("\n\n" are two byte tokens <0x0A>).
    starts = np.nonzero((stream[:-2] == nl) & (stream[1:-1] == nl))[0] + 2
    starts = np.concatenate([[1], starts])
    starts = starts[starts + args.seq < len(stream)]
    print(f"tokenized in {time.time() - t0:.1f}s: train {len(stream)} tokens ({len(docs) - len(val_idx)} docs, "
          f"{len(starts)} doc starts), val {len(val_tok)} ({len(val_idx)} docs), test {len(test_tok)}, "
          f"slice {len(slice_tok)}", flush=True)
    stream_gpu = torch.from_numpy(stream).to(dev)

    def batch():
        T, b = args.seq, args.batch
        s = rng.integers(0, len(stream) - T - 1, size=b)
        # Some windows start at a document, with [BOS] in front, like the start of an eval.
        at_doc = rng.random(b) < args.doc_start_frac
        s[at_doc] = rng.choice(starts, size=int(at_doc.sum())) - 1
        idx = torch.from_numpy(s).to(dev)[:, None] + torch.arange(T + 1, device=dev)
        w = stream_gpu[idx]
        w[torch.from_numpy(at_doc).to(dev), 0] = BOS
        return w[:, :-1], w[:, 1:]

    cfg = Config(vocab_size=sp.get_piece_size(), d=args.d, layers=args.layers, heads=args.heads,
                 hidden=args.d, glu=args.glu, lrpe=[1] + [0] * (args.layers - 1), dropout=args.dropout)
    model = TransNormer(cfg).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"config {cfg}  params {n_params}", flush=True)
    # Weight decay on matrices only; LRPE theta is trained (as the authors do) without decay.
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    fwd = torch.compile(model) if args.compile else model

    def lr_at(step, progress):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        p = min(1.0, progress)
        return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))

    curve = open(os.path.join(args.out, "train_curve.csv"), "w", newline="")
    log = csv.writer(curve)
    log.writerow(["step", "epoch", "lr", "train_loss", "val_ppl", "tokens_per_s", "elapsed_s"])
    tokens_per_step = args.batch * args.seq
    best = (float("inf"), None, -1)
    step, t_start, t_last, loss_acc, n_acc = 0, time.time(), time.time(), 0.0, 0
    while True:
        elapsed = time.time() - t_start
        progress = step / args.steps if args.steps else elapsed / args.time_budget
        done = (args.steps and step >= args.steps) or elapsed >= args.time_budget
        if done or (step % args.eval_every == 0 and step > 0):
            torch.cuda.synchronize()
            tps = tokens_per_step * n_acc / max(time.time() - t_last, 1e-9) if n_acc else 0
            val = float(np.exp(sequence_nll(model, val_tok, dev).mean()))
            model.train()
            if val < best[0]:
                best = (val, {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
            mean_loss = float(loss_acc) / max(n_acc, 1)
            log.writerow([step, round(step * tokens_per_step / len(stream), 2), f"{lr_at(step, progress):.3e}",
                          round(mean_loss, 4), round(val, 3), round(tps), round(elapsed, 1)])
            curve.flush()
            print(f"step {step:6d} ep {step * tokens_per_step / len(stream):6.1f} loss {mean_loss:.4f} "
                  f"val_ppl {val:8.3f} tok/s {tps:9.0f} t {elapsed:6.1f}s", flush=True)
            loss_acc, n_acc, t_last = 0.0, 0, time.time()
        if done:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step, progress)
        x, y = batch()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, _ = fwd(x, mode="blocked", block=64)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_acc += loss.detach()
        n_acc += 1
        step += 1
        if step % 100 == 0:
            loss_acc = loss_acc.item() if torch.is_tensor(loss_acc) else loss_acc  # one sync per 100
    train_time = time.time() - t_start
    curve.close()
    print(f"trained {step} steps in {train_time:.1f}s; best val ppl {best[0]:.3f} at step {best[2]}", flush=True)

    # ------------------------------------------------ export + evaluation of what we ship
    model.load_state_dict(best[1])
    state = exported_state(model)
    ev = model_from_state(cfg, state, dev)
    master = copy.deepcopy(model).eval()
    result = {
        "heldout_slice": {"file": "tests/data/heldout_slice.txt", "tokens": len(slice_tok),
                          **ppl_report(sequence_nll(ev, slice_tok, dev))},
        "test_split": {"file": "data/brown/test.txt (tools/data/fetch_brown.sh)", "tokens": len(test_tok),
                       **ppl_report(sequence_nll(ev, test_tok, dev))},
        "eval_dtype": "fp32",
        "weights_dtype": "bf16",
        "protocol": "tokens = [BOS] + encode(whole file) as one sequence, no EOS; "
                    "perplexity = exp(mean over i of -log p(tokens[i+1] | tokens[..i]))",
    }
    extra = {
        "val_ppl_exported": ppl_report(sequence_nll(ev, val_tok, dev))["perplexity"],
        "val_ppl_master_fp32": ppl_report(sequence_nll(master, val_tok, dev))["perplexity"],
        "slice_ppl_master_fp32": ppl_report(sequence_nll(master, slice_tok, dev))["perplexity"],
        "params": n_params, "steps": step, "best_step": best[2], "train_seconds": round(train_time, 1),
        "tokens_seen": step * tokens_per_step, "train_tokens": int(len(stream)),
        "epochs": round(step * tokens_per_step / len(stream), 2), "args": vars(args),
    }
    print(json.dumps(result, indent=1), "\n", json.dumps(extra), flush=True)

    prompts = ["The jury said", "He looked at her and", "In the early days of the war,",
               "The results of the experiment", "\"I don't know,\" she said."]
    samples = []
    for i, p in enumerate(prompts):
        # a different seed per prompt, else similar distributions draw the same tokens
        samples.append({"prompt": p, "greedy": generate(ev, sp, p, dev),
                        f"sampled_t0.8_seed{i}": generate(ev, sp, p, dev, temperature=0.8, seed=i)})
        print(json.dumps(samples[-1]), flush=True)

    if not args.no_export:
        files = save_weights(state, args.out)
        with open(os.path.join(args.out, "config.json"), "w") as f:
            json.dump(cfg.hf_config(), f, indent=1)
        with open(os.path.join(args.out, "perplexity.json"), "w") as f:
            json.dump(result, f, indent=1)
        with open(os.path.join(args.out, "train_summary.json"), "w") as f:
            json.dump({**extra, "samples": samples, "files": files}, f, indent=1)
        # Re-read the saved files and check they give the same slice perplexity.
        from safetensors.torch import load_file
        re = {}
        for fn in files:
            if fn.endswith(".safetensors"):
                re.update(load_file(os.path.join(args.out, fn)))
        again = np.exp(sequence_nll(model_from_state(cfg, re, dev), slice_tok, dev).mean())
        print(f"reloaded export: slice ppl {again:.4f} (expected {result['heldout_slice']['perplexity']:.4f})")
    print(f"total wall {time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
