#!/bin/sh
# `make run`: the web app (daphne, ASGI) and this machine's agent, together, on 127.0.0.1:$PORT.
# The agent runs as root (it changes the kernel); the web app never needs to.
# Once both are up it prints how to log in, last, in a box: the first admin's generated password is
# kept in var/admin-password (mode 0600; SWITCHBOARD_ADMIN_PASSWORD_FILE names another file) and shown
# on every start for as long as it still works, but only on a terminal: when the output goes to a pipe
# or a file (a log), the box says where the password is instead.
# Ctrl-C (exit status 130) or SIGTERM (exit status 0) stops both; neither is left running.
set -eu
cd "$(dirname "$0")/.."
PORT=${PORT:-8000}
PY=.venv/bin/python
URL="http://127.0.0.1:$PORT/"
PASSWORD_FILE=${SWITCHBOARD_ADMIN_PASSWORD_FILE:-${SWITCHBOARD_VAR_DIR:-var}/admin-password}

HIDE=--hide-password
[ -t 1 ] && HIDE=
LOGIN=$($PY manage.py ensureadmin --url "$URL" --password-file "$PASSWORD_FILE" $HIDE)
# A fresh token for the local agent each run (the web app keeps only its hash).
HOST=$(hostname)
TOKEN=$({ $PY manage.py hosttoken "$HOST" --rotate 2>/dev/null || $PY manage.py hosttoken "$HOST"; } | tail -n 1)
[ -n "$TOKEN" ] || { echo "could not make a token for host $HOST" >&2; exit 1; }

WEB=
AGENT=

# Whether any of the given processes still runs.
running() {
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}

# SIGTERM to the agent and the web app, up to 10 s for them to finish, SIGKILL after that; then exit $1.
stop() {
    trap - EXIT INT TERM
    for pid in $AGENT $WEB; do kill -TERM "$pid" 2>/dev/null || :; done
    i=0
    while running $AGENT $WEB && [ "$i" -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    for pid in $AGENT $WEB; do kill -KILL "$pid" 2>/dev/null || :; done
    wait || :
    exit "$1"
}
trap 'stop $?' EXIT
trap 'stop 130' INT
trap 'stop 0' TERM

# The web app's /healthz: the number of connected agents, or nothing while it does not answer.
agents() {
    $PY -c "import json, urllib.request as u; print(json.load(u.urlopen('${URL}healthz', timeout=1))['agents'])" \
        2>/dev/null || :
}

# A host's snapshot is one frame and grows with its size (about 4 MiB at 1000 endpoints):
# allow frames well beyond daphne's default of 1 MiB.
.venv/bin/daphne -b 127.0.0.1 -p "$PORT" --websocket-max-message-size 268435456 --websocket-max-frame-size 268435456 webapp.asgi:application &
WEB=$!

i=0
until [ -n "$(agents)" ]; do
    i=$((i + 1))
    [ "$i" -lt 100 ] || { echo "the web app did not start on port $PORT" >&2; exit 1; }
    running "$WEB" || { echo "the web app exited" >&2; exit 1; }
    sleep 0.2
done

SWITCHBOARD_AGENT_TOKEN=$TOKEN $PY -m netcore.agent --url "ws://127.0.0.1:$PORT/ws/agent/" &
AGENT=$!

# Let the agent connect (and log that it did) first, so that its lines do not push the box out of sight.
i=0
while [ "$(agents)" = 0 ] && [ "$i" -lt 50 ] && running "$AGENT"; do
    i=$((i + 1))
    sleep 0.2
done
sleep 0.5

LINE="================================================================================"
{
    printf '\n%s\n  Switchboard is running: %s\n\n' "$LINE" "$URL"
    if [ -n "$LOGIN" ]; then
        printf '%s\n' "$LOGIN" | sed 's/^/  /'
    else
        echo "  Log in at ${URL}accounts/login/ as your admin user."
    fi
    echo
    echo "  New admin password: .venv/bin/python manage.py ensureadmin --reset-password"
    echo "  Ctrl-C stops the web app and the agent."
    printf '%s\n\n' "$LINE"
}
wait "$WEB"
