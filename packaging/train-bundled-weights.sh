#!/usr/bin/env bash
# Reproduces the bundled weights in resources/models: trains the five R2C-GAN variants and the lung
# segmenter on ../shared/data with the project's own code. Runs are resumable: run this again after an
# interruption and every run continues from its last checkpoint. The GAN variants are trained round-robin
# in chunks so that all of them progress even if the machine is needed back early.
#   usage: packaging/train-bundled-weights.sh [RUNS_DIR] [THREADS] [VARIANT...]
# With variant ids given, only those are trained (so two processes can share the work on two cores).
# The lung segmenter: r2c-review train-seg --data ../shared/data/lung_masks --run RUNS_DIR/lung-seg --epochs 80
# Then install everything with: r2c-review publish --runs RUNS_DIR --labeled ../shared/data/cxr_labeled \
#   --masks ../shared/data/lung_masks --out resources/models
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs}
THREADS=${2:-1}
shift $(( $# > 2 ? 2 : $# ))
ONLY="$*"
DATA=../shared/data
R2C=${R2C:-.venv/bin/r2c-review}

# variant  arch  q  epochs  decay_epoch  steps_per_chunk  [extra train options]
# (one chunk is roughly 30-40 CPU minutes; Q=5 trains against Q=3 discriminators, see GanConfig.disc_q)
PLAN="r2c-q1 operational 1 30 15 1500
r2c-cnn-light convolutional-light - 30 15 1800
r2c-q3 operational 3 15 8 600
r2c-q5 operational 5 8 4 300 --disc-q 3
r2c-cnn convolutional - 4 2 250"

gan_done() { # run_dir epochs: true when the newest checkpoint has reached the end of the schedule
  [ -f "$1/domains.json" ] || return 1
  "${PY:-.venv/bin/python}" - "$1" "$2" <<'PYEOF'
import json, sys
from pathlib import Path
run, epochs = Path(sys.argv[1]), int(sys.argv[2])
plan = json.loads((run / "domains.json").read_text())
per_epoch = max(len(plan["train_poor"]) + len(plan["train_degraded"]), len(plan["train_clean"]))
ckpts = sorted((run / "checkpoints").glob("ckpt-*"))
step = json.loads((ckpts[-1] / "state.json").read_text())["step"] if ckpts else 0
sys.exit(0 if step >= epochs * per_epoch else 1)
PYEOF
}

while :; do
  pending=0
  while read -r vid arch q epochs decay chunk extra; do
    if [ -n "$ONLY" ] && [[ " $ONLY " != *" $vid "* ]]; then continue; fi
    run="$RUNS/$vid"
    qarg=(); [ "$q" != "-" ] && qarg=(--q "$q")
    if gan_done "$run" "$epochs"; then continue; fi
    pending=1
    nice -n 10 "$R2C" train --arch "$arch" "${qarg[@]}" --data "$DATA/cxr_labeled" --run "$run" \
      --epochs "$epochs" --decay-epoch "$decay" --max-steps "$chunk" --threads "$THREADS" \
      --checkpoint-every 100 --sample-every 500 ${extra:+$extra}
  done <<< "$PLAN"
  [ "$pending" = 0 ] && break
done
echo "all GAN runs finished"
