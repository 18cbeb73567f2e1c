#!/usr/bin/env bash
# Measured truth on a GPU, in one go (issue 12): calibrate the card in fp32 and fp16, then time
# every torchvision classifier at batch 1 and 64 against cnnlint's prediction from that profile.
#
#   bash benchmarks/gpu_truth.sh            # from the repository root, on the GPU machine
#
# Needs python3 with torch, torchvision, numpy and scipy; no network. cnnlint and the packages
# the machine may lack (pydantic and its parts, click, rich, pathspec, networkx) are installed
# from the repository and from wheels carried in .whl/ into a private folder, never into the
# system. Everything it produces goes flat into "$OUT": the log (fidelity tables included), two
# calibrated profiles, two CSVs of raw microbenchmarks (for refits) and two fidelity JSONs. Finishes in under 6
# minutes on one H200 + 16 cores: each step has a time limit, and the fidelity runs stop timing
# new models at their deadline and report what they measured.
#
# The packages it needs beside torch come from wheels carried in .whl/: see benchmarks/_gpu_env.sh.
#
# GPU_TRUTH_PROFILE=rules/profiles/h200.toml skips calibration and runs only the fp16 fidelity
# against that profile, within GPU_TRUTH_LIMIT_S (default 180) seconds.
# Testing on a machine without a GPU: GPU_TRUTH_DEVICE=cpu GPU_TRUTH_QUICK=1 OUT=/tmp/x bash ...
set -u
DEVICE=${GPU_TRUTH_DEVICE:-cuda}
QUICK=${GPU_TRUTH_QUICK:-0}
source benchmarks/_gpu_env.sh  # gpu_log, log and gpu_install
gpu_log gpu_truth

log "gpu_truth: device=$DEVICE quick=$QUICK out=$OUT"
$PY - <<'EOF' 2>&1 | tee -a "$LOG"
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"{p.total_memory / 2**30:.0f} GiB", "sm", f"{p.major}.{p.minor}", "count", torch.cuda.device_count(),
          "L2", getattr(p, "L2_cache_size", "?"), "SMs", p.multi_processor_count)
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"

gpu_install  # cnnlint, offline, into a private folder on PYTHONPATH

# The card's model number names its profile: "NVIDIA H200" -> h200, "NVIDIA H100 80GB HBM3" -> h100.
CARD=$($PY -c "
import re, torch
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'
found = re.search(r'\b([A-Z]{1,2}\d{2,4}[a-z]?)\b', name)
print(found.group(1).lower() if found else re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-'))")
GRID=(); [ "$QUICK" = 1 ] && GRID=(--quick)
MODELS=(); [ "$QUICK" = 1 ] && MODELS=(--models resnet18,mobilenet_v2,squeezenet1_1)
BATCH=1,64; [ "$DEVICE" = cpu ] && BATCH=1

# ---------------------------------------------------------------- fidelity
fidelity() {  # precision profile deadline_s limit_s
    local precision=$1 profile=$2 deadline=$3 limit=$4
    if [ ! -s "$profile" ]; then log "skip fidelity $precision: no profile $profile"; return; fi
    log "fidelity $DEVICE $precision batch $BATCH, profile $(basename "$profile"), deadline ${deadline}s"
    timeout "$limit" $PY benchmarks/fidelity.py --device "$DEVICE" --precision "$precision" \
        --batch "$BATCH" --profile "$profile" --jobs 12 --budget 0.3 --deadline "$deadline" ${MODELS[@]+"${MODELS[@]}"} \
        --json "$OUT/fidelity_${DEVICE}_$precision.json" 2>&1 | tee -a "$LOG"
    log "fidelity $precision exit ${PIPESTATUS[0]}"
}
# GPU_TRUTH_PROFILE=PATH: fidelity in fp16 against that profile only, no calibration (the
# profile committed from an earlier run, re-checked after a cost-model change).
if [ -n "${GPU_TRUTH_PROFILE:-}" ]; then
    LIMIT=${GPU_TRUTH_LIMIT_S:-180}
    ELAPSED=$(( $(date +%s) - START ))
    fidelity fp16 "$GPU_TRUTH_PROFILE" $(( LIMIT - 30 - ELAPSED )) $(( LIMIT - ELAPSED ))
    log "done; files in $OUT:"; ls -la "$OUT" | tee -a "$LOG"
    exit 0
fi

# ---------------------------------------------------------------- calibrate, fp32 then fp16
log "calibrate $DEVICE fp32 -> $CARD-fp32.toml"
timeout 90 $PY -m cnnlint calibrate --device "$DEVICE" --precision fp32 ${GRID[@]+"${GRID[@]}"} \
    --name "$CARD-fp32" -o "$OUT/$CARD-fp32.toml" --samples "$OUT/calibrate_fp32.csv" 2>&1 | tee -a "$LOG"
FP16_BASE=(); [ -s "$OUT/$CARD-fp32.toml" ] && FP16_BASE=(--base "$OUT/$CARD-fp32.toml")
log "calibrate $DEVICE fp16 -> $CARD.toml (extends the fp32 one)"
timeout 90 $PY -m cnnlint calibrate --device "$DEVICE" --precision fp16 ${GRID[@]+"${GRID[@]}"} ${FP16_BASE[@]+"${FP16_BASE[@]}"} \
    --name "$CARD" -o "$OUT/$CARD.toml" --samples "$OUT/calibrate_fp16.csv" 2>&1 | tee -a "$LOG"

ELAPSED=$(( $(date +%s) - START ))
fidelity fp16 "$OUT/$CARD.toml" $(( 250 - ELAPSED )) $(( 300 - ELAPSED ))
ELAPSED=$(( $(date +%s) - START ))
if [ $ELAPSED -lt 270 ]; then  # fp32, as far as the time allows
    fidelity fp32 "$OUT/$CARD-fp32.toml" $(( 305 - ELAPSED )) $(( 330 - ELAPSED ))
else
    log "no time left for the fp32 fidelity run"
fi
log "done; files in $OUT:"
ls -la "$OUT" | tee -a "$LOG"
