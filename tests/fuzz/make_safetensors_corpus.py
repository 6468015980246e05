#!/usr/bin/env python3
"""Writes the seed corpus of safetensors_header_fuzz (tiny valid files plus a few
near-misses) into corpus_safetensors/. Run from anywhere; the output is committed.
regression_* files there are inputs the fuzzer once failed on, kept by hand."""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_safetensors")


def safetensors(header, data=b"", pad=True):
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


files = {
    "empty_header": safetensors({}),
    "metadata_only": safetensors({"__metadata__": {"format": "pt"}}),
    "one_f32": safetensors({"w": entry("F32", [2, 2], 0, 16)}, struct.pack("<4f", 1, -2, 0.5, 3)),
    "bf16_f16_scalar": safetensors(
        {"__metadata__": {"format": "pt"},
         "a": entry("BF16", [3], 0, 6), "b": entry("F16", [], 6, 8), "z": entry("F32", [0, 4], 8, 8)},
        bytes(range(8))),
    "unpadded": safetensors({"x": entry("F16", [1, 2], 0, 4)}, b"\x00\x3c\x00\xc0", pad=False),
    "tiny_layer": safetensors(
        {"model.embed_tokens.weight": entry("F32", [4, 2], 0, 32),
         "model.layers.0.token_mixer.lrpe.theta": entry("F32", [2, 1, 1], 32, 40)},
        bytes(40)),
    "overlap": safetensors({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, bytes(12)),
    "outside": safetensors({"a": entry("F32", [4], 0, 16)}, bytes(8)),
    "bad_dtype": safetensors({"a": entry("I8", [4], 0, 4)}, bytes(4)),
    "huge_length": struct.pack("<Q", 1 << 40) + b"{}",
}

os.makedirs(OUT, exist_ok=True)
for name, data in files.items():
    with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
        f.write(data)
