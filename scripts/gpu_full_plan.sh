#!/usr/bin/env bash
# The `full` plan and the recipe sweep on one GPU, in one go (how the GPU figures of docs/results.md
# were made). A 135M model leaves a large GPU mostly idle at batch 8, so the three tasks of the plan
# and the sweep's arms run side by side, one process each. Light results (configs, metrics,
# summaries, predictions; no weights) are packed into $OUT/runs.tgz every 30 s and at the end, so
# a run cut short still returns what finished.
#
#   OUT=/some/folder scripts/gpu_full_plan.sh [seconds]     (default 540: stop waiting after that)
LIMIT=${1:-540}
source "$(dirname "$0")/gpu_common.sh"
python3 -c "from ftlib import models, prepare
print(models.resolve('smollm2-135m-instruct'))
for t in ('viggo', 'sql', 'gsm8k'):
    prepare.prepare(t)" || exit 1

pids=()
for task in gsm8k viggo sql; do
  python3 -m ftlib.reproduce --preset full --compute "$task" > "runs/logs/full_$task.log" 2>&1 &
  pids+=($!)
done
python3 -m ftlib.experiments.sweep --task viggo --arms full-0.0002-1600x2 full-0.0001-1600x2 full-0.0004-1600x2 \
    > runs/logs/sweep_viggo_a.log 2>&1 &
pids+=($!)
python3 -m ftlib.experiments.sweep --task viggo --arms full-0.0002-800x4 full-0.0002-3200x1 lora-0.001-1600x2 \
    > runs/logs/sweep_viggo_b.log 2>&1 &
pids+=($!)
wait_packing "$LIMIT" "${pids[@]}"
for task in viggo; do python3 -m ftlib.experiments.sweep --task "$task" --table-only > "runs/logs/sweep_table_$task.log" 2>&1; done
pack
tail -n 3 runs/logs/*.log
