"""Django settings for Switchboard.

Configuration comes from the environment: SWITCHBOARD_SECRET_KEY, SWITCHBOARD_DEBUG,
SWITCHBOARD_ALLOWED_HOSTS (comma-separated), SWITCHBOARD_TRUSTED_ORIGINS (comma-separated public
URLs, for CSRF and browsers' websockets behind a proxy), DATABASE_URL (postgres://user:pass@host:port/name,
postgres://user@/name?host=/socket/dir or sqlite:///path), REDIS_URL (redis://host:6379/0, the
channel layer shared by several workers), SWITCHBOARD_AGENT_LEASE (seconds a host counts as
online after its agent's connection last renewed its presence; default 15), SWITCHBOARD_BEHIND_TLS
(1: served through a TLS reverse proxy, see "Security" at the end), SWITCHBOARD_MAX_BODY (largest
request body in bytes; default 16 MiB) and SWITCHBOARD_EMAIL_HOST, SWITCHBOARD_EMAIL_PORT,
SWITCHBOARD_EMAIL_FROM (mail for password resets; without a host there is no password reset).
SWITCHBOARD_LOGIN_FAILURES (failed logins or API tokens before a lockout; default 10) and
SWITCHBOARD_LOGIN_LOCKOUT (its seconds; default 900) throttle logins per account and per address
(see "Login throttling" at the end).
SWITCHBOARD_TRAFFIC_HISTORY_DAYS (default 7): how long ended traffic edges are kept.
Without them: a secret key generated once into var/secret_key, DEBUG off, SQLite in var/db.sqlite3,
an in-memory channel layer (one process).
SWITCHBOARD_VAR_DIR (default: var/ in the repository; a relative path is taken from the repository) is
where those files live, with `make run`'s var/admin-password: a directory of mode 0700, its files 0600.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

# Files the web app writes are its user's alone. Not by os.umask(0o077) here: pytest-django imports
# these settings into the test runner, so a umask would change the mode of everything the test run
# and what it starts (the root agent, dnsmasq, PostgreSQL, Redis) create. Instead var/ is 0700, which
# alone keeps other users out of all in it (test databases, var/static), and its files are 0600.


def _owner_only(path: Path) -> None:
    """Make the directory `path` (var/) its owner's alone: created with mode 0700, or, when it exists,
    it and the files and directories directly in it lose their group and other bits. So a checkout set
    up before this (var/ 0755, db.sqlite3 0644) is fixed by its next start.

    Only what this process's user owns is changed and what it cannot read is left alone: the stack
    tests run daphne as nobody beside the repository's root-owned var/ (their database is elsewhere).
    Symbolic links are not followed.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    uid = os.geteuid()
    try:
        st = path.stat()
        if st.st_uid == uid and st.st_mode & 0o077:
            path.chmod(st.st_mode & 0o700)
        entries = list(path.iterdir())
    except OSError:  # not ours to enter
        return
    for entry in entries:
        try:
            st = entry.lstat()
            if st.st_uid == uid and (S_ISREG(st.st_mode) or S_ISDIR(st.st_mode)) and st.st_mode & 0o077:
                entry.chmod(st.st_mode & 0o700)
        except OSError:  # gone meanwhile (another test run's database)
            continue


def _private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists. For var/db.sqlite3: SQLite creates a database
    file 0644 (less the umask), an empty file is an empty database to it, and it gives the database's
    -journal, -wal and -shm files the database file's mode, so all are 0600 from the first migrate on."""
    with contextlib.suppress(OSError):  # there already, or not ours to make: SQLite says so if it must
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / (os.environ.get("SWITCHBOARD_VAR_DIR") or "var")
_owner_only(VAR_DIR)
if not os.environ.get("DATABASE_URL"):
    _private_file(VAR_DIR / "db.sqlite3")  # the default database, see _database


def _env_bool(name: str, default: bool = False) -> bool:
    """Read a yes/no environment variable ("1", "true", "yes", "on" mean yes)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_seconds(name: str, default: float) -> float:
    """Read a positive number of seconds from the environment."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86400:  # also refuses nan and inf
        raise ImproperlyConfigured(f"{name}: {value!r} is not a number of seconds between 0 and 86400")
    return seconds


def _secret_key(path: Path) -> str:
    """Return SWITCHBOARD_SECRET_KEY, else the key stored at `path`, creating it (mode 0600) once."""
    if key := os.environ.get("SWITCHBOARD_SECRET_KEY"):
        return key
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        key = get_random_secret_key()
        f.write(key + "\n")
    return key


def _sqlite(name: Path | str) -> dict[str, Any]:
    """An SQLite database whose transactions begin IMMEDIATE: one that reads then writes (a layout
    merge) waits for the other writer instead of failing with "database is locked"."""
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        "OPTIONS": {"transaction_mode": "IMMEDIATE"},
        # Tests on a file like the server's, not Django's shared-cache in-memory default: there a
        # BEGIN IMMEDIATE racing another thread's connection fails at once ("database table is
        # locked") instead of waiting as SQLite does on a file.
        "TEST": {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")},
    }


