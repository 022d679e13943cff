set -x
cd /work/main
export HF_HUB_OFFLINE=1 COZ_THREADS=2
date -u
.venv/bin/python build/pa/run_pa.py --work build/pa/uniform --weights data/weights/osediff-demo --scenes 0:18
date -u
COZ_PHASE=binomial .venv/bin/python build/pa/run_pa.py --work build/pa/binomial --weights data/weights/osediff-demo --scenes 0:18
date -u
