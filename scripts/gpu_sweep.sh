#!/usr/bin/env bash
# Recipe-sweep arms on one GPU, one process per arm side by side (a 135M model at batch 8 leaves
# the card mostly idle), then `benchmarks/gpu_train_speed.py` alone on the card. Light results (no
# weights) are packed into $OUT/runs.tgz every 30 s and at the end, so a run cut short still returns
# what finished; bring them home with `tar xzf runs.tgz` in the repo and `python -m ftlib.experiments.sweep
# --task TASK --table-only`, which adds the arms to the committed table.
#
#   OUT=/some/folder scripts/gpu_sweep.sh SECONDS TASK ARM [ARM ...]
#   SPEED_SECONDS=200 (default) bounds the benchmark afterwards; 0 skips it.
LIMIT=$1 TASK=$2
shift 2
source "$(dirname "$0")/gpu_common.sh"
python3 -c "from ftlib import models, prepare
print(models.resolve('smollm2-135m-instruct'))
prepare.prepare('$TASK')" || exit 1

pids=()
for arm in "$@"; do
  python3 -m ftlib.experiments.sweep --task "$TASK" --arms "$arm" > "runs/logs/sweep_${TASK}_$arm.log" 2>&1 &
  pids+=($!)
done
wait_packing "$LIMIT" "${pids[@]}"
kill "${pids[@]}" 2>/dev/null
tail -n 2 runs/logs/sweep_*.log
if (( ${SPEED_SECONDS:-200} > 0 )); then
  timeout "${SPEED_SECONDS:-200}" python3 benchmarks/gpu_train_speed.py --steps 25 2>&1 \
      | tee runs/logs/gpu_train_speed.log | grep -v -E "it/s\]|s/it\]"
fi
pack
