#!/usr/bin/env bash
# Performs the Dockerfile's install steps without Docker: copies what the builder stage COPYs
# (read from the Dockerfile itself) into a temp dir, makes a fresh venv, `pip install .` (the base
# package only, as in the image), then runs `worker --help` from that venv outside the repo.
# pip uses its usual configuration and cache, so this works wherever `pip install` does.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

work=$(mktemp -d "${TMPDIR:-/tmp}/dockerfile-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"

# Every `COPY <src>... <dest>` of the build context (not `COPY --from=…`), in order.
copied=0
while read -r -a words; do
  n=${#words[@]}
  for ((i = 1; i < n - 1; i++)); do
    src=${words[i]}
    case "$src" in --*) continue ;; esac
    cp -R "$src" "$work/src/"
    copied=$((copied + 1))
  done
done < <(grep -E '^COPY[[:space:]]' Dockerfile | grep -v -- '--from=')
if [ "$copied" -eq 0 ]; then
  echo "check-dockerfile-install: no COPY of the build context found in Dockerfile" >&2
  exit 1
fi
# What .dockerignore keeps out of the build context.
find "$work/src" \( -name __pycache__ -o -name '*.py[cod]' \) -prune -exec rm -rf {} +
rm -rf "$work/src/worker/local"

"$PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$work/src"

cd "$work"
"$work/venv/bin/worker" --help >/dev/null
# Only the base package: the local extras (moto, the face engine) must not be in the image.
if "$work/venv/bin/python" -c 'import moto' 2>/dev/null; then
  echo "check-dockerfile-install: moto is installed in the production venv" >&2
  exit 1
fi
# Every verb answers --help; the local verbs say in one line what to install.
for verb in $("$work/venv/bin/python" -c 'from worker.cli import VERBS; print(" ".join(v.__name__.rsplit(".", 1)[1] for v in VERBS))'); do
  "$work/venv/bin/worker" "$verb" --help >/dev/null
done
if "$work/venv/bin/worker" demo >"$work/demo.out" 2>&1 || [ "$(wc -l <"$work/demo.out")" -ne 1 ]; then
  echo "check-dockerfile-install: 'worker demo' without the local stack should fail in one line:" >&2
  cat "$work/demo.out" >&2
  exit 1
fi
echo "check-dockerfile-install: ok (pip install . in a fresh venv, worker --help runs)"
