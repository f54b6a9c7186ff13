#!/usr/bin/env bash
# The suite against the lowest version pyproject.toml allows of each direct dependency
# (uv's --resolution lowest-direct), in .venv-lowest; arguments go to pytest, e.g.
#   bash scripts/test-lowest.sh tests/ingest -m "not vllm"
# Proves the floors in pyproject.toml are versions the code runs on. The locked run is scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-lowest
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
pip_quiet() { "$VENV/bin/pip" install -q --disable-pip-version-check "$@"; }
pip_quiet 'uv>=0.5'
# torch is pinned to its CPU build, which pip finds through this machine's pip configuration
# (find-links); install it first so uv keeps it instead of resolving the CUDA build.
pip_quiet torch==2.13.0

# uv does not read pip's configuration: pass on its find-links, extra indexes and constraints.
setting() { "$VENV/bin/pip" config get "global.$1" 2>/dev/null || true; }
sources=()
for link in $(setting find-links) ${PIP_FIND_LINKS:-}; do sources+=(--find-links "$link"); done
for index in $(setting extra-index-url) ${PIP_EXTRA_INDEX_URL:-}; do sources+=(--extra-index-url "$index"); done
for file in $(setting constraint) ${PIP_CONSTRAINT:-}; do sources+=(--constraint "$file"); done

"$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --resolution lowest-direct \
    --index-strategy unsafe-best-match "${sources[@]}" -e '.[test]'
"$VENV/bin/uv" pip list --python "$VENV/bin/python" > "$VENV/resolved.txt"
exec "$VENV/bin/python" -m pytest -q -ra -p no:cacheprovider "$@"
