cd /work/main
export HF_HUB_OFFLINE=1 COZ_THREADS=2 PYTHONPATH=/work/main
for n in "$@"; do
  .venv/bin/python bench/prompt_sensitivity.py --work build/exp/soup/w-$n --weights build/exp/soup/$n --split val --scenes 0:24 > build/exp/soup/$n.log 2>&1
done
