#!/usr/bin/env bash
# The main job end to end on the bundled sample corpus (24 utterances, 4 voices, 80-dim
# log-mels): set up, train a BSQ and an RVQ tokenizer, encode, decode, report stats.
# Outputs land in runs/demo/. Takes a few minutes on 2 CPU cores after the install.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
TQ=.venv/bin/tokquant
DATA=scripts/sample_data/features
OUT=runs/demo
mkdir -p "$OUT"
for family in bsq-16bit rvq-8x1024; do
  echo "== $family"
  steps=400; [ "$family" = rvq-8x1024 ] && steps=200
  $TQ train --config "configs/$family.yaml" --data "$DATA" --out "$OUT/$family.safetensors" \
    --steps "$steps" --batch-frames 2048 --overwrite
  $TQ encode "$OUT/$family.safetensors" "$DATA" --out "$OUT/$family/tokens" --overwrite
  $TQ decode "$OUT/$family.safetensors" "$OUT/$family/tokens" --out "$OUT/$family/decoded" --overwrite
  $TQ stats "$OUT/$family.safetensors" "$OUT/$family/tokens" --features "$DATA" --top 3
done
$TQ info "$OUT/bsq-16bit/tokens/en-us_m/utt00.tokens.safetensors"
