#!/usr/bin/env bash
# Installs this package's locked dependencies (puppeteer-core, axe-core) into tests/browser/node_modules
# with `npm ci`, then runs journey.mjs with the arguments given (see its header). Needs Node 18 or
# later, npm, and Debian's chromium (./run.sh --install chromium).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "tests/browser/run.sh needs node and npm (Debian: apt-get install nodejs npm)" >&2; exit 2; }
command -v chromium >/dev/null || { echo "tests/browser/run.sh needs chromium (./run.sh --install chromium)" >&2; exit 2; }
(cd "$here" && npm ci --silent --prefer-offline --no-audit --no-fund)
exec node "$here/journey.mjs" --chromium "$(command -v chromium)" "$@"
