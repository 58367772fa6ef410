#!/usr/bin/env bash
# The main job end to end on the bundled sample corpus (30 utterances, 5 espeak-ng voices,
# 16 kHz FLAC): set up, train a BSQ and an RVQ tokenizer on log-mels, encode the audio,
# decode back to wav (Griffin-Lim), report codebook usage and reconstruction, train a
# vocoder for the RVQ tokens (2,000 steps: a third of the recipe) and decode and score
# them through it, and export the RVQ tokens as a Parquet dataset an LM trainer loads
# (MusicGen delay pattern).
# Outputs land in runs/demo/. About 7 minutes on 2 CPU cores after the install.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
TQ=.venv/bin/tokquant
AUDIO=scripts/sample_data/audio
OUT=runs/demo
mkdir -p "$OUT"
for name in logmel-bsq-16bit logmel-rvq-8x1024; do
  echo "== $name"
  steps=600; [ "$name" = logmel-rvq-8x1024 ] && steps=200
  $TQ train --config "configs/$name.yaml" --data "$AUDIO" --out "$OUT/$name.safetensors" \
    --steps "$steps" --batch-frames 2048 --overwrite
  $TQ encode "$OUT/$name.safetensors" "$AUDIO" --out "$OUT/$name/tokens" --overwrite
  $TQ decode "$OUT/$name.safetensors" "$OUT/$name/tokens" --out "$OUT/$name/wav" --audio --overwrite
  $TQ stats "$OUT/$name.safetensors" "$OUT/$name/tokens" --features "$AUDIO" --top 3
done
$TQ info "$OUT/logmel-bsq-16bit/tokens/us_m/utt00.tokens.safetensors"
echo "== vocoder: RVQ tokens -> audio"
RVQ=$OUT/logmel-rvq-8x1024
$TQ train-vocoder "$RVQ.safetensors" --data "$AUDIO" --out "$RVQ.vocoder.safetensors" --steps 2000 --overwrite
$TQ decode "$RVQ.safetensors" "$RVQ/tokens" --out "$RVQ/wav-vocoder" --audio \
  --vocoder "$RVQ.vocoder.safetensors" --overwrite
$TQ eval "$RVQ.safetensors" "$RVQ/tokens" --audio "$AUDIO" --vocoder "$RVQ.vocoder.safetensors"
echo "== compare: RVQ with its vocoder, BSQ with Griffin-Lim; the listening page"
$TQ compare "$RVQ.safetensors" "$OUT/logmel-bsq-16bit.safetensors" \
  --vocoder "$RVQ.vocoder.safetensors" --vocoder default \
  --audio "$AUDIO/us_m/utt00.flac" --audio "$AUDIO/gb_f/utt01.flac" \
  --out "$OUT/compare" --html --overwrite
echo "== export"
$TQ encode "$OUT/logmel-rvq-8x1024.safetensors" "$AUDIO" --out "$OUT/corpus" --shards --overwrite
$TQ export "$OUT/corpus" --to parquet --out "$OUT/parquet" --layout delay --offsets --overwrite
echo "listen: $OUT/*/wav/us_m/utt00.wav (Griffin-Lim), $RVQ/wav-vocoder/us_m/utt00.wav"
echo "listening page: $OUT/compare/index.html (open it in a browser; it needs no network)"
