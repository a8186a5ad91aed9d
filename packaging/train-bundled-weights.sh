#!/usr/bin/env bash
# Reproduces the bundled generator weights in resources/models with the bundled recipe
# (r2c-review train --recipe tone, then --recipe paired; see resources/models/MODEL_CARD.md), and
# prints the command that installs and evaluates them. Runs are resumable: run this again after an interruption and every run continues
# from its last checkpoint (outside the repository, in RUNS_DIR).
#   usage: packaging/train-bundled-weights.sh [RUNS_DIR] [MINUTES]
# MINUTES (default 100) is the wall-clock budget of this invocation; every run stops at it with a
# checkpoint. Two lanes, one per core: the deep CNN alone on CPU 0, the five others on CPU 1, the
# slower ones given more CPU share (nice). The R2C-GAN variants start from the CycleGAN-trained
# weights that were bundled before this recipe (git commit 08f287d), as the shipped ones did.
# The lung segmenter (one core each, about an hour per fold): the two leave-one-source-out folds
# that measure the current train-seg recipe on a source never trained on (their figures go into
# EVALUATION.md through publish --seg-loso):
#   r2c-review train-seg --data ../shared/data/lung_masks --run RUNS_DIR/loso-SOURCE --leave-out SOURCE \
#     --epochs 40 --batch-size 8 --size 256 --lr 1e-3 --threads 1      (SOURCE: shenzhen, gbcovid)
# A fine-tune of the shipped 320-px model with that recipe (about 35 minutes on one core) was tried on
# 2026-12-03 with --opacity-share 0.4 and did not ship (V7 COVID-19 films 0.927 -> 0.920; see the model card):
#   r2c-review train-seg --data ../shared/data/lung_masks --run RUNS_DIR/lung-seg --init-from OLD_320 \
#     --epochs 12 --batch-size 8 --size 320 --lr 3e-4 --threads 1
# A fine-tune with the heart-including outlines on their own channel (49 minutes on one core) was tried
# the same day and did not ship (it kept drawing the heart in on COVID-19 films; see the model card):
#   r2c-review train-seg --data ../shared/data/lung_masks --run RUNS_DIR/lung-seg-conv --init-from OLD_320 \
#     --epochs 10 --size 320 --lr 3e-4 --heart-including gbcovid,v7covid --threads 1
# The candidate to replace the shipped segmenter (from scratch, about 2.8 h on one core, then a
# 320-px fine-tune with --init-from; started 2026-12-03, not finished, not shipped):
#   r2c-review train-seg --data ../shared/data/lung_masks --run RUNS_DIR/lung-seg-conv-256 --epochs 60 \
#     --size 256 --exclude "" --heart-including gbcovid,v7covid --threads 1
# Folds trained before 2026-12-03 get today's figures (precision, recall, agreed-region Dice) with
#   r2c-review train-seg --data ../shared/data/lung_masks --run RUNS_DIR/loso-SOURCE --remeasure
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs}
MINUTES=${2:-100}
DATA=../shared/data
R2C=${R2C:-.venv/bin/r2c-review}
INIT="$RUNS/init"
mkdir -p "$INIT"
for vid in r2c-cnn r2c-cnn-light r2c-q1 r2c-q3 r2c-q5; do
  [ -f "$INIT/$vid.safetensors" ] || {
    git show "08f287d:resources/models/$vid.safetensors" > "$INIT/$vid.safetensors"
    git show "08f287d:resources/models/$vid.json" > "$INIT/$vid.json"
  }
done

# stage 0: the global tone curve shared by all variants (minutes; continued when it exists).
# The shipped curve is these two L1 runs. `--tone-loss psnr` (each film's PSNR) raised the gain on the
# test split (+1.33 -> +1.74..+1.96 dB from the curve alone) but kept clean films of the unseen
# external source worse (1 to 3 dB lower; one film 12 dB): it did not ship.
if [ ! -f "$RUNS/tone/model/tone-curve.json" ]; then
  "$R2C" train --recipe tone --data "$DATA/cxr_labeled" --extra "$DATA/cxr_nih" --run "$RUNS/tone" --steps 1500 --seed 0
  "$R2C" train --recipe tone --data "$DATA/cxr_labeled" --extra "$DATA/cxr_nih" --run "$RUNS/tone" --steps 3000 --seed 1
fi

common=(--recipe paired --data "$DATA/cxr_labeled" --extra "$DATA/cxr_nih" --threads 1
        --checkpoint-every 100 --lr 3e-4 --max-minutes "$MINUTES")
lane() { # cpu nice run-name train-options...
  local cpu=$1 nice=$2 name=$3; shift 3
  taskset -c "$cpu" nice -n "$nice" "$R2C" train "${common[@]}" --run "$RUNS/$name" "$@" > "$RUNS/$name.log" 2>&1 &
}
lane 0 0 r2c-cnn --arch convolutional --steps 2100 --init-from "$INIT/r2c-cnn.safetensors"
lane 1 0 r2c-q5 --arch operational --q 5 --steps 1450 --init-from "$INIT/r2c-q5.safetensors"
lane 1 2 r2c-q3 --arch operational --q 3 --steps 1550 --init-from "$INIT/r2c-q3.safetensors"
lane 1 4 r2c-cnn-light --arch convolutional-light --steps 2600 --init-from "$INIT/r2c-cnn-light.safetensors"
lane 1 4 r2c-q1 --arch operational --q 1 --steps 2400 --init-from "$INIT/r2c-q1.safetensors"
lane 1 4 task-gan --arch task-unet --steps 2500
wait
echo "runs stopped (finished or out of time); refit and measure the COVID-19 heads (leave-one-source-out):"
echo "  $R2C train-heads --runs $RUNS --labeled $DATA/cxr_labeled --extra $DATA/cxr_nih --extra $DATA/cxr_covid_extra"
echo "then install and evaluate with:"
echo "  $R2C publish --runs $RUNS --labeled $DATA/cxr_labeled --masks $DATA/lung_masks \\"
echo "    --validation $DATA/cxr_nih --external $DATA/cxr_covid_extra --out resources/models \\"
echo "    --seg-loso $RUNS/loso-shenzhen --seg-loso $RUNS/loso-gbcovid"
