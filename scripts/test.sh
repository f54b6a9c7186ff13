#!/usr/bin/env bash
# The README's test command: make the virtual environment if needed, install, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# constraints.txt locks every dependency (see docs/production.md to regenerate it); the image uses it too.
.venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
exec .venv/bin/python -m pytest -q -ra "$@"
