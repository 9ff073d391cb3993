#!/usr/bin/env bash
# The project's one entry point on a Debian 12 machine.
#   deps   install what is missing (apt-get; as root or through sudo); idempotent
#   build  configure and build the plain build (build/: the programs, the integration tests, the benchmarks)
#   test   deps + build, then the sanitizer build (build-asan/, clang: the unit tests and the
#          fuzz harnesses), then the unit tests and a short run of each harness there, and the
#          integration, browser and demo tests in build/
#   demo   deps + build, then the main job: a hub and site tablets on loopback, offline and back
#          (packaging/demo.sh); it ends by printing the hub dashboard's and a tablet's URLs, and
#          they keep running for a look in a browser until Ctrl-C, or with
#          'demo --no-wait' the demo stops and exits (CTest runs that: label demo)
#   bench  deps + build, then the benchmarks, each printing its figure, limit and ratio;
#          then bench/results.json and bench/results.md gather every figure
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
jobs=${IRT_JOBS:-2}

apt_packages=(g++ cmake make pkg-config libsqlite3-dev sqlite3 libsodium-dev libboost-dev
              libcpp-httplib-dev nlohmann-json3-dev doctest-dev libssl-dev ca-certificates
              openssl curl jq chromium libpq-dev postgresql libjs-chart.js libxml2-dev libxml2-utils
              clang libclang-rt-14-dev  # the sanitizer build: clang, its sanitizer and libFuzzer runtimes
              faketime                  # the clock-skew tests run nodes days off
              dpkg-dev file systemd)    # the .deb packages: cpack runs dpkg-shlibdeps and file; systemd-analyze verify

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@";
  else echo "dev.sh: need root or sudo to install packages: $*" >&2; exit 1; fi
}

missing_packages() {  # one a line
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
  # For the browser tests; Debian 12's Node.js 18 will do (tests/browser/package.json).
  command -v npm >/dev/null || printf '%s\n' nodejs npm
}

deps() {
  local missing
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]})); then
    echo "dev.sh: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "dev.sh: all build and test packages are installed"
  fi
}

configure_and_build() { # dir, extra cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -DIRT_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

# Debug information at level 1 (line tables and functions: backtraces and
# sanitizer reports keep file and line, debuggers lose local variables): full
# -g costs 40 % more compile time at -O2, and the test run waits for it.
build() {
  echo "== $SECONDS s: plain build"
  configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DIRT_UNIT_TESTS=OFF
}

# CTest runs 'dev.sh demo --no-wait' inside build/ (tests/CMakeLists.txt) with
# IRT_DEV_PREBUILT=1: installing, configuring or building there could change the
# build under the tests running beside it, or race a build in progress. So it only
# checks that the packages are installed and that irt-hub and irt-node are newer
# than every source they are built from, and fails otherwise.
check_prebuilt() {
  local missing bin folder stale
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]})); then
    echo "dev.sh: ${missing[*]} not installed; run 'packaging/dev.sh deps'" >&2; exit 1
  fi
  for bin in hub/irt-hub node/irt-node; do
    folder=${bin%%/*}
    [ -x "build/$bin" ] || { echo "dev.sh: build/$bin is missing; run 'packaging/dev.sh build'" >&2; exit 1; }
    stale=$(find crypto shared storage sync "$folder" -newer "build/$bin" \( -name '*.cpp' -o -name '*.h' \) -print -quit)
    if [ -n "$stale" ]; then
      echo "dev.sh: build/$bin is older than $stale; run 'packaging/dev.sh build' first" >&2; exit 1
    fi
  done
}

# The unit tests run under the sanitizers, built with clang so that the same
# build also links the libFuzzer harnesses (tests/fuzz/README.md): the libraries
# carry libFuzzer's coverage instrumentation (IRT_FUZZ), and no third build of
# the project is needed for them.
build_asan() {
  echo "== $SECONDS s: sanitizer build"
  cmake -S . -B build-asan -DCMAKE_CXX_COMPILER=clang++ -DIRT_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-g1" -DIRT_SANITIZE=ON -DIRT_FUZZ=ON >/dev/null
  cmake --build build-asan -j "$jobs" --target irt-unit-tests irt-fuzz-harnesses
}

browser_deps() {  # Playwright for tests/browser, pinned by its package-lock.json
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
}

run_tests() {
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # The unit tests run once, under the sanitizers (the hub's on both engines);
  # the plain build has none (IRT_UNIT_TESTS=OFF above), and runs the rest,
  # the Monte Carlo checks (label statistics) among them.
  echo "== $SECONDS s: sanitizer build: unit tests and fuzz harnesses"
  ctest --test-dir build-asan -L 'unit|fuzz' --output-on-failure -j "$jobs"
  echo "== $SECONDS s: plain build: every test"
  ctest --test-dir build --output-on-failure -j "$jobs"
  echo "== $SECONDS s: done"
}

case "${1:-}" in
  deps) deps ;;
  build) build ;;
  test) deps; browser_deps; build; build_asan; run_tests ;;
  demo)
    if [ "${IRT_DEV_PREBUILT:-}" = 1 ]; then check_prebuilt; else deps; build; fi
    exec packaging/demo.sh "$here/build" "${@:2}" ;;
  bench)
    deps; build
    figures=$(mktemp); trap 'rm -f "$figures"' EXIT
    for b in build/bench/irt-bench-*; do echo "== $b"; IRT_BENCH_RESULTS=$figures "$b"; done
    packaging/bench_summary.sh "$figures" ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ] && { echo "dev.sh: unknown command '$1'" >&2; exit 2; }; exit 0 ;;
esac
