"""The connection to the Docker engine (the Docker SDK over its socket) and its errors as netcore's.

The SDK negotiates the API version with the engine (`version="auto"`), so an older engine (Debian's
docker.io 20.10 speaks 1.41) and a newer client on PATH do not matter.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import docker
import docker.errors
import requests.exceptions

from netcore.errors import AlreadyExists, Conflict, InvalidSpec, NetcoreError, NotFound, Unavailable

DEFAULT_URL = "unix:///var/run/docker.sock"
TIMEOUT = 30  # seconds for one engine call (a container start can take a few)
ENABLE_HINT = "start the Docker engine (`make docker` on a test machine, or the docker service)"


def engine_url() -> str:
    """Where the engine listens: DOCKER_HOST if set, else Docker's own socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_URL


def engine_connect(*, url: str | None = None) -> docker.DockerClient:
    """A client of the engine at `url` (engine_url() by default); Unavailable when none answers."""
    url = url or engine_url()
    try:
        return docker.DockerClient(base_url=url, version="auto", timeout=TIMEOUT)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise Unavailable(f"no Docker engine answers at {url}: {_reason(exc)}", obj=url) from None


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("FileNotFoundError", "ConnectionRefusedError", "No such file or directory"):
        if marker in text:
            return "its socket is missing or refuses connections"
    return text[:300]


@contextlib.contextmanager
def engine_call(*, obj: str, action: str) -> Iterator[None]:
    """Around calls to the engine: whatever the SDK raises comes out as engine_error's NetcoreError."""
    try:
        yield
    except NetcoreError:
        raise
    except Exception as exc:
        raise engine_error(exc, obj=obj, action=action) from None


def engine_error(exc: Exception, *, obj: str, action: str) -> NetcoreError:
    """An SDK exception as the netcore error of the same meaning, naming the object and the engine's words.

    The engine answers 404 for unknown names, 409 for conflicts (a name in use, an overlapping
    subnet, a container still running) and 400 for bad fields; a few 403/500 answers are conflicts
    too (an address already in use, a pool overlap) and are told apart by their text.
    """
    if isinstance(exc, docker.errors.ImageNotFound | docker.errors.NotFound):
        return NotFound(f"{action} {obj}: {_explanation(exc)}", obj=obj)
    if isinstance(exc, docker.errors.APIError):
        text = _explanation(exc)
        status = exc.status_code or 500
        lowered = text.lower()
        message = f"{action} {obj}: {text}"
        if status == 409 and ("already in use" in lowered or "already exists" in lowered):
            return AlreadyExists(message, obj=obj)
        if status == 409 or any(
            m in lowered for m in ("overlap", "in use", "active endpoints", "is running")
        ):
            return Conflict(message, obj=obj)
        if status == 400 or "invalid" in lowered or "no available" in lowered:
            return InvalidSpec(message, obj=obj)
        return NetcoreError(message, obj=obj)
    if isinstance(exc, requests.exceptions.RequestException | docker.errors.DockerException | OSError):
        return Unavailable(f"{action} {obj}: the Docker engine did not answer: {_reason(exc)}", obj=obj)
    return NetcoreError(f"{action} {obj}: {exc}", obj=obj)


def _explanation(exc: docker.errors.DockerException) -> str:
    explanation = getattr(exc, "explanation", None)
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return (explanation or str(exc)).strip()
