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
# The lung segmenter. The shipped file (2026-12-03): from scratch with the heart-including outlines on
# their own channel (about 1.9 h of CPU at 256 px, two threads for the second half):
#   r2c-review train-seg --data ../shared/data/lung_masks --run RUNS_DIR/lung-seg-conv-256 --epochs 60 \
#     --size 256 --exclude "" --heart-including gbcovid,v7covid --threads 2
# An 8-epoch 320-px fine-tune of it (about 20 min on two threads) drew more of the heart in and did not ship:
#   r2c-review train-seg --data ../shared/data/lung_masks --run RUNS_DIR/lung-seg-conv-320 --epochs 8 \
#     --size 320 --lr 3e-4 --exclude "" --heart-including gbcovid,v7covid --threads 2 \
#     --init-from RUNS_DIR/lung-seg-conv-256/model/lung-unet-densenet121.safetensors
# Its two leave-one-source-out folds, with the shipped file's recipe unchanged (60 epochs each; one core
# each, about 2.7 h and 1 h; their figures go into EVALUATION.md through publish --seg-loso, which
# refuses to ship a fold's own file):
#   r2c-review train-seg --data ../shared/data/lung_masks --run RUNS_DIR/loso-shenzhen --leave-out shenzhen \
#     --epochs 60 --size 256 --exclude "" --heart-including gbcovid,v7covid --threads 1
#   r2c-review train-seg --data ../shared/data/lung_masks --run RUNS_DIR/loso-gbcovid --leave-out gbcovid \
#     --epochs 60 --size 256 --exclude "" --heart-including gbcovid,v7covid --threads 1
# then, to replace only the segmenter:
#   r2c-review publish --segmenter-only --seg-run RUNS_DIR/lung-seg-conv-256 --masks ../shared/data/lung_masks \
#     --seg-loso RUNS_DIR/loso-shenzhen --seg-loso RUNS_DIR/loso-gbcovid --out resources/models
# Tried on 2026-12-03 and not shipped (see the model card): --opacity-share 0.4, and a fine-tune of the
# previous file with --heart-including (it kept drawing the heart in on COVID-19 films).
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
echo "    --seg-run $RUNS/lung-seg-conv-256 --seg-loso $RUNS/loso-shenzhen --seg-loso $RUNS/loso-gbcovid"
