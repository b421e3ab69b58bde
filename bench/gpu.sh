#!/usr/bin/env bash
# One command for a GPU machine: validate the CUDA kernels natively, build fastdl with CUDA,
# run the CUDA tests, and time GEMM / elementwise add / sum against PyTorch (when installed).
#   bench/gpu.sh                      # archs from FASTDL_CUDA_ARCHS (default 90)
#   FASTDL_TESTS=all bench/gpu.sh     # whole pytest suite instead of -k cuda
#   FASTDL_SKIP_INSTALL=1 bench/gpu.sh
#   FASTDL_STEPS="check build" bench/gpu.sh   # a subset of: check build test bench (to fit
#                                               # several calls under a per-command time limit)
#   FASTDL_STEPS="build scan" bench/gpu.sh    # selective scan only: its native cases and timing,
#                                               # and its CUDA tests (drop build if already built)
#   FASTDL_STEPS="build attention" bench/gpu.sh  # fused attention only: bench/native/attention_cuda
#                                               # cases and timing, and its CUDA tests
#   FASTDL_STEPS="build nn" bench/gpu.sh      # conv2d / pooling / norms: bench/native/nn_cuda cases
#                                               # and conv timing, and their CUDA tests
#   FASTDL_STEPS="... models" bench/gpu.sh    # whole training steps against PyTorch (bench/gpu_models.py)
# Device time is short; build on a CPU machine with nvcc first and carry the results:
#   PYTHON=python3.12 FASTDL_STEPS=prebuild bench/gpu.sh   # here: the checkers in build/gpu/bin and
#       # the extension for that Python (the device's version) in python/fastdl/; then, there,
#   FASTDL_PREBUILT=1 bench/gpu.sh                         # with build/gpu/bin and the .so carried
# Logs go to $OUT when it is set (the device tool's output folder), else to build/gpu.
# Works offline: the build uses the scikit-build-core, nanobind, cmake and ninja already
# installed (--no-build-isolation --no-index), never the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCHS="${FASTDL_CUDA_ARCHS:-90}"
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
PY="${PYTHON:-python3}"
B=build/gpu
LOG="${OUT:-$B}"
mkdir -p "$B/bin" "$LOG"
status=0
# The prebuilt extension lies in python/fastdl: import the package from the tree.
[[ -n "${FASTDL_PREBUILT:-}" ]] && export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
STEPS=" ${FASTDL_STEPS:-check build test bench} "
want() { [[ "$STEPS" == *" $1 "* ]]; }
JOBS="${FASTDL_JOBS:-$(nproc 2>/dev/null || echo 4)}"

run() { echo "+ $*" >&2; "$@"; }
section() { printf '\n==== %s ====\n' "$*"; }

section "device"
if command -v nvidia-smi >/dev/null; then run nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; fi
run "$NVCC" --version | tail -n 2

