#!/usr/bin/env bash
# Deploy checks (run by `./dev test`): terraform fmt, checkov, hadolint, and the Dockerfile's
# install steps in a fresh venv. No provider is downloaded: there is no `terraform init` here.
#   deploy/check.sh              all checks
# checkov lives in its own venv (its pins clash with the project's), made once and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
CHECKOV_VENV=${CHECKOV_VENV:-.venv-checkov}
# Pinned: a new checkov release brings new checks, which must not turn CI red on its own.
CHECKOV_VERSION=3.3.30

step() { printf '\n== deploy: %s\n' "$*" >&2; }

step "terraform fmt -check -recursive deploy/"
if command -v terraform >/dev/null 2>&1; then
  # No CLI configuration is needed for fmt; don't warn about a missing one.
  TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff deploy/
else
  echo "terraform is not on PATH: skipping terraform fmt (install Terraform >= 1.5 to run it)" >&2
fi

step "checkov $CHECKOV_VERSION on deploy/"
stamp="$CHECKOV_VENV/.checkov-$CHECKOV_VERSION"
if [ ! -f "$stamp" ]; then
  rm -rf "$CHECKOV_VENV"
  "$PY" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "checkov==$CHECKOV_VERSION"
  touch "$stamp"
fi
# --skip-download: no call to the vendor's platform; skips are in-line with their reasons.
"$CHECKOV_VENV/bin/checkov" --directory deploy/ --framework terraform --skip-download \
  --compact --quiet

step "hadolint Dockerfile"
"$VENV/bin/hadolint" Dockerfile
echo "hadolint: ok" >&2

step "Dockerfile install steps in a fresh venv"
deploy/check-dockerfile-install.sh
