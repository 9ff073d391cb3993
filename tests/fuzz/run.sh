#!/usr/bin/env bash
# Runs the libFuzzer harnesses of tests/fuzz/ (tests/fuzz/README.md).
#   tests/fuzz/run.sh [--build DIR] [SECONDS] [HARNESS...]
# Each harness (all of them by default) runs for SECONDS (default 60) from its
# checked-in corpus, tests/fuzz/corpus/NAME/, and the inputs it found before in
# DIR/fuzz/corpus/NAME/, where it adds what it finds now (the checked-in corpus
# is only read). DIR is the build with IRT_FUZZ=ON (default build-asan, as
# packaging/dev.sh makes it). A crash, a sanitizer report or a failed check
# stops that harness; the input is saved under DIR/fuzz/artifacts/NAME/ and the
# script ends non-zero after the others ran, naming it and how to replay it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
build="$source_dir/build-asan"
if [ "${1:-}" = --build ]; then build=$(cd "$2" && pwd); shift 2; fi
seconds=60
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then seconds=$1; shift; fi
harnesses=("$@")
if ((${#harnesses[@]} == 0)); then
  for d in "$here"/corpus/*/; do harnesses+=("$(basename "$d")"); done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for name in "${harnesses[@]}"; do
  bin="$build/tests/fuzz/irt-fuzz-$name"
  if [ ! -x "$bin" ]; then
    echo "run.sh: $bin is missing; build it: cmake --build $build --target irt-fuzz-harnesses" >&2
    exit 2
  fi
  found="$build/fuzz/corpus/$name" artifacts="$build/fuzz/artifacts/$name"
  mkdir -p "$found" "$artifacts"
  echo "== fuzz $name for $seconds s"
  # -timeout: one input taking this long is a hang; -rss_limit_mb: libFuzzer's default.
  if ! "$bin" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$artifacts/" "$found" "$here/corpus/$name" 2>"$build/fuzz/$name.log"; then
    tail -n 40 "$build/fuzz/$name.log" >&2
    echo "run.sh: $name failed; its input is in $artifacts/ (replay: $bin FILE; add it to" \
         "tests/fuzz/corpus/$name/ once fixed)" >&2
    failed+=("$name")
  else
    grep -E '^(stat::number_of_executed_units|Done)' "$build/fuzz/$name.log" || true
  fi
done
if ((${#failed[@]})); then
  echo "run.sh: failed: ${failed[*]}" >&2
  exit 1
fi
