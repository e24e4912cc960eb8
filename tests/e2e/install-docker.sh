#!/usr/bin/env bash
# A Docker engine and debootstrap from Debian's packages, once per machine:
#   tests/e2e/install-docker.sh        prints the engine's own client (…/docker) on its last line
# Idempotent: nothing is installed when dockerd and debootstrap are there (0 s).
# Exit 3: no apt-get on this machine, or not root (the caller fails in CI, skips elsewhere).
set -euo pipefail
started=$(date +%s)

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "docker: dockerd/debootstrap missing and no apt-get as root to install them (apt-get install docker.io debootstrap)"
    exit 3
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null
  echo "docker: installed docker.io and debootstrap in $(($(date +%s) - started)) s" >&2
else
  echo "docker: dockerd and debootstrap already installed (0 s)" >&2
fi
# The client that ships with this dockerd (another `docker` may come first on PATH).
client="$(dirname "$(readlink -f "$(command -v dockerd)")")/../bin/docker"
[ -x "$client" ] || client=$(command -v docker)
readlink -f "$client"
