#!/usr/bin/env bash
# CPU speed of this checkout's generators against the authors' TensorFlow ones, side by side in
# one run: the reference harness ../shared/reference/r2c-gan/timing/side-by-side/tf_vs_torch.sh
# (batch 1, 256x256, THREADS threads each, ROUNDS rounds of alternating TF and torch processes,
# median of CALLS calls) run on this checkout with its own .venv; prints TF ms, torch ms and
# torch/TF per variant. Time only on a quiet machine (nothing else running: under load torch
# slows more than TF and the ratio means nothing); the script prints the load before and after.
#
#   benchmarks/side_by_side.sh            the timing (about 3-4 minutes on 2 cores)
#   benchmarks/side_by_side.sh --setup    create the TF venv first (pip; needs the registry)
#
# The TF side needs a venv at $TF_VENV (default ~/.cache/r2c-tf-venv): Python 3.11,
# tensorflow-cpu 2.15, tensorflow-addons 0.23, numpy<2, and the authors' unmodified module.py
# and layers.py (github.com/meteahishali/R2C-GAN at commit 4ed0e29) in $TF_VENV/r2c-gan-src/.
# Their code stays out of this repository. Environment passed through: TF_VENV, ROUNDS (3),
# CALLS (10), THREADS (2), OUT=FILE (keep the raw JSON lines), R2C_SIDE_BY_SIDE (the harness
# folder).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
harness=${R2C_SIDE_BY_SIDE:-$root/../shared/reference/r2c-gan/timing/side-by-side}
export TF_VENV=${TF_VENV:-$HOME/.cache/r2c-tf-venv}
export PROJECT_PY=${PROJECT_PY:-$root/.venv/bin/python} PROJECT=$root
[ -f "$harness/tf_vs_torch.sh" ] || { echo "no reference harness at $harness"; exit 1; }

if [ "${1:-}" = --setup ]; then
  [ -x "$TF_VENV/bin/python" ] || python3.11 -m venv "$TF_VENV"
  "$TF_VENV/bin/pip" install -q 'tensorflow-cpu==2.15.*' tensorflow-addons==0.23.0 'numpy<2'
  mkdir -p "$TF_VENV/r2c-gan-src"
  for f in module.py layers.py; do
    [ -f "$TF_VENV/r2c-gan-src/$f" ] || echo "put the authors' $f (R2C-GAN commit 4ed0e29) in $TF_VENV/r2c-gan-src/"
  done
  shift
fi
exec bash "$harness/tf_vs_torch.sh" "$@"
