#!/usr/bin/env bash
# Builds the doctest suites under the sanitizers (clang) and runs them; the first report of any kind
# fails the run.
#
#   ASan + UBSan: all three test executables, in build-asan/ (-DCAREGATE_SANITIZE=address,undefined).
#     Not in build-fuzz/, though it is instrumented with both too: every test would pay for the
#     fuzzers' coverage instrumentation and full debug information (and that tree leaves UBSan's
#     -fsanitize=function out of gateway_net only, where clang 14 cannot compile it in coroutines),
#     and sharing the tree would save little.
#   TSan: storage_tests and gateway_tests (the writer thread, group commit, readers, the audit linger,
#     the checkpointer, backups while writing; the network server's threads and the whole application),
#     in build-tsan/ (-DCAREGATE_SANITIZE=thread). fhir_model_tests start no thread. With
#     CAREGATE_TEST_POSTGRESQL set (test.sh sets it to its cluster), storage_tests again on PostgreSQL,
#     whose engine runs threads SQLite's does not (the batch threads that answer reads).
#
#   tests/sanitize/run.sh                    both
#   tests/sanitize/run.sh address            only ASan + UBSan (or: thread, only TSan)
#
# Reproduce a finding: run the test executable named in the failure from its build directory, with
# the options below and the failing test case, e.g.
#   cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
#     tests/storage_tests --test-case='group commit*'
# (ASAN_OPTIONS / UBSAN_OPTIONS and build-asan for an ASan or UBSan one.)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

which=(address thread)
if [ $# -gt 0 ]; then
  case "$1" in
    address|thread) which=("$1") ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "sanitize/run.sh: unknown argument $1 (address or thread)" >&2; exit 2 ;;
  esac
fi

# What the sanitizer builds need (Debian packages), installed by ./run.sh as it installs its own: the
# sanitizers' runtimes (libclang-rt-14-dev, only recommended by clang) and llvm-symbolizer (llvm-14)
# for reports that name files and lines.
./run.sh --install clang libclang-rt-14-dev llvm-14 cmake ninja-build libboost1.81-dev libboost-url1.81-dev \
  libssl-dev rapidjson-dev libsqlite3-dev doctest-dev

# The suites run on SQLite; the PostgreSQL database given is for the one run on it (below).
postgresql_for_tests=${CAREGATE_TEST_POSTGRESQL:-}
unset CAREGATE_TEST_POSTGRESQL

symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
[ -x "$symbolizer" ] || symbolizer=$(command -v llvm-symbolizer || true)
# Every report is fatal: halt_on_error, and the process exits at once with a non-zero status. Not
# abort_on_error: doctest's SIGABRT handler then hung gateway_tests after a TSan report (the report's
# stack names the test case's file and line anyway).
common="halt_on_error=1:abort_on_error=0:print_stacktrace=1${symbolizer:+:external_symbolizer_path=$symbolizer}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-$common:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-$common}"
suppressions=$root/tests/sanitize/tsan-suppressions.txt # third-party code only, each with the reason
[ -f "$suppressions" ] || suppressions=""
export TSAN_OPTIONS="${TSAN_OPTIONS:-$common:second_deadlock_stack=1${suppressions:+:suppressions=$suppressions}}"

# configure <build dir> <sanitizers>: -O1 and line tables only (file:line in reports, at a fraction
# of full debug information's compile time). NDEBUG stays undefined, so the debug asserts of the
# invariants (storage/src/relational/engine.hpp and the planner) run here, which the Release build
# compiles out.
configure() {
  [ -f "$1/build.ninja" ] && return 0
  CC=clang CXX=clang++ cmake -S . -B "$1" -G Ninja -DCAREGATE_SANITIZE="$2" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" >/dev/null
}

failed=()
# run <build dir> <label> <test executable> [doctest arguments...]
run() {
  local build=$1 label=$2 exe=$3; shift 3
  local log="$build/sanitize-logs/$exe${log_suffix:-}.log"
  mkdir -p "$(dirname "$log")"
  echo "== $label: $exe $* (log: $log)"
  local start=$SECONDS status=0
  # The working directory ctest gives them (tests/CMakeLists.txt).
  (cd "$build" && "./tests/$exe" --no-intro --no-version "$@") >"$log" 2>&1 || status=$?
  tail -n 3 "$log" | grep -E '^\[doctest\] (test cases|assertions|Status)' | sed 's/^/   /' || true
  echo "   $((SECONDS - start)) s"
  if [ "$status" -ne 0 ]; then
    echo "!! $label $exe FAILED (exit $status); see $log" >&2
    # The sanitizer's report, else the failing checks doctest names.
    { grep -a -m3 -A12 -E '^(==[0-9]+==ERROR|WARNING: ThreadSanitizer|SUMMARY: |.*runtime error:)' "$log" ||
      grep -a -m5 -B2 -E '(ERROR|FATAL ERROR|CRASHED):' "$log"; } | cut -c1-300 | sed 's/^/   /' >&2 || true
    failed+=("$label:$exe")
  fi
}

for sanitizer in "${which[@]}"; do
  case "$sanitizer" in
    address)
      build=build-asan
      configure "$build" address,undefined
      # caregate too: gateway_tests run it (caregate token, caregate import), instrumented as well.
      cmake --build "$build" -j2 --target fhir_model_tests storage_tests gateway_tests caregate
      for exe in fhir_model_tests storage_tests gateway_tests; do run "$build" "ASan+UBSan" "$exe"; done
      ;;
    thread)
      build=build-tsan
      configure "$build" thread
      cmake --build "$build" -j2 --target storage_tests gateway_tests caregate
      for exe in storage_tests gateway_tests; do run "$build" "TSan" "$exe"; done
      if [ -n "$postgresql_for_tests" ]; then
        export CAREGATE_TEST_POSTGRESQL=$postgresql_for_tests
        log_suffix=-postgresql run "$build" "TSan on PostgreSQL" storage_tests
        unset CAREGATE_TEST_POSTGRESQL
      fi
      ;;
  esac
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "sanitize/run.sh: findings or failures in ${failed[*]}" >&2
  exit 1
fi
echo "sanitize/run.sh: no findings"
