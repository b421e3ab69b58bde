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
# Works offline: the build uses the scikit-build-core, nanobind, cmake and ninja already
# installed (--no-build-isolation --no-index), never the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCHS="${FASTDL_CUDA_ARCHS:-90}"
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
PY="${PYTHON:-python3}"
OUT=build/gpu
mkdir -p "$OUT"
status=0
STEPS=" ${FASTDL_STEPS:-check build test bench} "
want() { [[ "$STEPS" == *" $1 "* ]]; }
JOBS="${FASTDL_JOBS:-$(nproc 2>/dev/null || echo 4)}"

run() { echo "+ $*" >&2; "$@"; }
section() { printf '\n==== %s ====\n' "$*"; }

section "device"
if command -v nvidia-smi >/dev/null; then run nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; fi
run "$NVCC" --version | tail -n 2

# Compiles the standalone checkers (cuda_check, attention_cuda, nn_cuda), one object per file
# in parallel (nvcc runs files serially); all link the same csrc/cuda objects.
build_check() {
  local gencode=() objs=() f o
  for a in ${ARCHS//;/ }; do gencode+=("-gencode=arch=compute_${a},code=sm_${a}"); done
  rm -rf "$OUT/obj"; mkdir -p "$OUT/obj/main"
  for f in bench/native/cuda_check.cu bench/native/attention_cuda.cu bench/native/nn_cuda.cu csrc/cuda/*.cu; do
    if [[ "$f" == bench/* ]]; then o="$OUT/obj/main/$(basename "$f" .cu).o"; else o="$OUT/obj/$(basename "$f" .cu).o"; objs+=("$o"); fi
    while (( $(jobs -rp | wc -l) >= JOBS )); do sleep 0.2; done
    echo "+ nvcc -c $f" >&2
    ( "$NVCC" -std=c++17 -O2 "${gencode[@]}" -I csrc -c "$f" -o "$o" || touch "$OUT/obj/FAILED" ) &
  done
  wait
  [[ ! -e "$OUT/obj/FAILED" ]] &&
    run "$NVCC" "${gencode[@]}" "$OUT/obj/main/cuda_check.o" "${objs[@]}" -o "$OUT/cuda_check" &&
    run "$NVCC" "${gencode[@]}" "$OUT/obj/main/attention_cuda.o" "${objs[@]}" -o "$OUT/attention_cuda" &&
    run "$NVCC" "${gencode[@]}" "$OUT/obj/main/nn_cuda.o" "${objs[@]}" -o "$OUT/nn_cuda"
}

if want check; then
  section "native validation (bench/native/cuda_check.cu)"
  rm -f "$OUT/cuda_check"
  if build_check; then
    if run "$OUT/cuda_check" | tee "$OUT/cuda_check.log"; then echo "cuda_check: all passed"; else
      echo "cuda_check: FAILURES:"; grep '^FAIL' "$OUT/cuda_check.log" || true; status=1; fi
    if run "$OUT/attention_cuda" | tee "$OUT/attention_cuda.log"; then echo "attention_cuda: all passed"; else
      echo "attention_cuda: FAILURES:"; grep '^FAIL' "$OUT/attention_cuda.log" || true; status=1; fi
    if run "$OUT/nn_cuda" | tee "$OUT/nn_cuda.log"; then echo "nn_cuda: all passed"; else
      echo "nn_cuda: FAILURES:"; grep '^FAIL' "$OUT/nn_cuda.log" || true; status=1; fi
  else echo "cuda_check: BUILD FAILED"; status=1; fi
fi

if want build; then
  section "build fastdl with CUDA"
  if [[ -n "${FASTDL_SKIP_INSTALL:-}" ]]; then echo "skipped (FASTDL_SKIP_INSTALL)"
  elif ! "$PY" -c "import scikit_build_core, nanobind" 2>/dev/null; then
    echo "scikit-build-core or nanobind missing for $PY (no index to fetch them from): build skipped"; status=1
  else
    export CMAKE_BUILD_PARALLEL_LEVEL="$JOBS"
    run "$PY" -m pip install -v --no-build-isolation --no-index --no-deps . \
      -Ccmake.define.FASTDL_CUDA=ON "-Ccmake.define.FASTDL_CUDA_ARCHS=${ARCHS}" \
      > "$OUT/pip.log" 2>&1 || { status=1; echo "pip install FAILED"; }
    grep -E "fastdl: CUDA|error|Error" "$OUT/pip.log" | head -n 20 || true
    tail -n 15 "$OUT/pip.log"
  fi
fi

if want scan; then
  section "selective scan (cuda_check selective_scan, CUDA tests)"
  rm -f "$OUT/cuda_check"
  if build_check; then
    run "$OUT/cuda_check" selective_scan || status=1
    run "$OUT/cuda_check" --bench selective_scan || status=1
  else echo "cuda_check: BUILD FAILED"; status=1; fi
  if (cd /tmp && "$PY" -c "import fastdl, pytest") 2>/dev/null; then
    set +e; run "$PY" -m pytest tests/test_selective_scan.py -q -k cuda -p no:cacheprovider; rc=$?; set -e
    [[ $rc -eq 0 ]] || status=1
  fi
fi

if want attention; then
  section "fused attention (attention_cuda cases and timing, CUDA tests)"
  rm -f "$OUT/attention_cuda"
  if build_check; then
    run "$OUT/attention_cuda" || status=1
    run "$OUT/attention_cuda" --bench || status=1
  else echo "attention_cuda: BUILD FAILED"; status=1; fi
  if (cd /tmp && "$PY" -c "import fastdl, pytest") 2>/dev/null; then
    set +e; run "$PY" -m pytest tests/test_cuda.py -q -k attention -p no:cacheprovider; rc=$?; set -e
    [[ $rc -eq 0 || $rc -eq 5 ]] || status=1
  fi
fi

if want nn; then
  section "conv2d / pooling / norms (nn_cuda cases and conv timing, CUDA tests)"
  rm -f "$OUT/nn_cuda"
  if build_check; then
    run "$OUT/nn_cuda" || status=1
    run "$OUT/nn_cuda" --bench || status=1
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
      set +e; run "$PY" -m pytest tests -q -k cuda -p no:cacheprovider; rc=$?; set -e
      [[ $rc -eq 0 || $rc -eq 5 ]] || status=1   # 5: no test matched -k cuda
    fi
  else echo "fastdl or pytest not importable: skipped"; fi
fi

if want bench && [[ -x "$OUT/cuda_check" ]]; then
section "benchmarks"
run "$OUT/cuda_check" --bench | tee "$OUT/bench.log" || status=1
[[ -x "$OUT/attention_cuda" ]] && { run "$OUT/attention_cuda" --bench || status=1; }
[[ -x "$OUT/nn_cuda" ]] && { run "$OUT/nn_cuda" --bench || status=1; }
run "$PY" - "$OUT/bench.log" <<'PYEOF' || true
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
elif want bench; then echo "benchmarks skipped: no $OUT/cuda_check (run the check step)"; fi

section "done"
[[ $status -eq 0 ]] && echo "gpu.sh: OK" || echo "gpu.sh: FAILED (see above)"
exit $status
