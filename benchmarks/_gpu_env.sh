# Sourced by the GPU scripts (benchmarks/gpu_truth.sh, benchmarks/gpu_measure.sh). Two functions:
#   gpu_log NAME   OUT (default: a new temporary folder), PY (python3 or $PYTHON), LOG
#                  ("$OUT/NAME.log") and log(), which timestamps a line into it;
#   gpu_install    install cnnlint and the packages a bare GPU machine lacks into a private
#                  folder, offline, never into the system, and put it first on PYTHONPATH.
#
# The wheels travel beside the tree, not in git (carry [".whl"]): pydantic 2.14.4, pydantic-core
# 2.50.5 (cp312 manylinux2014 x86_64, the version that pydantic pins), annotated-types 0.8.0,
# typing-inspection 0.4.5, typing-extensions 4.16.0, click 8.5.1, rich 15.0.0, markdown-it-py
# 4.3.0, mdurl 0.1.2, pygments 2.21.0, pathspec 1.1.1, networkx 3.6.1. To fetch them again:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl pydantic==2.14.4 ...
#

gpu_log() {
    OUT=${OUT:-$(mktemp -d)}
    PY=${PYTHON:-python3}
    mkdir -p "$OUT"
    LOG="$OUT/$1.log"
    START=$(date +%s)
}
log() { echo "[$(date -u +%H:%M:%S) +$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }

# ---------------------------------------------------------------- install, offline
gpu_install() {
    SITE=$(mktemp -d)/site
    WHEELS=${GPU_TRUTH_WHEELS:-.whl}
    log "wheels: $(ls "$WHEELS" 2>/dev/null | tr '\n' ' ')"
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
        if ! $PY -m pip install --quiet --no-deps --no-index --target "$SITE" "$WHEELS"/*.whl >>"$LOG" 2>&1; then
            log "pip could not install the carried wheels; unpacking them instead"
            $PY -c "import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]" \
                "$SITE" "$WHEELS"/*.whl >>"$LOG" 2>&1 || log "warning: unpacking the wheels failed too"
        fi
    fi
    if ! $PY -m pip install --quiet --no-deps --no-build-isolation --no-index --target "$SITE" . >>"$LOG" 2>&1; then
        # No setuptools here: lay the package out as the wheel would (rules/ installs as cnnlint.rules).
        log "pip could not build cnnlint offline; copying the package instead"
        rm -rf "$SITE/cnnlint" && mkdir -p "$SITE" && cp -r cnnlint "$SITE/cnnlint" && cp -r rules "$SITE/cnnlint/rules"
    fi
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONSAFEPATH=1  # never import the source tree's cnnlint/ (it lacks cnnlint.rules) from the cwd
    if ! $PY -c "import cnnlint.cli, cnnlint.calibrate, cnnlint.rules, pydantic, scipy" >>"$LOG" 2>&1; then
        log "FATAL: cnnlint does not import (see $LOG)"; exit 2
    fi
    log "cnnlint installed in $SITE"
}
