#!/usr/bin/env bash
# LocalStack (S3, SQS, SNS, STS in host mode, no Docker) in a venv of its own, once per machine:
#   tests/e2e/install-localstack.sh        prints the venv's python on its last stdout line
# Idempotent: a stamp names the pinned version; a second run costs nothing.
# Exit 3: no suitable pyenv Python on this machine (the caller fails in CI, skips elsewhere).
#
# localstack-core 2026.3.0 declares Python >= 3.10 but imports warnings.deprecated (3.13+):
# on 3.12 every service plugin fails to load ("No component plugins found"). So 3.13 it is.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${LOCALSTACK_VENV:-.venv-localstack}
VERSION=2026.3.0
stamp="$VENV/.localstack-$VERSION"
started=$(date +%s)

if [ -f "$stamp" ] && "$VENV/bin/python" -c 'import localstack.aws.components' 2>/dev/null; then
  echo "localstack: $VERSION already in $VENV (0 s)" >&2
  echo "$PWD/$VENV/bin/python"
  exit 0
fi

py=${LOCALSTACK_PYTHON:-}
if [ -z "$py" ]; then
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for candidate in "$root"/versions/3.1[3-9]*/bin/python3; do
    [ -x "$candidate" ] && py=$candidate
  done
fi
if [ -z "$py" ] || ! "$py" -c 'import sys, ssl, venv; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
  echo "localstack: needs Python >= 3.13 (pyenv install 3.13, or LOCALSTACK_PYTHON=/path/to/python3.13)"
  exit 3
fi

rm -rf "$VENV"
"$py" -m venv "$VENV"
# cbor2 6 breaks LocalStack's CBOR protocol code; service-identity quiets twisted's TLS warning.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "localstack-core[runtime]==$VERSION" "cbor2<6" service-identity 2>&1 |
  { grep -v 'is ignored: it is neither a file nor a directory' || true; } >&2
"$VENV/bin/python" -c 'import localstack.aws.components'
touch "$stamp"
echo "localstack: installed $VERSION with $("$py" --version) in $(($(date +%s) - started)) s" >&2
echo "$PWD/$VENV/bin/python"
