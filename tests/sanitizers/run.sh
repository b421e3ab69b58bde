#!/usr/bin/env bash
# Build fastdl's extension with AddressSanitizer + UndefinedBehaviorSanitizer into its own tree,
# install it beside a copy of the Python sources (never touching the user's install), and run
# the test suite under it twice: on the scalar reference kernels and on the fastest ISA.
# Any ASan / UBSan / LSan report fails the run.
#
#   tests/sanitizers/run.sh                  build, then both suite runs
#   tests/sanitizers/run.sh build            build and install only
#   tests/sanitizers/run.sh test [ARGS...]   run pytest ARGS (default: tests) under the build,
#                                            once per ISA in FASTDL_SAN_ISAS ("ref default")
#   tests/sanitizers/run.sh python [ARGS...] run python under the sanitized build
# Environment: FASTDL_SAN_BUILD (build tree, default build/sanitize), FASTDL_SAN_JOBS,
# PYTHON, FASTDL_SAN_HIDE_TORCH=1 to run without PyTorch (its cross-checks skip).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/tests/sanitizers"
BUILD="${FASTDL_SAN_BUILD:-$ROOT/build/sanitize}"
SITE="$BUILD/site"
# The interpreter itself, not a wrapper script (pyenv's shims are bash, which LSan would report).
PY="$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')"
JOBS="${FASTDL_SAN_JOBS:-$(nproc)}"
CXX="${CXX:-g++}"

build() {
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFASTDL_CUDA=OFF \
    -DFASTDL_SANITIZE=address,undefined -DFASTDL_STUBS=OFF -DCMAKE_CXX_COMPILER="$CXX" \
    -DPython_EXECUTABLE="$PY" -DCMAKE_INSTALL_PREFIX="$SITE" >/dev/null
  cmake --build "$BUILD" -j "$JOBS"
  install_python
}

# The Python sources (refreshed before every run) with the sanitized _C installed among them.
install_python() {
  mkdir -p "$SITE"
  rm -rf "$SITE/fastdl.new" && cp -r "$ROOT/python/fastdl" "$SITE/fastdl.new"
  find "$SITE/fastdl.new" \( -name '__pycache__' -o -name '_C*.so' -o -name '_C.pyi' \) -prune -exec rm -rf {} +
  rm -rf "$SITE/fastdl" && mv "$SITE/fastdl.new" "$SITE/fastdl"
  cmake --install "$BUILD" >/dev/null
  cp "$HERE/sitecustomize.py" "$SITE/"
}

sanitizer_env() {
  local lib
  lib="$("$CXX" -print-file-name=libasan.so)"
  [ -e "$lib" ] || { echo "sanitize: libasan not found for $CXX" >&2; exit 2; }
  # libstdc++ too: python does not link it, and ASan's __cxa_throw interceptor must find the
  # real one at start-up, or the first C++ exception aborts ("real___cxa_throw != 0").
  export LD_PRELOAD="$lib:$("$CXX" -print-file-name=libstdc++.so)${LD_PRELOAD:+:$LD_PRELOAD}"
  # allocator_may_return_null: huge requests become MemoryError as in a normal build.
  # Reports go to files (pytest's fd capture would swallow a report printed as a test dies).
  mkdir -p "$BUILD/reports"
  export ASAN_OPTIONS="log_path=$BUILD/reports/asan:detect_leaks=1:allocator_may_return_null=1:check_initialization_order=1:strict_string_checks=1:detect_stack_use_after_return=0:halt_on_error=1"
  export LSAN_OPTIONS="suppressions=$HERE/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="log_path=$BUILD/reports/ubsan:print_stacktrace=1:halt_on_error=1"
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"

  export FASTDL_SAN_SITE="$SITE"     # read by sitecustomize.py
  export FASTDL_CUDA=OFF
  if [ "${FASTDL_SAN_HIDE_TORCH:-0}" = 1 ]; then export FASTDL_SAN_HIDE="torch"; fi
}

