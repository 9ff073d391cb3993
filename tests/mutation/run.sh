#!/usr/bin/env bash
# Mutation check of the rules that protect patients and the blind
# (tests/mutation/README.md): each mutant in tests/mutation/mutants/ is one
# small break of one rule. It is applied to a copy of the tree, the copy is
# built, and the tests run; a mutant is killed when a test fails, and
# survives when every test passes. Every mutant must be killed.
#
#   tests/mutation/run.sh                 every mutant, each against the tests its header names
#   tests/mutation/run.sh --full          every mutant against the whole suite (browser tests aside)
#   tests/mutation/run.sh NAME...         the mutants named (file names without .patch)
#
# Exit status: 0 when every mutant was killed, 1 when one survived or no
# longer applies to the code (refresh it: the rule moved), 2 on bad usage.
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
mutants_dir="$root/tests/mutation/mutants"
work=${IRT_MUTATION_DIR:-${TMPDIR:-/tmp}/irt-mutation}
full=0
names=()
for arg in "$@"; do
  case "$arg" in
    --full) full=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $arg (use --full or mutant names)" >&2; exit 2 ;;
    *) names+=("$arg") ;;
  esac
done
if [ ${#names[@]} -eq 0 ]; then
  for f in "$mutants_dir"/*.patch; do names+=("$(basename "$f" .patch)"); done
fi
for n in "${names[@]}"; do
  [ -f "$mutants_dir/$n.patch" ] || { echo "run.sh: no mutant $n in $mutants_dir" >&2; exit 2; }
done

# The copy: a detached worktree of HEAD with the working tree's changes, so
# that a mutant is checked against the code as it is now.
rm -rf "$work/src"
mkdir -p "$work"
git -C "$root" worktree prune
git -C "$root" worktree add --quiet --force --detach "$work/src" HEAD
git -C "$root" diff HEAD | (cd "$work/src" && git apply --allow-empty)
(cd "$work/src/tests/browser" && ln -sfn "$root/tests/browser/node_modules" node_modules 2>/dev/null || true)
cleanup() { git -C "$root" worktree remove --force "$work/src" >/dev/null 2>&1 || true; }
trap cleanup EXIT

export CCACHE_BASEDIR="$work" CCACHE_NOHASHDIR=1
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIRT_UNIT_TESTS=ON \
  "${launcher[@]}" >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }

killed=() survived=() stale=()
for n in "${names[@]}"; do
  patch="$mutants_dir/$n.patch"
  rule=$(sed -n 's/^# rule: //p' "$patch")
  tests=$(sed -n 's/^# tests: //p' "$patch")
  [ "$full" = 1 ] && tests='.'
  git -C "$work/src" checkout -q -- .
  git -C "$root" diff HEAD | (cd "$work/src" && git apply --allow-empty)
  echo "== $n: $rule"
  if ! (cd "$work/src" && git apply "$patch"); then
    echo "   STALE: the patch no longer applies; the rule moved, refresh the mutant"
    stale+=("$n"); continue
  fi
  if ! cmake --build "$work/build" -j"${IRT_JOBS:-2}" >"$work/$n.build.log" 2>&1; then
    echo "   STALE: the mutant does not build (see $work/$n.build.log)"
    stale+=("$n"); continue
  fi
  if ctest --test-dir "$work/build" -R "$tests" -E '^browser:' -j"${IRT_JOBS:-2}" >"$work/$n.test.log" 2>&1; then
    echo "   SURVIVED: every test matching '$tests' passed (see $work/$n.test.log)"
    survived+=("$n")
  else
    echo "   killed by: $(sed -n '/The following tests FAILED/,$p' "$work/$n.test.log" |
      sed -nE 's/^[[:space:]]+[0-9]+ - (.*) \([^)]*\)$/\1/p' | head -3 | paste -sd';' -)"
    killed+=("$n")
  fi
done
git -C "$work/src" checkout -q -- .

echo "mutants: ${#names[@]}, killed ${#killed[@]}, survived ${#survived[@]}, stale ${#stale[@]}"
[ ${#survived[@]} -eq 0 ] && [ ${#stale[@]} -eq 0 ]
