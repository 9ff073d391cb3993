#!/usr/bin/env bash
# CTest entry for a browser test: TEST.js and its arguments (node_ui.test.js:
# IRT_NODE_BIN FIXTURE_BIN OUT_DIR; hub_ui.test.js: IRT_HUB_BIN IRT_NODE_BIN SOURCE_DIR OUT_DIR).
# Needs Debian's chromium and `npm ci` in this folder (packaging/dev.sh deps and test do both).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# Playwright and axe-core (the accessibility checker), each at the version package.json pins.
for dep in $(node -p "Object.keys(require('$here/package.json').dependencies).join(' ')"); do
  if [ ! -d "$here/node_modules/$dep" ]; then
    echo "browser test: $dep is not installed; run 'npm ci' in tests/browser (packaging/dev.sh test does)" >&2
    exit 1
  fi
  pinned=$(node -p "require('$here/package.json').dependencies['$dep']")
  installed=$(node -p "require('$here/node_modules/$dep/package.json').version")
  if [ "$installed" != "$pinned" ]; then
    echo "browser test: $dep $installed is installed but package.json pins $pinned; run 'npm ci' in tests/browser" >&2
    exit 1
  fi
done
if [ ! -x "${IRT_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "browser test: /usr/bin/chromium is missing; install Debian's chromium (packaging/dev.sh deps does)" >&2
  exit 1
fi
test=${1:?usage: run.sh TEST.js ARGS...}
shift
exec node "$here/$test" "$@"
