#!/usr/bin/env bash
# Installs this package's locked dependencies (@medplum/core, Medplum's FHIR client, and undici) into
# conformance/bulk/node_modules with `npm ci`, then runs Bulk Data exports with that client
# (export.mjs) and checks what it downloaded (check.mjs):
#
#   conformance/bulk/run.sh --base-url https://localhost:8443/fhir --cacert certs/dev/ca.crt \
#       --cert certs/dev/client-QZZ.crt --key certs/dev/client-QZZ.key --token TOKEN \
#       [--group ID] [--patient] [--kickoff post|get|both] [--allow-empty] --out DIR
#
# Needs Node 18 (18.17 or later: what undici 6 declares; @medplum/core 4.0.0 declares 18.0) or any
# later Node, 20 and 22 included, and npm; Debian 12's own nodejs (18.20) and npm packages will do.
# npm ci installs exactly what package-lock.json names; from npm's cache when it holds them
# (--prefer-offline), else the registry. Exit status 0 when every check passed, 1 when one failed,
# 2 for a usage error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "conformance/bulk/run.sh needs node and npm (Debian: apt-get install nodejs npm)" >&2; exit 2; }
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 17) ? 0 : 1)' ||
  { echo "conformance/bulk/run.sh needs Node 18.17 or later, not $(node --version)" >&2; exit 2; }

(cd "$here" && npm ci --silent --prefer-offline)

# export.mjs checks the arguments (exit 2 on a usage error, before any request); check.mjs takes the
# same ones and reads only --out and --allow-empty.
status=0
node "$here/export.mjs" "$@" || status=$?
[[ $status -eq 2 ]] && exit 2
node "$here/check.mjs" "$@" || status=1
exit "$status"
