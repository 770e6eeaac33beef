#!/usr/bin/env bash
# Every GPU figure of the docs in one run (under 8 minutes on an H200):
#
#   1. mixed precision (compare_precision, float32 with TF32 on and off against
#      mixed_float16) for the article's model (2 x Dense(4096)) and a
#      >100M-parameter one (4 x Dense(8192), batch 2048), per backend;
#   2. MixedPrecisionGuard's overhead on fit at >100M parameters (4 x Dense(8192));
#   3. the non-finite state check at 2e8 parameters (benchmarks/nonfinite_check.py,
#      where that script exists);
#   4. check_gradients at ~200M parameters (4 x Dense(8192)), first and repeated call;
#
# on JAX and PyTorch (and TensorFlow where it is installed), each part in its
# own process under its own `timeout`: a part that fails or runs out of time
# prints its error, and the others go on. Then one table; the JSON of each part
# and its log go to the directory given as the argument, or $OUT, or
# /tmp/kbm_gpu.
#
#     bash benchmarks/gpu.sh [DIR]          # on the GPU machine
#     bash benchmarks/gpu.sh --quick [DIR]  # CPU smoke test, tiny sizes (~10 s a part)
#
# A bare GPU machine has PyTorch and JAX but not Keras: Keras and what
# `import keras` and our import paths need, missing there, travel as wheels in
# .whl/ (git-ignored), installed with --no-deps into /tmp/site when
# `import keras` fails. Fetch them on a machine with pip (Python 3.12, the GPU
# machine's):
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 \
#     --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
#     keras==3.15.1 namex==0.1.0 optree==0.20.0
#
# Keras needs absl-py, numpy, rich, namex, h5py, optree, ml-dtypes and
# packaging; the GPU image (see the device notes) holds all of them but keras,
# namex and optree, so only those three travel (one version of each: carrying
# ml-dtypes or numpy would fight JAX's own).
#
# Environment: PYTHON (default python3), BACKENDS (default: torch jax, and
# tensorflow where importable), PART_TIMEOUT (seconds for every part; by
# default 150 for mixed precision, 40 for the gradient check and 60 for the
# non-finite check per backend: 500 s for two backends; 100 each in --quick).
set -u
QUICK=0
DEST=${OUT:-/tmp/kbm_gpu}
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 ;;
    *) DEST=$arg ;;
  esac
done
mkdir -p "$DEST"
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/.." || exit 1
export TF_CPP_MIN_LOG_LEVEL=2
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD

if ! "$PYTHON" -c "import keras" >/dev/null 2>&1; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    echo "== installing Keras from .whl/ into /tmp/site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target /tmp/site .whl/*.whl || echo "wheel install failed"
    export PYTHONPATH=/tmp/site:$PYTHONPATH
  else
    echo "Keras is not importable and .whl/ holds no wheels: nothing to run" >&2
    exit 2
  fi
fi

if [ -z "${BACKENDS:-}" ]; then
  BACKENDS=""
  for library in torch jax tensorflow; do
    if "$PYTHON" -c "import $library" >/dev/null 2>&1; then
      BACKENDS="$BACKENDS $library"
    fi
  done
fi
if [ "$QUICK" = 1 ]; then
  PART_TIMEOUT=${PART_TIMEOUT:-100}
  LIMITS=("$PART_TIMEOUT" "$PART_TIMEOUT" "$PART_TIMEOUT")
  MIXED=(--quick --parts big_overhead)
  SCALE=2e4
  NONFINITE=(--quick --params 1e4)
else
  if [ -n "${PART_TIMEOUT:-}" ]; then
    LIMITS=("$PART_TIMEOUT" "$PART_TIMEOUT" "$PART_TIMEOUT")
  else
    LIMITS=(150 40 60)
  fi
  MIXED=(--size gpu --parts article,big,big_overhead)
  SCALE=2e8
  NONFINITE=(--params 2e8)
