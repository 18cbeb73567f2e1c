#!/usr/bin/env bash
# --measure on a GPU, in one go (issue 12): each finding's fix timed on the card's real kernels
# beside the rule's own estimate, for the built-in profile measured on this card (h200) and the
# spec-sheet t4 one, on mobilenet_v2 (CL302), regnet_x_400mf (CL102) and the fixture with one
# finding of each covered kind (tests/fixtures/measure_fixes.py).
#
#   bash benchmarks/gpu_measure.sh          # from the repository root, on the GPU machine
#
# Installs like gpu_truth.sh (benchmarks/_gpu_env.sh: offline, from the wheels carried in .whl/).
# Everything goes flat into "$OUT": the log with the tables, and one JSON of every row. About two
# minutes on one H200.
# Testing on a machine without a GPU: GPU_MEASURE_DEVICE=cpu OUT=/tmp/x bash benchmarks/gpu_measure.sh
set -u
DEVICE=${GPU_MEASURE_DEVICE:-cuda}
source benchmarks/_gpu_env.sh  # gpu_log, log and gpu_install
gpu_log gpu_measure

log "gpu_measure: device=$DEVICE out=$OUT"
$PY -c "import torch; print('torch', torch.__version__, 'gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)" 2>&1 | tee -a "$LOG"
gpu_install  # cnnlint, offline, into a private folder on PYTHONPATH

TARGETS=${GPU_MEASURE_TARGETS:-h200,t4}
MODELS=${GPU_MEASURE_MODELS:-tests/fixtures/measure_fixes.py,mobilenet_v2,regnet_x_400mf}
log "measure.py --device $DEVICE --targets $TARGETS --models $MODELS"
timeout "${GPU_MEASURE_LIMIT_S:-200}" $PY benchmarks/measure.py --device "$DEVICE" --targets "$TARGETS" \
    --models "$MODELS" --budget 20 --threads 1 --json "$OUT/measure_$DEVICE.json" 2>&1 | tee -a "$LOG"
log "measure.py exit ${PIPESTATUS[0]}"
