# Sourced by bin/test and bin/demo: create .venv and install the package.
# Re-runs the install only when pyproject.toml changed since the last one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
TORCH_PIN="torch==2.13.0"  # a CPU wheel here; an unpinned torch pulls GBs of CUDA

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.fprescore-installed"
# pyproject.toml, setup.py and the C source: a change to any of them reinstalls (and rebuilds).
want="$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT"/rescorer/formats/*.c | sha256sum | cut -d' ' -f1) $TORCH_PIN ${FPRESCORE_EXTRAS:-test}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing $TORCH_PIN and fprescore[${FPRESCORE_EXTRAS:-test}]" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$TORCH_PIN" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -e "$ROOT[${FPRESCORE_EXTRAS:-test}]" "$TORCH_PIN" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
  "$VENV/bin/python" -c "import rescorer, torch, typer, lhotse, kaldialign, sentencepiece" \
    || { echo "[setup] install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
