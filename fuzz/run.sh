#!/usr/bin/env bash
# fuzz/run.sh BUILD_DIR RUNS SECONDS JOBS [TARGET...]: runs each libFuzzer target of BUILD_DIR for RUNS
# executions (or SECONDS, whichever ends first), JOBS targets at a time, from a working copy of
# fuzz/corpus/<target> plus fuzz/regressions/<target>, and prints one line per target: executions,
# coverage (edges), features, corpus size, crashes. Crashing inputs land in BUILD_DIR/fuzz-work/crashes/.
set -uo pipefail
build=$1 runs=$2 seconds=$3 jobs=$4
shift 4
root=$(cd "$(dirname "$0")/.." && pwd)
work=$build/fuzz-work
mkdir -p "$work"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/fuzz/targets/*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

export ASAN_OPTIONS=detect_container_overflow=0:detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

run_target() {
  local t=$1 corpus=$work/corpus/$1 crashes=$work/crashes/$1
  mkdir -p "$corpus" "$crashes"
  local seeds=("$root/fuzz/corpus/$t")
  [ -d "$root/fuzz/regressions/$t" ] && seeds+=("$root/fuzz/regressions/$t")
  local start=$(date +%s)
  "$build/fuzz_$t" -runs="$runs" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
    -malloc_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$crashes/" \
    "$corpus" "${seeds[@]}" > "$work/$t.log" 2>&1
  local rc=$? took=$(( $(date +%s) - start ))
  local execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$t.log" | grep -o '[0-9]*$')
  local last=$(grep -E '^#[0-9]+' "$work/$t.log" | tail -1)
  local cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*$')
  local ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*$')
  local units=$(grep -o 'corp: [0-9]*' <<<"$last" | grep -o '[0-9]*$')
  local found=$(find "$crashes" -type f | wc -l)
  printf '%-20s execs %9s  cov %6s  ft %7s  corpus %5s  crashes %2s  %5ss  rc %s\n' \
    "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${units:-?}" "$found" "$took" "$rc"
}
export -f run_target
export build runs seconds work root

printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_target {}'
status=0
for t in "${targets[@]}"; do
  if [ -n "$(find "$work/crashes/$t" -type f 2>/dev/null)" ]; then
    echo "$t: crashing inputs in $work/crashes/$t (log: $work/$t.log)"
    status=1
  fi
done
exit $status
