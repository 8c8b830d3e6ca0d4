#!/bin/sh
# `make run`: the web app (daphne, ASGI) and this machine's agent, together, on 127.0.0.1:$PORT.
# Ctrl-C stops both. The agent runs as root (it changes the kernel); the web app never needs to.
set -eu
cd "$(dirname "$0")/.."
PORT=${PORT:-8000}
PY=.venv/bin/python

$PY manage.py ensureadmin --url "http://127.0.0.1:$PORT/"
# A fresh token for the local agent each run (the web app keeps only its hash).
HOST=$(hostname)
TOKEN=$({ $PY manage.py hosttoken "$HOST" --rotate 2>/dev/null || $PY manage.py hosttoken "$HOST"; } | tail -n 1)
[ -n "$TOKEN" ] || { echo "could not make a token for host $HOST" >&2; exit 1; }

# A host's snapshot is one frame and grows with its size (about 4 MiB at 1000 endpoints):
# allow frames well beyond daphne's default of 1 MiB.
.venv/bin/daphne -b 127.0.0.1 -p "$PORT" --websocket-max-message-size 268435456 --websocket-max-frame-size 268435456 webapp.asgi:application &
WEB=$!
AGENT=
trap 'kill $WEB $AGENT 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

i=0
until $PY -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 100 ] || { echo "the web app did not start on port $PORT" >&2; exit 1; }
    kill -0 "$WEB" 2>/dev/null || { echo "the web app exited" >&2; exit 1; }
    sleep 0.2
done

SWITCHBOARD_AGENT_TOKEN=$TOKEN $PY -m netcore.agent --url "ws://127.0.0.1:$PORT/ws/agent/" &
AGENT=$!
echo "Switchboard is running: http://127.0.0.1:$PORT/  (Ctrl-C stops the web app and the agent)"
wait "$WEB"
