#!/usr/bin/env bash
# Builds the libFuzzer fuzzers (clang, ASan + UBSan) in build-fuzz/ and runs each for a while on its
# seed corpus. The committed corpus (tests/fuzz/corpus/<fuzzer>/) is only read: new inputs go to
# build-fuzz/fuzz-corpus/<fuzzer>/, which later runs start from, and crashes to build-fuzz/fuzz-artifacts/.
# Exits non-zero, naming the fuzzer and the input, if any fuzzer finds a crash, leak or timeout.
#
#   tests/fuzz/run.sh                        every fuzzer for 60 seconds, one after another
#   tests/fuzz/run.sh --seconds 600 fuzz_json fuzz_fhirpath   those two, ten minutes each
#
# Reproduce a finding: build-fuzz/tests/fuzz/<fuzzer> <input file>
set -euo pipefail
cd "$(dirname "$0")/../.."

all_fuzzers=(fuzz_json fuzz_search_query fuzz_fhirpath fuzz_nhs_number fuzz_bundle fuzz_xml fuzz_jwt fuzz_session)
# Longest input per fuzzer: above the seeds and a realistic input, small enough to mutate quickly.
declare -A max_len=([fuzz_json]=16384 [fuzz_search_query]=2048 [fuzz_fhirpath]=4096 [fuzz_nhs_number]=32
                    [fuzz_bundle]=16384 [fuzz_xml]=16384 [fuzz_jwt]=4096 [fuzz_session]=65536)

seconds=60
fuzzers=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    fuzz_*) [ -n "${max_len[$1]:-}" ] || { echo "run.sh: no fuzzer $1" >&2; exit 2; }
            fuzzers+=("$1"); shift ;;
    *) echo "run.sh: unknown argument $1 (--seconds N, fuzzer names)" >&2; exit 2 ;;
  esac
done
[ ${#fuzzers[@]} -gt 0 ] || fuzzers=("${all_fuzzers[@]}")

# What the fuzz build needs (Debian packages), installed by ./run.sh as it installs its own.
./run.sh --install clang libclang-rt-14-dev cmake ninja-build libboost1.81-dev libboost-url1.81-dev libssl-dev rapidjson-dev \
  libsqlite3-dev doctest-dev
build=build-fuzz
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCAREGATE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j2 --target "${fuzzers[@]}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for fuzzer in "${fuzzers[@]}"; do
  scratch="$build/fuzz-corpus/$fuzzer"
  artifacts="$build/fuzz-artifacts/$fuzzer"
  log="$build/fuzz-logs/$fuzzer.log"
  mkdir -p "$scratch" "$artifacts" "$(dirname "$log")"
  echo "== $fuzzer: ${seconds}s, -max_len=${max_len[$fuzzer]} (log: $log)"
  before=$(ls "$artifacts" | wc -l)
  status=0
  # The first corpus directory receives new inputs; the committed one after it is only read.
  "$build/tests/fuzz/$fuzzer" "$scratch" "tests/fuzz/corpus/$fuzzer" \
      -max_total_time="$seconds" -max_len="${max_len[$fuzzer]}" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$log" | sed 's/^/   /' || true
  if [ "$status" -ne 0 ] || [ "$(ls "$artifacts" | wc -l)" -ne "$before" ]; then
    input=$(grep -aoE 'Test unit written to [^ ]+' "$log" | tail -1 | sed 's/Test unit written to //')
    echo "!! $fuzzer FAILED (exit $status): input ${input:-see $artifacts}; see $log" >&2
    # The sanitizer's report, or the fuzzer's own message just before libFuzzer's "deadly signal".
    grep -a -m1 -B2 -E '^(==[0-9]+== ?ERROR|SUMMARY|.*runtime error)' "$log" | cut -c1-300 | sed 's/^/   /' >&2 || true
    failed+=("$fuzzer")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz/run.sh: findings in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz/run.sh: no findings"
