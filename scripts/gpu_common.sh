# Shared by the GPU scripts (sourced): environment, packing light results into $OUT, waiting.
set -u
OUT=${OUT:?set OUT to a folder for the packed results}
mkdir -p "$OUT" runs/logs
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# Configs, metrics, summaries, predictions and logs into $OUT/runs.tgz; no weights.
pack() {
  tar czf "$OUT/runs.tgz.tmp" --exclude='*/model' --exclude='*/checkpoints' --exclude='*/adapter' \
      --exclude='*/merged' runs/full runs/sweep runs/logs results/sweep 2>/dev/null
  mv "$OUT/runs.tgz.tmp" "$OUT/runs.tgz"
}

# wait_packing SECONDS PID...: pack every 30 s until every process has exited or SECONDS have passed.
wait_packing() {
  local limit=$1 start=$SECONDS alive p
  shift
  while (( SECONDS - start < limit )); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
    if (( alive == 0 || (SECONDS - start) % 30 < 5 )); then
      echo "[$((SECONDS - start)) s] $alive of $# processes running;" \
           "$(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader)"
      pack
    fi
    (( alive == 0 )) && return 0
    sleep 5
  done
}
