#!/usr/bin/env bash
# Quick start: installs what is missing (Debian packages), builds caregate (Release), makes the
# development certificates if absent, and serves the FHIR API with demo data on an embedded SQLite
# database (./caregate.db) at https://localhost:8443/fhir.
#
#   ./run.sh                  set up and serve (extra arguments go to `caregate serve`)
#   ./run.sh --setup-only     set up and build, do not serve (./test.sh uses this)
#   ./run.sh --install P...   only install those Debian packages that are missing (the bench and
#                             test scripts install what they need beyond the build so)
set -euo pipefail
cd "$(dirname "$0")"

packages=(g++ cmake ninja-build ccache pkg-config libboost1.81-dev libboost-url1.81-dev libssl-dev openssl
          rapidjson-dev libsqlite3-dev sqlite3 libpq-dev doctest-dev python3 curl)

# install_missing PACKAGE...: installs those of the Debian packages that are not installed.
install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "run.sh: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  # The citizen app's one dependency, SMART's fhirclient, compiled into caregate (gateway/citizen_app).
  # Only its browser build is used: fhirclient's optional and peer dependencies (React Native, Expo) are not.
  (cd gateway/citizen_app && npm ci --silent --prefer-offline --no-audit --no-fund --omit=optional --omit=peer)
  if [ ! -f build/build.ninja ]; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build build
}

if [ "${1:-}" = "--install" ]; then
  shift
  install_missing "$@"
  exit 0
fi
# Node.js and npm fetch the citizen app's fhirclient (gateway/citizen_app) and run the SMART client
# and browser checks of ./test.sh (conformance/smart/, tests/browser/); a machine that has
# them from elsewhere keeps its own.
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
install_missing "${packages[@]}"
build
certs/make-dev-certs.sh --out certs/dev >/dev/null

if [ "${1:-}" = "--setup-only" ]; then
  exit 0
fi
exec build/caregate serve --demo-data "$@"
