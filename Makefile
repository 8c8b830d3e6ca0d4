# Switchboard: `make run` and `make test` on a fresh Debian 12 machine, as root.
# `make setup` is idempotent: with nothing changed it only checks and returns in seconds.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# `make run PORT=9000` or `PORT=9000 make run`
PORT ?= 8000
PYTEST_ARGS ?=

# Debian packages the project needs. nodejs/npm: the browser's JavaScript (Cytoscape.js) comes from
# npm; chromium: browser tests; redis-server and postgresql: the scale-out test (two web workers sharing
# them); dnsmasq-base: the service catalog's DNS, one per network, run by the agent; dnsperf: its benchmark;
# tshark (with dumpcap): packet capture, run by the agent, and a captured packet's decode in the web app.
APT_PACKAGES := python3 python3-venv python3-dev iproute2 util-linux procps make gcc \
	nodejs chromium redis-server postgresql nftables dnsmasq-base dnsperf tshark

# apt-get, through sudo when not already root (sudo drops the environment, hence `env`).
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

# Re-run `pip install -e .[dev]` only when pyproject.toml is newer than this stamp.
DEPS_STAMP := $(VENV)/.deps-stamp

# The agent as one file any host's python3 (3.11+) runs, served by the web app's Hosts page.
# Rebuilt only when a file of netcore, the build script or the pinned dependencies change.
AGENT_PYZ := dist/switchboard-agent.pyz
AGENT_SOURCES := $(shell find netcore -type f -not -path '*/__pycache__/*')

.PHONY: setup system-packages migrate agent docker run test bench lint clean lab lab-down

setup: system-packages $(DEPS_STAMP) node_modules/.stamp migrate $(AGENT_PYZ)

# PostgreSQL without a cluster of the system's: the tests start throwaway ones of their own. The
# server package creates and starts a "main" cluster unless postgresql-common's createcluster.conf
# says create_main_cluster = false, so postgresql-common comes first, then that line, then the rest.
PG_CREATECLUSTER := /etc/postgresql-common/createcluster.conf

# Install only what `dpkg -s` reports missing; `apt-get update` only if the first install fails.
system-packages:
	@set -e; \
	missing() { for p in "$$@"; do \
		dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' || echo "$$p"; \
	done; }; \
	install() { [ $$# -gt 0 ] || return 0; echo "Installing system packages: $$*"; \
		$(APT_GET) install -y --no-install-recommends "$$@" || \
		{ $(APT_GET) update && $(APT_GET) install -y --no-install-recommends "$$@"; }; }; \
	install $$(missing postgresql-common); \
	grep -qs '^create_main_cluster = false' $(PG_CREATECLUSTER) || \
		$(SUDO) sed -i -E '/^#?[[:space:]]*create_main_cluster[[:space:]]*=/d; $$a create_main_cluster = false' \
			$(PG_CREATECLUSTER); \
	install $$(missing $(APT_PACKAGES))

$(VPY): | system-packages
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

$(DEPS_STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install --disable-pip-version-check -e '.[dev]'
	touch $@

# npm comes with some nodejs builds (NodeSource) and is a package of its own in Debian's.
node_modules/.stamp: package.json package-lock.json | system-packages
	command -v npm >/dev/null || $(APT_GET) install -y --no-install-recommends npm
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

migrate: $(DEPS_STAMP)
	$(VPY) manage.py migrate --noinput

# netcore with the pure-Python code of what it imports (websockets, PyYAML): no Django, no web app.
agent: $(AGENT_PYZ)

$(AGENT_PYZ): scripts/build_agent.py $(AGENT_SOURCES) $(DEPS_STAMP)
	$(VPY) scripts/build_agent.py --output $@

# A Docker engine for the tests and benchmarks (Debian's docker.io; addresses inside 198.18.0.0/15,
# nothing forwarded out of that range) and the local busybox image they run: scripts/docker-engine.sh.
# `make run` does not need it: the dashboard shows Docker when an engine runs, and says how otherwise.
DOCKER_PACKAGES := docker.io busybox-static

docker: setup
	@set -e; for p in $(DOCKER_PACKAGES); do \
		dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then echo "Installing system packages:$$missing"; \
		$(APT_GET) install -y --no-install-recommends $$missing || \
		{ $(APT_GET) update && $(APT_GET) install -y --no-install-recommends $$missing; }; fi
	$(SUDO) scripts/docker-engine.sh

# The web app (daphne) and this machine's agent together; see scripts/run-local.sh.
run: setup
	PORT=$(PORT) exec scripts/run-local.sh

test: setup docker
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: setup docker
	$(VPY) -m bench

# Simulated hosts lab1..labN on this machine, each with its own agent, reporting to the dashboard that
# `make run` serves on PORT (see the README and lab/). `make lab HOSTS=5`; `make lab-down` removes them.
HOSTS ?= 3
lab: setup
	$(VPY) -m lab up --hosts $(HOSTS) --port $(PORT)

lab-down:
	$(VPY) -m lab down

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) node_modules *.egg-info build dist