fi

echo "== machine ($(date -u +%FT%TZ)); backends:$BACKENDS; results in $DEST"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
fi

FAILED=0
# part NAME BACKEND LIMIT COMMAND...: one part in its own process and time limit.
part() {
  local name=$1 backend=$2 limit=$3
  shift 3
  local log="$DEST/$name.log" start status
  start=$(date +%s)
  KERAS_BACKEND=$backend timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  status=$?
  echo "-- $name: exit $status after $(( $(date +%s) - start )) s$(
    [ "$status" = 124 ] && echo " (timed out after ${limit} s)")"
  if [ "$status" != 0 ]; then
    FAILED=$((FAILED + 1))
    grep -v -E "^(WARNING: All log messages|I0000|E0000)" "$log" | tail -n 8 | sed 's/^/   | /'
  fi
}

for backend in $BACKENDS; do
  part "mixed_precision_$backend" "$backend" "${LIMITS[0]}" \
    "$PYTHON" -u benchmarks/mixed_precision.py "${MIXED[@]}" \
    --json "$DEST/mixed_precision_$backend.json"
  part "gradient_check_$backend" "$backend" "${LIMITS[1]}" \
    "$PYTHON" -u benchmarks/gradient_check.py --at-scale "$SCALE" \
    --json "$DEST/gradient_check_$backend.json"
  if [ -f benchmarks/nonfinite_check.py ]; then
    part "nonfinite_check_$backend" "$backend" "${LIMITS[2]}" \
      "$PYTHON" -u benchmarks/nonfinite_check.py "${NONFINITE[@]}" \
      --json "$DEST/nonfinite_check_$backend.json"
  fi
done

echo
echo "== summary"
"$PYTHON" - "$DEST" <<'PY'
import json
import sys
from pathlib import Path

dest = Path(sys.argv[1])


def load(name):
    try:
        return json.loads((dest / name).read_text())
    except (OSError, ValueError):
        return None


rows = []
for path in sorted(dest.glob("mixed_precision_*.json")):
    report = load(path.name) or {}
    backend = report.get("backend", path.stem.split("_")[-1])
    for model, modes in (report.get("models") or {}).items():
        for mode, row in modes.items():
            rows.append(
                (backend, f"mixed precision {model} (TF32 {mode})",
                 f"{row['float32_ms']:.1f} -> {row['mixed_ms']:.1f} ms/step",
                 f"{row['speedup']:.2f}x")
            )
    overhead = report.get("guard_overhead_big")
    if overhead:
        rows.append(
            (backend, f"guard overhead, {overhead['params']:,} params",
             f"{overhead['fit_s_without']:.2f} -> {overhead['fit_s_with']:.2f} s",
             f"{overhead['overhead_pct']:+.1f} %")
        )
checks = {}
for path in sorted(dest.glob("gradient_check_*.json")):
    result = load(path.name)
    if result:
        checks[result["backend"]] = result
fastest = min((r["repeat_s"] for r in checks.values()), default=None)
for backend, result in checks.items():
    rows.append(
        (backend, f"check_gradients, {result['params']:,} params",
         f"first {result['first_s']:.2f} s, repeat {result['repeat_s']:.3f} s",
         f"{result['verdict']}, {result['repeat_s'] / fastest:.1f}x fastest")
    )
for path in sorted(dest.glob("nonfinite_check_*.json")):
    result = load(path.name)
    if result:
        backend = result.get("backend", path.stem.split("_")[-1])
        summary = ", ".join(
            f"{k}={v}" for k, v in result.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        )
        rows.append((backend, "non-finite state check", summary[:60], ""))
if not rows:
    print("no part produced results; see the logs above")
else:
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
(dest / "summary.json").write_text(json.dumps(rows, indent=1))
PY
echo "results and logs: $DEST ($FAILED part(s) failed)"
exit $(( FAILED > 0 ))
