#!/usr/bin/env bash
# Gathers the figures the benchmarks recorded (one JSON line each, bench/bench_report.h)
# into bench/results.json and a Markdown table, bench/results.md.
# Called by 'packaging/dev.sh bench' with the file the benchmarks appended to.
set -euo pipefail
lines=${1:?usage: bench_summary.sh FIGURES.jsonl}
here=$(cd "$(dirname "$0")/.." && pwd)
machine=$(jq -n --arg cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
  --argjson cores "$(nproc)" --arg kernel "$(uname -r)" \
  --arg commit "$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  '{date: $date, commit: $commit, cpu: $cpu, cores: $cores, kernel: $kernel}')
jq -s --argjson machine "$machine" '{machine: $machine, figures: .}' "$lines" > "$here/bench/results.json"
jq -r '
  def num: if . >= 100 then (. | round | tostring) else ((. * 100 | round) / 100 | tostring) end;
  "# Benchmark results",
  "",
  "\(.machine.date), commit \(.machine.commit), \(.machine.cores) cores (\(.machine.cpu)).",
  "Each figure is judged against a limit measured in the same run (or, where it says so, a",
  "fixed target); the ratio is oriented so that higher is better.",
  "",
  "| benchmark | figure | value | limit | ratio | target | |",
  "|---|---|---|---|---|---|---|",
  (.figures[] | "| \(.benchmark) | \(.figure) | \(.value | num) \(.unit) | \(.limit): \(.limit_value | num) | \(.ratio | num) | \(.target) | \(if .meets_target then "meets" else "**below**" end) |")
' "$here/bench/results.json" > "$here/bench/results.md"
echo "bench: $(jq '.figures | length' "$here/bench/results.json") figures, $(jq '[.figures[] | select(.meets_target | not)] | length' "$here/bench/results.json") below target: bench/results.json, bench/results.md"
