#!/usr/bin/env bash
# Installs this package's locked dependencies (fhirclient, SMART's JavaScript client) into
# conformance/smart/node_modules with `npm ci`, then runs check.mjs with the arguments given:
#
#   conformance/smart/run.sh --base-url https://localhost:9443/fhir --cacert certs/dev/ca.crt \
#       --token "$(build/caregate token --citizen 9000000009)" --nhs 9000000009 [--other-nhs NHS]
#
# Needs Node 18 or later and npm (Debian: apt-get install nodejs npm). npm ci installs exactly what
# package-lock.json names; from npm's cache when it holds them (--prefer-offline), else the registry.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "conformance/smart/run.sh needs node and npm (Debian: apt-get install nodejs npm)" >&2; exit 2; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' ||
  { echo "conformance/smart/run.sh needs Node 18 or later, not $(node --version)" >&2; exit 2; }

(cd "$here" && npm ci --silent --prefer-offline)

# check.mjs turns --cacert into NODE_EXTRA_CA_CERTS (Node reads it only at start-up).
exec node "$here/check.mjs" "$@"