# One pytest run under the sanitizers: ISA, log file, pytest args. Prints its checks; returns
# 0 when the tests passed and no sanitizer reported anything.
run_pytest() {
  local isa=$1 log=$2; shift 2
  local status=0
  rm -rf "$BUILD/reports" && mkdir -p "$BUILD/reports"
  if [ "$isa" = default ]; then
    (cd "$ROOT" && env -u FASTDL_CPU_ISA "$PY" -m pytest -q -p no:cacheprovider --capture=sys "$@" 2>&1 | tee "$log"; exit "${PIPESTATUS[0]}") || status=$?
  else
    (cd "$ROOT" && FASTDL_CPU_ISA=$isa "$PY" -m pytest -q -p no:cacheprovider --capture=sys "$@" 2>&1 | tee "$log"; exit "${PIPESTATUS[0]}") || status=$?
  fi
  # UBSan prints to stderr (not log_path); --capture=sys leaves C-level stderr in the log.
  if grep -q "runtime error:\|ERROR: AddressSanitizer\|ERROR: LeakSanitizer" "$log"; then
    echo "sanitize: sanitizer reports in $log" >&2; status=1
  fi
  if compgen -G "$BUILD/reports/*" >/dev/null; then
    echo "sanitize: sanitizer reports (ISA $isa):" >&2; cat "$BUILD"/reports/* >&2; status=1
  fi
  # nanobind reports Python objects of its types still alive at exit (refcount leaks).
  if grep -q "nanobind: leaked" "$log"; then echo "sanitize: nanobind reports leaked objects" >&2; status=1; fi
  return $status
}

# True when a run failed only because LeakSanitizer's tracer crashed during the leak check
# (google/sanitizers#1353: intermittent, "Tracer caught signal 11"): pytest's summary line says
# every test passed (the check runs after it, tests/conftest.py) and the only report is the
# tracer's fatal error.
tracer_crash_only() {
  local log=$1
  grep -Eq '^[0-9]+ passed' "$log" || return 1
  ! grep -Eq '^[0-9]+ passed.*(failed|error)' "$log" || return 1
  ! grep -q "runtime error:\|ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|nanobind: leaked" "$log" || return 1
  grep -qs "Tracer caught signal" "$BUILD"/reports/* || return 1
  ! grep -qs "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$BUILD"/reports/* || return 1
}

# The leak check again after a tracer crash, on the tests that exercise the native allocations
# most (tensors, views, autograd graphs, layers, optimisers, the kernels' scratch buffers), up to
# three times: a real leak fails it, a tracer crash three times in a row fails it too.
LEAK_RECHECK=(tests/test_leaks.py tests/test_tensor.py tests/test_views.py tests/test_autograd.py
              tests/test_nn.py tests/test_optim.py tests/test_conv2d.py tests/test_attention.py)
recheck_leaks() {
  local isa=$1 attempt
  for attempt in 1 2 3; do
    echo "sanitize: LeakSanitizer's tracer crashed; leak check again on ${LEAK_RECHECK[*]} (attempt $attempt)" >&2
    local log="$BUILD/pytest-$isa-leaks.log"
    if run_pytest "$isa" "$log" "${LEAK_RECHECK[@]}" >/dev/null; then return 0; fi
    tracer_crash_only "$log" || { cat "$log" | tail -n 30 >&2; return 1; }
  done
  return 1
}

run_tests() {
  install_python
  sanitizer_env
  local args=("$@"); [ ${#args[@]} -gt 0 ] || args=(tests)
  local isa status=0
  for isa in ${FASTDL_SAN_ISAS:-ref default}; do
    echo "sanitize: pytest ${args[*]} with FASTDL_CPU_ISA=$isa" >&2
    local t0=$SECONDS log="$BUILD/pytest-$isa.log"
    run_pytest "$isa" "$log" "${args[@]}" || status=$?
    if [ $status -ne 0 ] && tracer_crash_only "$log"; then
      status=0; recheck_leaks "$isa" || status=1
    fi
    echo "sanitize: ISA $isa finished in $((SECONDS - t0)) s (exit $status)" >&2
    [ $status -eq 0 ] || return $status
  done
}

case "${1:-all}" in
  build) build ;;
  test) shift; run_tests "$@" ;;
  python) shift; sanitizer_env; exec "$PY" "$@" ;;
  all) t0=$SECONDS; build; echo "sanitize: build took $((SECONDS - t0)) s" >&2; run_tests ;;
  *) echo "usage: $0 [build|test [pytest args]|python [args]|all]" >&2; exit 2 ;;
esac
