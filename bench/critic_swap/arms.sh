cd "$(git rev-parse --show-toplevel)"
# arm A first: python -m cozlib train sr --set out=build/exp/a1-perc work=build/exp/a1-work variants=[perceptual] seed=1
# and seed 2's critic: python bench/critic_swap/critic_only.py 2 build/exp/c2-work
export COZ_THREADS=2 HF_HUB_OFFLINE=1
date
.venv/bin/python bench/prompt_sensitivity.py --work build/exp/a1-eval --weights build/exp/a1-perc --scenes 0:72 > build/exp/ps_a1_72.log 2>&1
echo EVAL_A_EXIT $?
date
mkdir -p build/exp/b1c2-work/ckpt
cp build/exp/a1-work/pairs-* build/exp/b1c2-work/
cp build/exp/a1-work/ckpt/vae.pt build/exp/a1-work/ckpt/base.pt build/exp/b1c2-work/ckpt/
.venv/bin/python bench/critic_swap/combine.py build/exp/a1-work/ckpt/critic.pt build/exp/c2-work/ckpt/critic.pt build/exp/b1c2-work/ckpt/critic.pt || exit 1
.venv/bin/python -m cozlib train sr --set out=build/exp/b1c2-perc work=build/exp/b1c2-work variants=[perceptual] seed=1 > build/exp/train_b1c2.log 2>&1
echo TRAIN_B_EXIT $?
date
.venv/bin/python bench/prompt_sensitivity.py --work build/exp/b1c2-eval --weights build/exp/b1c2-perc --scenes 0:${B_SCENES:-72} > build/exp/ps_b1c2_72.log 2>&1
echo EVAL_B_EXIT $?
date
