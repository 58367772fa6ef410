#!/usr/bin/env bash
# Run train, encode, encode --shards, decode (features and audio), train-vocoder, stats
# --json and eval --json (minus timings) on the bundled corpus for
# every shipped config, and print the sha256 of every output. Run it on two revisions and
# diff the listings: a refactor that keeps behaviour keeps every line.
#   bash scripts/byte_identity.sh OUT_DIR > sums.txt
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: byte_identity.sh OUT_DIR}
TQ=${TQ:-.venv/bin/tokquant}
# Token files record their input's path, so both runs must read the same feature folder.
FEATURES=${FEATURES:-/tmp/tokquant-byte-identity-features}
PY=${PY:-.venv/bin/python}
AUDIO=scripts/sample_data/audio
rm -rf "$OUT" "$FEATURES"; mkdir -p "$OUT" "$FEATURES"
# Feature files for the feature-only configs: a fixed-seed, slightly correlated 80-dim series.
"$PY" - "$FEATURES" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(0)
for i in range(6):
    x = np.cumsum(rng.standard_normal((300 + 37 * i, 80)), 0) * 0.1
    np.save(f"{sys.argv[1]}/utt{i}.npy", x.astype(np.float32))
PY
run() {  # name config data
  local name=$1 config=$2 data=$3 ck="$OUT/$1.safetensors"
  $TQ train --config "$config" --data "$data" --out "$ck" --steps 12 --batch-frames 1024 -q >/dev/null
  $TQ encode "$ck" "$data" --out "$OUT/$name/tok" -q >/dev/null
  $TQ encode "$ck" "$data" --out "$OUT/$name/corpus" --shards --shard-size 4 -q >/dev/null
  $TQ decode "$ck" "$OUT/$name/tok" --out "$OUT/$name/dec" -q >/dev/null
  $TQ decode "$ck" "$OUT/$name/corpus" --out "$OUT/$name/dec_corpus" -q >/dev/null
  $TQ stats "$ck" "$OUT/$name/tok" --json > "$OUT/$name/stats.json"
}
run logmel-bsq configs/logmel-bsq-16bit.yaml "$AUDIO"
run logmel-rvq configs/logmel-rvq-8x1024.yaml "$AUDIO"
run bsq configs/bsq-16bit.yaml "$FEATURES"
run lfq configs/lfq-14bit.yaml "$FEATURES"
run rvq configs/rvq-8x1024.yaml "$FEATURES"
$TQ encode "$OUT/logmel-rvq.safetensors" "$AUDIO/us_m" --out "$OUT/rvq-beam" --levels 3 --beam 4 -q >/dev/null
$TQ decode "$OUT/logmel-rvq.safetensors" "$OUT/rvq-beam" --out "$OUT/rvq-beam-dec" --levels 2 -q >/dev/null
# Audio: Griffin-Lim and a two-step vocoder, then eval's JSON without its timings.
CK="$OUT/logmel-rvq.safetensors"
$TQ decode "$CK" "$OUT/logmel-rvq/tok" --out "$OUT/logmel-rvq/wav-gl" --audio -q >/dev/null
$TQ train-vocoder "$CK" --data "$AUDIO" --out "$OUT/voc.safetensors" --steps 2 --batch 2 -q >/dev/null
$TQ decode "$CK" "$OUT/logmel-rvq/tok" --out "$OUT/logmel-rvq/wav-voc" --audio \
  --vocoder "$OUT/voc.safetensors" -q >/dev/null
$TQ eval "$CK" "$OUT/logmel-rvq/tok" --audio "$AUDIO" --vocoder "$OUT/voc.safetensors" --json |
  "$PY" -c 'import json, sys
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if "second" not in k and "speed" not in k
                and "time" not in k and "rtf" not in k}
    return [strip(v) for v in x] if isinstance(x, list) else x
json.dump(strip(json.load(sys.stdin)), sys.stdout, indent=1, sort_keys=True)' > "$OUT/eval.json"
# Every output's sha256. A vocoder file records its training's seconds and its own path
# (and a decode record the file's sha256): those are hashed without them.
"$PY" - "$OUT" <<'PY'
import hashlib, json, sys
from pathlib import Path
from safetensors import safe_open
root = Path(sys.argv[1])
for path in sorted(p for p in root.rglob("*") if p.is_file()):
    data = path.read_bytes()
    if path.suffix == ".safetensors" and b"tokquant-vocoder" in data[:4096]:
        with safe_open(str(path), "np") as f:
            meta = dict(f.metadata())
            summary = json.loads(meta.pop("summary"))
            summary.pop("seconds"), summary.pop("vocoder")
            data = json.dumps([meta, summary], sort_keys=True).encode()
            data += b"".join(f.get_tensor(k).tobytes() for k in sorted(f.keys()))
    elif path.name == ".tokquant-decode.json":
        record = json.loads(data)
        record["settings"].pop("decoder", None)
        data = json.dumps(record, sort_keys=True).encode()
    print(hashlib.sha256(data).hexdigest(), "./" + path.relative_to(root).as_posix())
PY