# Compiles the standalone checkers (cuda_check, attention_cuda, nn_cuda) into $B/bin, one object
# per file in parallel (nvcc runs files serially); all link the same csrc/cuda objects. With
# FASTDL_PREBUILT=1, checkers already in $B/bin (carried from the machine that built them) are kept.
build_check() {
  if [[ -n "${FASTDL_PREBUILT:-}" && -x "$B/bin/cuda_check" && -x "$B/bin/attention_cuda" && -x "$B/bin/nn_cuda" ]]; then
    echo "checkers: prebuilt ($B/bin)"; return 0; fi
  local gencode=() objs=() f o
  for a in ${ARCHS//;/ }; do gencode+=("-gencode=arch=compute_${a},code=sm_${a}"); done
  rm -rf "$B/obj"; mkdir -p "$B/obj/main"
  for f in bench/native/cuda_check.cu bench/native/attention_cuda.cu bench/native/nn_cuda.cu csrc/cuda/*.cu; do
    if [[ "$f" == bench/* ]]; then o="$B/obj/main/$(basename "$f" .cu).o"; else o="$B/obj/$(basename "$f" .cu).o"; objs+=("$o"); fi
    while (( $(jobs -rp | wc -l) >= JOBS )); do sleep 0.2; done
    echo "+ nvcc -c $f" >&2
    ( "$NVCC" -std=c++17 -O2 -lineinfo "${gencode[@]}" -I csrc -c "$f" -o "$o" || touch "$B/obj/FAILED" ) &
  done
  wait
  [[ ! -e "$B/obj/FAILED" ]] &&
    run "$NVCC" "${gencode[@]}" "$B/obj/main/cuda_check.o" "${objs[@]}" -o "$B/bin/cuda_check" &&
    run "$NVCC" "${gencode[@]}" "$B/obj/main/attention_cuda.o" "${objs[@]}" -o "$B/bin/attention_cuda" &&
    run "$NVCC" "${gencode[@]}" "$B/obj/main/nn_cuda.o" "${objs[@]}" -o "$B/bin/nn_cuda"
}

# A checker's run; on failure, once more under compute-sanitizer (memcheck) when it is there, whose
# report names the kernel and the out-of-bounds access.
check_run() {
  local name=$1; shift
  if run timeout 300 "$B/bin/$name" "$@" > "$LOG/$name.log" 2>&1; then cat "$LOG/$name.log"; echo "$name: all passed"; return 0; fi
  cat "$LOG/$name.log"; echo "$name: FAILURES:"; grep '^FAIL' "$LOG/$name.log" || true
  if command -v compute-sanitizer >/dev/null; then
    run timeout 240 compute-sanitizer --print-limit 20 "$B/bin/$name" "$@" > "$LOG/$name.sanitizer.log" 2>&1 || true
    grep -E "^=+ (Invalid|Out of|Address|Program hit|ERROR SUMMARY)|^=+ +at |^FAIL" "$LOG/$name.sanitizer.log" | head -n 60 || true
  fi
  return 1
}

if want prebuild; then
  section "prebuild (on a CPU machine with nvcc): checkers in $B/bin, the extension for $PY"
  build_check || { echo "checkers: BUILD FAILED"; status=1; }
  tag=$("$PY" -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')
  pb="${FASTDL_PREBUILD_DIR:-$B/$tag}"
  run cmake -S . -B "$pb" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFASTDL_CUDA=ON "-DFASTDL_CUDA_ARCHS=${ARCHS}" \
    -DFASTDL_STUBS=OFF "-DPython_EXECUTABLE=$("$PY" -c 'import sys; print(sys.executable)')" \
    "-Dnanobind_DIR=$(python3 -m nanobind --cmake_dir)" > "$LOG/prebuild.log" 2>&1 &&
    run ninja -C "$pb" -j "$JOBS" _C >> "$LOG/prebuild.log" 2>&1 &&
    run cp "$pb"/_C.cpython-*.so python/fastdl/ && strip --strip-unneeded python/fastdl/_C.cpython-*.so ||
    { tail -n 30 "$LOG/prebuild.log"; status=1; }
fi

if want check; then
  section "native validation (bench/native: cuda_check, attention_cuda, nn_cuda)"
  if build_check; then
    check_run cuda_check || status=1
    check_run attention_cuda || status=1
    check_run nn_cuda || status=1
  else echo "cuda_check: BUILD FAILED"; status=1; fi
fi

if want build; then
  section "build fastdl with CUDA"
  if [[ -n "${FASTDL_PREBUILT:-}" ]]; then
    (cd /tmp && "$PY" -c "import fastdl; print('prebuilt', fastdl._C.__file__, 'cuda available:', fastdl.cuda.is_available())") || status=1
  elif [[ -n "${FASTDL_SKIP_INSTALL:-}" ]]; then echo "skipped (FASTDL_SKIP_INSTALL)"
  elif ! "$PY" -c "import scikit_build_core, nanobind" 2>/dev/null; then
    echo "scikit-build-core or nanobind missing for $PY (no index to fetch them from): build skipped"; status=1
  else
    export CMAKE_BUILD_PARALLEL_LEVEL="$JOBS"
    run "$PY" -m pip install -v --no-build-isolation --no-index --no-deps . \
      -Ccmake.define.FASTDL_CUDA=ON "-Ccmake.define.FASTDL_CUDA_ARCHS=${ARCHS}" \
      > "$LOG/pip.log" 2>&1 || { status=1; echo "pip install FAILED"; }
    grep -E "fastdl: CUDA|error|Error" "$LOG/pip.log" | head -n 20 || true
    tail -n 15 "$LOG/pip.log"
  fi
fi

if want scan; then
  section "selective scan (cuda_check selective_scan, CUDA tests)"
  if build_check; then
    run "$B/bin/cuda_check" selective_scan || status=1
    run "$B/bin/cuda_check" --bench selective_scan || status=1
  else echo "cuda_check: BUILD FAILED"; status=1; fi
  if (cd /tmp && "$PY" -c "import fastdl, pytest") 2>/dev/null; then
    set +e; run "$PY" -m pytest tests/test_selective_scan.py -q -k cuda -p no:cacheprovider; rc=$?; set -e
    [[ $rc -eq 0 ]] || status=1
  fi
fi

if want attention; then
  section "fused attention (attention_cuda cases and timing, CUDA tests)"
  if build_check; then
    run "$B/bin/attention_cuda" || status=1
    run "$B/bin/attention_cuda" --bench || status=1
  else echo "attention_cuda: BUILD FAILED"; status=1; fi
  if (cd /tmp && "$PY" -c "import fastdl, pytest") 2>/dev/null; then
    set +e; run "$PY" -m pytest tests/test_cuda.py -q -k attention -p no:cacheprovider; rc=$?; set -e
    [[ $rc -eq 0 || $rc -eq 5 ]] || status=1
  fi
fi

if want nn; then
  section "conv2d / pooling / norms (nn_cuda cases and conv timing, CUDA tests)"
  if build_check; then
    run "$B/bin/nn_cuda" || status=1
    run "$B/bin/nn_cuda" --bench || status=1
  else echo "nn_cuda: BUILD FAILED"; status=1; fi
  if (cd /tmp && "$PY" -c "import fastdl, pytest") 2>/dev/null; then
    set +e; run "$PY" -m pytest tests/test_cuda.py -q -k "conv or pool or norm" -p no:cacheprovider; rc=$?; set -e
    [[ $rc -eq 0 || $rc -eq 5 ]] || status=1
  fi
fi

if want test; then
  section "pytest"
  if [[ -d tests ]] && (cd /tmp && "$PY" -c "import fastdl, pytest") 2>/dev/null; then
    "$PY" -c "import fastdl; print('fastdl', fastdl.__file__, 'cuda available:', fastdl.cuda.is_available())"
    if [[ "${FASTDL_TESTS:-cuda}" == all ]]; then run "$PY" -m pytest tests -q -x || status=1
    else
      set +e; run timeout "${FASTDL_TEST_TIMEOUT:-400}" "$PY" -m pytest tests -q -k cuda -p no:cacheprovider -rfE \
        -o timeout=60 > "$LOG/pytest.log" 2>&1; rc=$?; set -e
      grep -E "^(FAILED|ERROR)|passed|failed" "$LOG/pytest.log" | tail -n 80
      [[ $rc -eq 0 || $rc -eq 5 ]] || status=1   # 5: no test matched -k cuda
      # One CUDA error (an illegal address) poisons the process's context and fails every test
      # after it: run each failure again alone, so the table names the tests that fail on their own.
      grep -E "^(FAILED|ERROR) " "$LOG/pytest.log" | sed -E 's/^(FAILED|ERROR) //; s/ - .*//' | sort -u | head -n 120 > "$LOG/failed.txt" || true
      if [[ -s "$LOG/failed.txt" ]]; then
        echo "-- failures run alone (8 at a time):"
        xargs -P 8 -I{} sh -c 'if timeout 90 "$0" -m pytest -q -x -p no:cacheprovider "{}" > /dev/null 2>&1; then echo "ALONE PASS {}"; else echo "ALONE FAIL {}"; fi' "$PY" < "$LOG/failed.txt" | sort > "$LOG/alone.txt"
        cat "$LOG/alone.txt"
      fi
    fi
  else echo "fastdl or pytest not importable: skipped"; fi
fi

if want bench && [[ -x "$B/bin/cuda_check" ]]; then
section "benchmarks"
run timeout 120 "$B/bin/cuda_check" --bench | tee "$LOG/bench.log" || status=1
[[ -x "$B/bin/attention_cuda" ]] && { run timeout 120 "$B/bin/attention_cuda" --bench || status=1; }
[[ -x "$B/bin/nn_cuda" ]] && { run timeout 120 "$B/bin/nn_cuda" --bench || status=1; }
run "$PY" - "$LOG/bench.log" <<'PYEOF' || true
import re, sys
ours = {}
for line in open(sys.argv[1]):
    m = re.match(r"BENCH (\S+) ([\d.]+) ms ([\d.]+) (\S+)", line)
    if m: ours[m[1]] = (float(m[2]), float(m[3]), m[4])
peer = {}
try:
    import torch
    assert torch.cuda.is_available()
    def t(f, iters=10):
        f(); torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(iters): f()
        b.record(); torch.cuda.synchronize()
        return a.elapsed_time(b) / iters
    torch.backends.cuda.matmul.allow_tf32 = False
    S = 4096
    for name, dt in (("gemm_bf16_4096", torch.bfloat16), ("gemm_f32_4096", torch.float32)):
        x = torch.full((S, S), 0.01, device="cuda", dtype=dt); y = x.clone()
        ms = t(lambda: x @ y); peer[name] = (ms, 2 * S**3 / ms / 1e9)
    n = 1 << 28
    x = torch.ones(n, device="cuda"); y = torch.ones(n, device="cuda"); z = torch.empty_like(x)
    ms = t(lambda: torch.add(x, y, out=z)); peer["add_f32_2^28"] = (ms, 12 * n / ms / 1e6)
    ms = t(lambda: x.sum()); peer["sum_f32_2^28"] = (ms, 4 * n / ms / 1e6)
except Exception as e:
    print(f"(torch timings unavailable: {e!r})")
print(f"\n{'kernel':<18}{'fastdl ms':>11}{'fastdl':>16}{'torch ms':>11}{'torch':>16}{'fastdl/torch':>14}")
for k, (ms, rate, unit) in ours.items():
    p = peer.get(k)
    pt = f"{p[0]:>11.3f}{p[1]:>10.1f} {unit:<5}{p[0] / ms:>14.2f}" if p else f"{'-':>11}{'-':>16}{'-':>14}"
    print(f"{k:<18}{ms:>11.3f}{rate:>10.1f} {unit:<5}{pt}")
print("(fastdl/torch: torch time over fastdl time; above 1 means fastdl is faster)")
PYEOF
elif want bench; then echo "benchmarks skipped: no $B/bin/cuda_check (run the check step)"; fi

if want models; then
  section "training steps against PyTorch (bench/gpu_models.py)"
  set +e; run timeout "${FASTDL_MODELS_TIMEOUT:-240}" "$PY" bench/gpu_models.py --steps "${FASTDL_MODEL_STEPS:-20}" \
    ${FASTDL_MODELS:+--only "$FASTDL_MODELS"} 2>&1 | tee "$LOG/models.log"; rc=${PIPESTATUS[0]}; set -e
  [[ $rc -eq 0 ]] || status=1
fi

section "done"
[[ $status -eq 0 ]] && echo "gpu.sh: OK" || echo "gpu.sh: FAILED (see above)"
exit $status
