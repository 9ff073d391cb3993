#!/bin/bash
# docs/validation.md traces each requirement to tests by their CTest names. This
# check keeps it true: every test the table names exists, and every requirement
# (a table row with an ID) names at least one. Usage: tests/check_validation.sh
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
doc=$root/docs/validation.md
known=$(mktemp)
trap 'rm -f "$known"' EXIT

# The CTest names: "<folder>: <TEST_CASE name>" (tests/CMakeLists.txt), the
# integration tests again on PostgreSQL, and the tests CMake adds by name.
for dir in "$root"/tests/*/; do
  folder=$(basename "$dir")
  for f in "$dir"*_test.cpp; do
    [ -e "$f" ] || continue
    # A name split over two lines is one C++ string: join them first.
    sed -z 's/"\n *"//g' "$f" | sed -n "s/.*TEST_CASE(\"\([^\"]*\)\".*/$folder: \1/p"
  done
done > "$known"
sed -n 's/^integration: /integration-postgresql: /p' "$known" > "$known.pg"
cat "$known.pg" >> "$known" && rm -f "$known.pg"
sed -n 's/.*add_test(NAME "\([^"$]*\)".*/\1/p' "$root/tests/CMakeLists.txt" >> "$known"
sed -n 's/^irt_fuzz_harness(\([a-z_]*\).*/fuzz: \1/p' "$root/tests/fuzz/CMakeLists.txt" >> "$known"

problems=0
while IFS= read -r name; do
  if ! grep -Fxq -- "$name" "$known"; then
    echo "docs/validation.md names a test that does not exist: '$name' (rename it there as in the test source, or remove it)"
    problems=$((problems + 1))
  fi
done < <(grep -o '`[a-z-]*: [^`]*`' "$doc" | tr -d '`')

while IFS= read -r row; do
  if ! grep -q '`[a-z-]*: [^`]*`' <<< "$row"; then
    echo "docs/validation.md: requirement $(cut -d'|' -f2 <<< "$row" | tr -d ' ') names no test"
    problems=$((problems + 1))
  fi
done < <(grep -E '^\| [A-Z]{2}-[0-9]+ \|' "$doc")

rows=$(grep -cE '^\| [A-Z]{2}-[0-9]+ \|' "$doc")
named=$(grep -o '`[a-z-]*: [^`]*`' "$doc" | sort -u | wc -l)
if [ "$problems" -ne 0 ]; then
  echo "check_validation: $problems problem(s) in docs/validation.md"
  exit 1
fi
echo "check_validation: $rows requirements, $named distinct tests named, each one exists"
