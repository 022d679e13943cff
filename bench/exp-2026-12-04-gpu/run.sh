#!/bin/bash
# Issue 28 on a lent GPU: two draws (seeds 0, 1) of the `cuda` preset (pairs 6000), step counts fitted to
# $M minutes each (run concurrently), then CoZ on test scenes 0:18 and 0:72. Args: PRESET M DEVICE
PRESET=${1:-cuda}; M=${2:-3}; DEV=${3:-cuda}
OUT=${OUT:-/tmp/gout}; mkdir -p $OUT build
if [ -d .whl ]; then python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1; fi
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 COZ_THREADS=2
PY=${PY:-python3}
{ date -u; nproc; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1;
  $PY -c "import torch,diffusers,transformers,peft,pyiqa;print('torch',torch.__version__,'diffusers',diffusers.__version__,'transformers',transformers.__version__,'peft',peft.__version__)"; } > $OUT/env.txt 2>&1
draw() { s=$1
  $PY -m cozlib train sr --preset $PRESET --minutes $M --set out=build/g$s work=build/g$s-work variants=[perceptual] seed=$s workers=7 pairs=${PAIRS:-6000} device=$DEV > $OUT/train_s$s.log 2>&1 || return
  tar czf $OUT/weights_s$s.tgz -C build g$s
  echo "== scenes 0:18 $(date -u +%T)" > $OUT/eval_s$s.log
  $PY bench/prompt_sensitivity.py --device $DEV --work build/g$s-eval --weights build/g$s --scenes ${S1:-0:18} >> $OUT/eval_s$s.log 2>&1
  echo "== scenes 0:72 $(date -u +%T)" >> $OUT/eval_s$s.log
  $PY bench/prompt_sensitivity.py --device $DEV --work build/g$s-eval --weights build/g$s --scenes ${S2:-0:72} >> $OUT/eval_s$s.log 2>&1
  echo "== end $(date -u +%T)" >> $OUT/eval_s$s.log
}
draw 0 & draw 1 & wait
