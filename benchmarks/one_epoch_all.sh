#!/usr/bin/env bash
# Every registry model (torch and classical) trains ONE epoch on FER2013 from the CLI, then `ferlab compare`
# builds the table (test accuracy, params, MFLOPs, training seconds = seconds per epoch, inference img/s, latency).
#
#   bash benchmarks/one_epoch_all.sh [DATA] [RUNS] [OUT]
#   defaults: ../shared/data/fer2013.zip  runs/one_epoch  docs/one_epoch     (hours on a 2-core CPU)
#
# Finished runs are skipped (summary.json present), so a stopped job continues where it was. Same recipe for
# every model: Adam 1e-3, standard augmentation, batch 64, seed 0, 10 % validation carve; no time budget.
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
DATA=${1:-../shared/data/fer2013.zip}
RUNS=${2:-runs/one_epoch}
OUT=${3:-docs/one_epoch}
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin}  # the repo's venv, from any directory
mkdir -p "$RUNS"
models=$("$BIN/python" -c "from ferlab.models import list_models; from ferlab.models.classical import list_classical; print(' '.join(list_models() + list_classical()))")
for m in $models; do
  if [ -f "$RUNS/$m/summary.json" ] && grep -q '"finished": true' "$RUNS/$m/summary.json"; then
    echo "== $m: finished, skipped"; continue
  fi
  extra=()
  [ "$m" = mini_xception ] && extra=(--set channels_last=false)  # its channels_last backward segfaults on this CPU (torch 2.14.1)
  if [ -f "$RUNS/$m/last.pt" ]; then
    echo "== $m: resuming"; "$BIN/ferlab" train --resume "$RUNS/$m" --epochs 1 --no-progress || echo "== $m: FAILED"
  else
    rm -rf "$RUNS/$m"
    echo "== $m: training 1 epoch"
    "$BIN/ferlab" train --model "$m" --data "$DATA" --epochs 1 --out "$RUNS/$m" --optimizer adam --lr 0.001 \
      --schedule cosine --augment standard --batch-size 64 --seed 0 --no-progress "${extra[@]}" || echo "== $m: FAILED"
  fi
done
"$BIN/ferlab" compare "$RUNS"/* --data "$DATA" --out "$OUT"
# the per-run evaluation reports (~1 MB each) stay with the runs, out of git
rm -rf "$RUNS/_evals" && mv "$OUT/evals" "$RUNS/_evals"
