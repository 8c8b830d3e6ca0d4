# Switchboard: `make run` and `make test` on a fresh Debian 12 machine, as root.
# `make setup` is idempotent: with nothing changed it only checks and returns in seconds.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# `make run PORT=9000` or `PORT=9000 make run`
PORT ?= 8000
PYTEST_ARGS ?=

# Debian packages the project needs. Later features append here (chromium, dnsmasq, nftables, docker.io, ...).
APT_PACKAGES := python3 python3-venv python3-dev iproute2 util-linux procps make gcc

# apt-get, through sudo when not already root (sudo drops the environment, hence `env`).
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

# Re-run `pip install -e .[dev]` only when pyproject.toml is newer than this stamp.
DEPS_STAMP := $(VENV)/.deps-stamp

.PHONY: setup system-packages migrate run test bench lint clean

setup: system-packages $(DEPS_STAMP) migrate

# Install only what `dpkg -s` reports missing; `apt-get update` only if the first install fails.
system-packages:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
		dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing system packages:$$missing"; \
		$(APT_GET) install -y --no-install-recommends $$missing || \
		{ $(APT_GET) update && $(APT_GET) install -y --no-install-recommends $$missing; }; \
	fi

$(VPY): | system-packages
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

$(DEPS_STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install --disable-pip-version-check -e '.[dev]'
	touch $@

migrate: $(DEPS_STAMP)
	$(VPY) manage.py migrate --noinput

# The web app alone for now. LATER: start the agent (python -m netcore agent) alongside, and serve
# the ASGI app with daphne (Channels) instead of runserver.
run: setup
	exec $(VPY) manage.py runserver --noreload 127.0.0.1:$(PORT)

test: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: setup
	$(VPY) -m bench

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) *.egg-info build
