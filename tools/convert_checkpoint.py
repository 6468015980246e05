#!/usr/bin/env python3
"""Converts the authors' TransNormerLLM PyTorch checkpoint to safetensors.

The released checkpoints ship pytorch_model.bin (a pickle), or shards
pytorch_model-0000i-of-0000n.bin listed in pytorch_model.bin.index.json. The
engine reads model.safetensors, or shards model-0000i-of-0000n.safetensors
listed in model.safetensors.index.json (model-spec section 1). This script
keeps every tensor's name and dtype, drops non-tensor entries, writes one
safetensors file per input file, and copies config.json and the tokenizer files.

    python3 tools/convert_checkpoint.py IN_DIR [--out OUT_DIR]
    python3 tools/convert_checkpoint.py --self-test

Needs the torch and safetensors packages.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile

# Copied verbatim next to the weights when present.
SIDE_FILES = ["config.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
              "generation_config.json"]
# dtypes the engine loads (engine/checkpoint/dtype.h); others are kept but warned about.
ENGINE_DTYPES = {"torch.float32", "torch.bfloat16", "torch.float16"}


def load_pickle(path, unsafe):
    import torch
    # weights_only refuses arbitrary pickled objects (code execution on load); the
    # authors' files are plain dicts of tensors, so it suffices unless told otherwise.
    if unsafe:
        return torch.load(path, map_location="cpu", weights_only=False)
    return torch.load(path, map_location="cpu", weights_only=True)


def input_files(in_dir):
    """The .bin files to convert, in order, and for each the safetensors name to write."""
    index_path = os.path.join(in_dir, "pytorch_model.bin.index.json")
    single = os.path.join(in_dir, "pytorch_model.bin")
    if os.path.exists(single):
        return [("pytorch_model.bin", "model.safetensors")]
    if not os.path.exists(index_path):
        sys.exit(f"{in_dir}: neither pytorch_model.bin nor pytorch_model.bin.index.json")
    with open(index_path) as f:
        weight_map = json.load(f).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        sys.exit(f"{index_path}: no weight_map")
    shards = sorted(set(weight_map.values()))
    out = []
    for shard in shards:
        m = re.fullmatch(r"pytorch_model-(\d+)-of-(\d+)\.bin", shard)
        name = f"model-{m.group(1)}-of-{m.group(2)}.safetensors" if m else re.sub(r"\.bin$", "", shard) + ".safetensors"
        out.append((shard, name))
    return out


def tensors_only(state, source):
    """Drops non-tensor entries; returns contiguous tensors that share no storage
    (safetensors refuses aliases, e.g. a tied lm_head that is the embedding)."""
    import torch
    tensors, seen = {}, set()
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            print(f"{source}: dropping non-tensor entry {name!r} ({type(value).__name__})")
            continue
        if str(value.dtype) not in ENGINE_DTYPES:
            print(f"{source}: warning: {name} has dtype {value.dtype}, which the engine does not load")
        t = value.detach().contiguous()
        storage = t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()  # torch < 2.0
        ptr = storage.data_ptr() if t.numel() else None
        if ptr is not None and ptr in seen:
            t = t.clone()
        elif ptr is not None:
            seen.add(ptr)
        tensors[name] = t
    return tensors


def convert(in_dir, out_dir, unsafe_pickle=False):
    from safetensors.torch import save_file
    os.makedirs(out_dir, exist_ok=True)
    files = input_files(in_dir)
    weight_map, total_size = {}, 0
    for bin_name, st_name in files:
        source = os.path.join(in_dir, bin_name)
        state = load_pickle(source, unsafe_pickle)
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            sys.exit(f"{source}: expected a dict of tensors, got {type(state).__name__}")
        tensors = tensors_only(state, source)
        for name, t in tensors.items():
            if name in weight_map:
                sys.exit(f"{source}: tensor {name} also appears in {weight_map[name]}")
            weight_map[name] = st_name
            total_size += t.numel() * t.element_size()
        save_file(tensors, os.path.join(out_dir, st_name), metadata={"format": "pt"})
        print(f"{source} -> {os.path.join(out_dir, st_name)}: {len(tensors)} tensors")
        del state, tensors
    if len(files) > 1:
        index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=2)
            f.write("\n")
    if os.path.abspath(in_dir) != os.path.abspath(out_dir):
        for side in SIDE_FILES:
            if os.path.exists(os.path.join(in_dir, side)):
                shutil.copyfile(os.path.join(in_dir, side), os.path.join(out_dir, side))
    return weight_map


def fake_state_dict(V=16, d=8, L=2, H=2, D=8, G=12, lrpe=(1, 0), tied=True):
    """A tiny state dict with the names and shapes of model-spec section 3."""
    import torch
    g = torch.Generator().manual_seed(0)
    rand = lambda *shape, dtype=torch.float32: torch.randn(*shape, generator=g).to(dtype)
    sd = {"model.embed_tokens.weight": rand(V, d)}
    for i in range(L):
        p = f"model.layers.{i}."
        sd[p + "token_mixer.qkvu_proj.weight"] = rand(4 * D, d, dtype=torch.bfloat16)
        sd[p + "token_mixer.out_proj.weight"] = rand(d, D, dtype=torch.float16)
        if lrpe[i]:
            sd[p + "token_mixer.lrpe.theta"] = (10000 ** (-2 / D * torch.arange(D))).reshape(H, 1, -1)
        sd[p + "channel_mixer.l1.weight"] = rand(G, d)
        sd[p + "channel_mixer.l2.weight"] = rand(G, d)
        sd[p + "channel_mixer.l3.weight"] = rand(d, G)
    # HF state dicts of tied models alias lm_head to the embedding.
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"] if tied else rand(V, d)
    return sd


def self_test():
    import torch
    from safetensors.torch import load_file
    config = {"model_type": "transnormer", "vocab_size": 16, "decoder_embed_dim": 8, "decoder_layers": 2,
              "decoder_attention_heads": 2, "hidden_dim": 8, "glu_dim": 12, "linear_use_lrpe_list": [1, 0]}
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAIL:", what)

    with tempfile.TemporaryDirectory() as tmp:
        # 1. One pytorch_model.bin with a non-tensor entry and an aliased lm_head.
        sd = fake_state_dict()
        src, out = os.path.join(tmp, "single"), os.path.join(tmp, "single-out")
        os.makedirs(src)
        torch.save({**sd, "step": 1000}, os.path.join(src, "pytorch_model.bin"))
        with open(os.path.join(src, "config.json"), "w") as f:
            json.dump(config, f)
        with open(os.path.join(src, "tokenizer.model"), "wb") as f:
            f.write(b"not really a tokenizer")
        convert(src, out)
        back = load_file(os.path.join(out, "model.safetensors"))
        check(set(back) == set(sd), "single: same tensor names, non-tensor entry dropped")
        for name, t in sd.items():
            check(name in back and back[name].dtype == t.dtype, f"single: {name} keeps dtype {t.dtype}")
            check(name in back and torch.equal(back[name], t), f"single: {name} keeps its values")
        check(os.path.exists(os.path.join(out, "config.json")), "single: config.json copied")
        check(os.path.exists(os.path.join(out, "tokenizer.model")), "single: tokenizer.model copied")
        check(not os.path.exists(os.path.join(out, "model.safetensors.index.json")), "single: no index")

        # 2. Two shards with pytorch_model.bin.index.json, untied.
        sd = fake_state_dict(tied=False)
        src, out = os.path.join(tmp, "sharded"), os.path.join(tmp, "sharded-out")
        os.makedirs(src)
        names = sorted(sd)
        parts = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
                 "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
        weight_map = {}
        for shard, shard_names in parts.items():
            torch.save({n: sd[n] for n in shard_names}, os.path.join(src, shard))
            weight_map.update({n: shard for n in shard_names})
        with open(os.path.join(src, "pytorch_model.bin.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
        with open(os.path.join(src, "config.json"), "w") as f:
            json.dump({**config, "tie_word_embeddings": False}, f)
        convert(src, out)
        with open(os.path.join(out, "model.safetensors.index.json")) as f:
            index = json.load(f)
        check(set(index["weight_map"]) == set(sd), "sharded: index lists every tensor")
        expected_bytes = sum(t.numel() * t.element_size() for t in sd.values())
        check(index["metadata"]["total_size"] == expected_bytes, "sharded: total_size")
        for name, t in sd.items():
            shard = index["weight_map"].get(name, "")
            check(re.fullmatch(r"model-0000[12]-of-00002\.safetensors", shard) is not None,
                  f"sharded: {name} in a renamed shard")
            if shard:
                back = load_file(os.path.join(out, shard))
                check(name in back and torch.equal(back[name], t) and back[name].dtype == t.dtype,
                      f"sharded: {name} keeps dtype and values")
    if failures:
        print(f"self-test: {len(failures)} failures")
        return 1
    print("self-test: OK")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("in_dir", nargs="?", help="directory with pytorch_model.bin or its shards")
    parser.add_argument("--out", help="output directory (default: IN_DIR, next to the .bin files)")
    parser.add_argument("--unsafe-pickle", action="store_true",
                        help="allow arbitrary pickled objects (torch.load weights_only=False); only for trusted files")
    parser.add_argument("--self-test", action="store_true", help="convert tiny fake checkpoints and compare")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if not args.in_dir:
        parser.error("IN_DIR is required (or --self-test)")
    convert(args.in_dir, args.out or args.in_dir, args.unsafe_pickle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