def _database(url: str | None) -> dict[str, Any]:
    """Django DATABASES["default"] from a DATABASE_URL (postgres or sqlite), or the SQLite default."""
    if not url:
        return _sqlite(VAR_DIR / "db.sqlite3")
    parts = urlsplit(url)
    if parts.scheme in {"postgres", "postgresql", "pgsql"}:
        # ?host=/a/directory: a unix socket there, as in libpq's URIs (postgres://user@/name?host=/run/pg)
        socket_dir = parse_qs(parts.query).get("host", [""])[-1]
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": socket_dir or unquote(parts.hostname or ""),
            "PORT": str(parts.port or ""),
        }
    if parts.scheme == "sqlite":  # sqlite:///relative/to/repo.db, sqlite:////absolute.db
        name = unquote(parts.path)[1:]
        return _sqlite(BASE_DIR / name if name else ":memory:")
    raise ImproperlyConfigured(
        f"DATABASE_URL: unsupported scheme {parts.scheme!r} (use postgres:// or sqlite://)"
    )


SECRET_KEY = _secret_key(VAR_DIR / "secret_key")
DEBUG = _env_bool("SWITCHBOARD_DEBUG")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"] + [
    h.strip() for h in os.environ.get("SWITCHBOARD_ALLOWED_HOSTS", "").split(",") if h.strip()
]
# Public URLs the dashboard is served at when that is not what its requests say (behind a TLS proxy:
# https://switchboard.example); browsers' websockets and unsafe requests from them are accepted
CSRF_TRUSTED_ORIGINS = [
    o.strip().rstrip("/") for o in os.environ.get("SWITCHBOARD_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "csp",
    "webapp.accounts",
    "webapp.hosts",
    "webapp.topology",
    "webapp.operations",
    "webapp.networks",
    "webapp.containers",
    "webapp.catalog",
    "webapp.audit",
    "webapp.traffic",
    "webapp.captures",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "webapp.audit.middleware.AuditRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before checking it
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"
ASGI_APPLICATION = "webapp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": _database(os.environ.get("DATABASE_URL"))}


def _channel_layer(url: str | None) -> dict[str, Any]:
    """Redis channel layer when REDIS_URL is set (several workers), else in-memory (one process)."""
    if url:
        # redis-py 8 times out idle sockets after 5 s, which channels_redis' blocking receive
        # takes for an error (redis/redis-py#4091): every quiet websocket would be dropped
        host = {"address": url, "socket_timeout": None}
        return {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [host]}}
    return {"BACKEND": "channels.layers.InMemoryChannelLayer"}


CHANNEL_LAYERS = {"default": _channel_layer(os.environ.get("REDIS_URL"))}

# Host presence is a lease (webapp.hosts): an agent's connection renews it every AGENT_LEASE / 3
# seconds, so a host whose web worker died without closing the connection counts as offline within
# AGENT_LEASE seconds, and browsers are told within AGENT_LEASE * 4 / 3. Workers' clocks must
# agree to well within it (NTP).
AGENT_LEASE = _env_seconds("SWITCHBOARD_AGENT_LEASE", 15.0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/topology/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

STATIC_URL = "static/"
NODE_MODULES = BASE_DIR / "node_modules"  # npm packages, served as /static/<package>/...
STATICFILES_DIRS = [BASE_DIR / "static"] + ([NODE_MODULES] if NODE_MODULES.is_dir() else [])
STATIC_ROOT = VAR_DIR / "static"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    # Token first: an API client without credentials gets 401 + WWW-Authenticate, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "webapp.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["webapp.api_parsers.JSONParser"],  # DRF's, with 400s that say where
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "webapp.api_errors.exception_handler",
}

SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Switchboard API",
    "DESCRIPTION": "Hosts, their live network topology, and plan/apply/destroy through each host's agent.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
}
if (NODE_MODULES / "swagger-ui-dist").is_dir():  # served locally when npm installed it, else the CDN
    SPECTACULAR_SETTINGS["SWAGGER_UI_DIST"] = f"/{STATIC_URL}swagger-ui-dist"
    SPECTACULAR_SETTINGS["SWAGGER_UI_FAVICON_HREF"] = f"/{STATIC_URL}swagger-ui-dist/favicon-32x32.png"


# -- Security: headers, cookies, TLS, request size, password reset --------------------------------
# Always on, whatever the deployment: the session cookie is out of scripts' reach (Django's default,
# stated) and not sent on other sites' cross-site subrequests; browsers must not guess content types,
# send this site's URLs as Referer elsewhere, or frame its pages.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# SWITCHBOARD_BEHIND_TLS=1: browsers reach the dashboard only through a reverse proxy that ends TLS
# and forwards plain HTTP and the websockets to daphne on 127.0.0.1, setting X-Forwarded-Proto (README:
# "Behind a TLS reverse proxy"). Cookies then travel over HTTPS only, browsers are told to use HTTPS
# for a year (this host only: other names of the domain may not have it), and a request counts as
# secure when the proxy's X-Forwarded-Proto says https; only trust that with daphne unreachable but
# through the proxy, which must set the header itself. SECURE_SSL_REDIRECT stays off: the proxy
# redirects http:// to https://, and daphne behind it only ever sees plain HTTP.
BEHIND_TLS = _env_bool("SWITCHBOARD_BEHIND_TLS")
SESSION_COOKIE_SECURE = BEHIND_TLS
CSRF_COOKIE_SECURE = BEHIND_TLS
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if BEHIND_TLS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS else None
SECURE_SSL_REDIRECT = False

