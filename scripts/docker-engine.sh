#!/bin/sh
# Start a Docker engine for the tests and benchmarks (and `make docker`), if none is running, and
# build the tiny local image they use. Idempotent: with an engine up and the image built, it only checks.
#
# The engine gets addresses inside 198.18.0.0/15 (the range tests may use), no masquerading, and a
# DOCKER-USER rule that drops anything a container would forward out of that range: nothing a test
# container sends can leave the machine. No registry is reachable, so the image is a busybox-static
# root filesystem imported with `docker import`.
set -eu

SOCKET=/var/run/docker.sock
IMAGE=${SWITCHBOARD_DOCKER_IMAGE:-switchboard/busybox:latest}
LOG=${SWITCHBOARD_DOCKER_LOG:-/var/log/switchboard-dockerd.log}
BIP=198.19.240.1/24
POOL=base=198.19.0.0/17,size=24
GUARD="-s 198.18.0.0/15 ! -d 198.18.0.0/15 -m comment --comment switchboard-egress-guard -j DROP"

engine_up() { docker -H "unix://$SOCKET" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ! engine_up; then
	command -v dockerd >/dev/null || { echo "dockerd is missing: apt-get install docker.io" >&2; exit 1; }
	echo "Starting dockerd (log: $LOG)"
	# shellcheck disable=SC2086
	setsid nohup dockerd --host "unix://$SOCKET" --bip "$BIP" --default-address-pool "$POOL" \
		--ip-masq=false --log-level warn >>"$LOG" 2>&1 </dev/null &
	tries=0
	until engine_up; do
		tries=$((tries + 1))
		if [ "$tries" -gt 120 ]; then
			echo "dockerd did not answer within 60 s; its log ($LOG) ends:" >&2
			tail -n 20 "$LOG" >&2
			exit 1
		fi
		sleep 0.5
	done
fi

# shellcheck disable=SC2086
iptables -w -C DOCKER-USER $GUARD 2>/dev/null || iptables -w -I DOCKER-USER $GUARD

if ! docker -H "unix://$SOCKET" image inspect "$IMAGE" >/dev/null 2>&1; then
	busybox=$(command -v busybox || true)
	[ -n "$busybox" ] && "$busybox" --list >/dev/null 2>&1 || { echo "busybox is missing: apt-get install busybox-static" >&2; exit 1; }
	root=$(mktemp -d)
	trap 'rm -rf "$root"' EXIT
	mkdir -p "$root/bin" "$root/etc" "$root/tmp"
	cp "$busybox" "$root/bin/busybox"
	for applet in $("$busybox" --list); do
		[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
	done
	echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
	echo "root:x:0:" >"$root/etc/group"
	echo "Building $IMAGE from $busybox"
	tar -C "$root" -c . | docker -H "unix://$SOCKET" import \
		--change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' - "$IMAGE" >/dev/null
fi
