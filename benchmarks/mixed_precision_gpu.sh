#!/usr/bin/env bash
# Mixed precision on a GPU machine: benchmarks/mixed_precision.py for the
# PyTorch and JAX backends, each in its own Python process with a time limit,
# then one compact table. One command, from the repository root:
#
#     bash benchmarks/mixed_precision_gpu.sh            # about 5 minutes at most
#     bash benchmarks/mixed_precision_gpu.sh --quick    # CPU smoke test, tiny sizes
#
# Expects `python3` with torch (CUDA) and jax (CUDA) installed, and Keras 3 plus
# its missing pure-Python dependencies as wheels in .whl/ (installed to
# /tmp/site); where .whl/ is absent, the Keras already installed is used.
# Results (JSON and one log per backend) go to $OUT, or /tmp/kbm_mixed_precision.
# Environment: PYTHON (default python3), BACKENDS (default "torch jax"),
# BACKEND_TIMEOUT (seconds per backend, default 150).
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD

set -u
PYTHON=${PYTHON:-python3}
export PYTHONPATH=${PYTHONPATH:-$PWD}
case ":$PYTHONPATH:" in *":$PWD:"*) ;; *) export PYTHONPATH=$PYTHONPATH:$PWD ;; esac
BACKENDS=${BACKENDS:-torch jax}
BACKEND_TIMEOUT=${BACKEND_TIMEOUT:-150}
RESULTS=${OUT:-/tmp/kbm_mixed_precision}
mkdir -p "$RESULTS"
ARGS=()
if [ "${1:-}" = "--quick" ]; then ARGS=(--quick); fi
export TF_CPP_MIN_LOG_LEVEL=2

echo "== machine"
date -u
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader || true
else
  echo "nvidia-smi: not found"
fi
"$PYTHON" - <<'PY' || true
import importlib, sys
print("python", sys.version.split()[0])
for name in ("keras", "torch", "jax", "jaxlib", "numpy", "optree", "namex"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as error:  # report and go on: the run says what failed
        print(f"{name}: not importable ({type(error).__name__}: {error})")
PY

JSONS=()
for backend in $BACKENDS; do
  echo
  echo "== KERAS_BACKEND=$backend (limit ${BACKEND_TIMEOUT}s)"
  json="$RESULTS/mixed_precision_$backend.json"
  log="$RESULTS/mixed_precision_$backend.log"
  rm -f "$json"
  start=$(date +%s)
  KERAS_BACKEND=$backend timeout --kill-after=10 "$BACKEND_TIMEOUT" \
    "$PYTHON" -u benchmarks/mixed_precision.py ${ARGS[@]+"${ARGS[@]}"} --json "$json" 2>&1 \
    | grep -v -E "^(WARNING: All log messages|I0000|E0000)" | tee "$log"
  status=${PIPESTATUS[0]}
  echo "== $backend: exit status $status after $(( $(date +%s) - start ))s" \
       "$( [ "$status" = 124 ] && echo '(timed out: partial results kept)')"
  [ -f "$json" ] && JSONS+=("$json")
done

echo
echo "== summary"
if [ ${#JSONS[@]} -gt 0 ]; then
  "$PYTHON" benchmarks/mixed_precision.py --table "${JSONS[@]}"
else
  echo "no backend produced results; see the logs above"
fi
echo "results and logs: $RESULTS"