# Content-Security-Policy (django-csp 4): pages run only this site's own script files (no inline
# script, no eval), styles only from its own files, and talk only to this origin (connect-src 'self'
# covers the same host's ws:/wss: websockets in CSP Level 3 browsers). data: images are Swagger UI's
# icons (data: URLs in its stylesheet); the topology page's layout runs in a module Web Worker of ours.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}


def _env_int(name: str, default: int, *, what: str, most: int | None = None) -> int:
    """Read a whole number from 1 to `most` from the environment; `what` names it in the error."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= (most or int(value)):
        raise ImproperlyConfigured(f"{name}: {value!r} is not {what}")
    return int(value)


# Largest request body (Content-Length) Django reads; a larger one is refused, on the API with 413
# PayloadTooLarge. A topology file is at most 1 MiB (netcore's MAX_DOCUMENT_BYTES; as a JSON string
# or object a little more: a 10,000-node file of the benchmark's shape is 0.3 MB), and a saved layout
# of 10,000 nodes under 1 MB: 16 MiB leaves room without letting one request hold a worker's memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = _env_int("SWITCHBOARD_MAX_BODY", 16 * 1024 * 1024, what="a number of bytes")

# Traffic edges (webapp.traffic) that ended more than SWITCHBOARD_TRAFFIC_HISTORY_DAYS ago (default
# 7) are forgotten; live ones are kept whatever their age.
TRAFFIC_HISTORY_DAYS = _env_int("SWITCHBOARD_TRAFFIC_HISTORY_DAYS", 7, what="a number of days", most=36500)

# Password reset mails a link, so it exists only with a mail server (SWITCHBOARD_EMAIL_HOST):
# without one, /accounts/password_reset/ is not a page (webapp/accounts/urls.py) and the login page
# says how an admin sets a new password.
EMAIL_HOST = os.environ.get("SWITCHBOARD_EMAIL_HOST", "").strip()
EMAIL_PORT = _env_int("SWITCHBOARD_EMAIL_PORT", 25, what="a TCP port", most=65535)
DEFAULT_FROM_EMAIL = os.environ.get("SWITCHBOARD_EMAIL_FROM", "").strip() or "switchboard@localhost"
PASSWORD_RESET_ENABLED = bool(EMAIL_HOST)

# -- Login throttling (django-axes 8): failed logins and failed API tokens -----------------------
# After SWITCHBOARD_LOGIN_FAILURES failures (default 10) for one account from anywhere, or from one
# address for any accounts, that account or that address is refused (429) for SWITCHBOARD_LOGIN_LOCKOUT
# seconds (default 900) counted from the failure that locked it; refused attempts during a lockout do
# not extend it. Logins (the login page, the admin's) and failed user API tokens count alike
# (webapp.accounts.lockout.token_failed). Attempts live in the database (axes' default handler), so
# every web worker sees the same count; admins see and lift lockouts on the audit page and in the
# Django admin (Axes: Access attempts), or with `manage.py axes_reset_username NAME` /
# `axes_reset_ip IP`. Every lockout and unlock is in the audit log (webapp.accounts.lockout).
AXES_FAILURE_LIMIT = _env_int("SWITCHBOARD_LOGIN_FAILURES", 10, what="a number of failed logins")
AXES_COOLOFF_TIME = datetime.timedelta(seconds=_env_seconds("SWITCHBOARD_LOGIN_LOCKOUT", 900.0))
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Per account and, separately, per address (either locks); a failed token that matched no user counts
# for its address only (else all of them would add up as one nameless "account").
AXES_LOCKOUT_PARAMETERS = "webapp.accounts.lockout.lockout_parameters"
# A successful login clears that account's failures from that address only (webapp.accounts.lockout),
# not axes' AXES_RESET_ON_SUCCESS, which also clears every failure of the address and of the account:
# anyone with an account could then reset the count between guesses at another's password.
AXES_RESET_ON_SUCCESS = False
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_CALLABLE = "webapp.accounts.lockout.lockout_response"  # 429: the login page, or JSON under /api/
# The client's address: REMOTE_ADDR; behind the TLS proxy (SWITCHBOARD_BEHIND_TLS) the last
# X-Forwarded-For entry, the one the proxy wrote (the README's nginx sets it to $remote_addr; were it
# $proxy_add_x_forwarded_for, the entries before the last would be the client's to forge, and daphne's
# --proxy-headers takes the first), so with or without --proxy-headers. Never X-Forwarded-For otherwise.
# axes' AXES_IPWARE_* settings need django-ipware, which is not installed (axes then reads REMOTE_ADDR
# only): this callable decides instead.
AXES_CLIENT_IP_CALLABLE = "webapp.accounts.lockout.client_ip"
LOGIN_TRUSTED_PROXIES = 1 if BEHIND_TLS else 0
