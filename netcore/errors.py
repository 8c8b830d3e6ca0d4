"""One error hierarchy for netcore, translated from kernel errno in one place.

Every message names the object it is about and, when the kernel refused, what the
kernel said, so a caller can show it to a person unchanged.
"""

from __future__ import annotations

import errno as _errno
import os


class NetcoreError(Exception):
    """Base of every error netcore raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, obj: str | None = None, errno: int | None = None) -> None:
        super().__init__(message)
        self.obj = obj
        self.errno = errno

    def to_dict(self) -> dict:
        """Structured form for JSON output and the agent protocol."""
        return {"error": type(self).__name__, "message": str(self), "object": self.obj, "errno": self.errno}


class InvalidSpec(NetcoreError):
    """The input is wrong; nothing was touched."""

    exit_code = 2
    #: Every problem on its own, when netcore.topology.spec.parse raised it (not set otherwise).
    problems: list[str]


class NotFound(NetcoreError):
    """The named object does not exist."""


class AlreadyExists(NetcoreError):
    """An object with that name exists and is not ours to change."""


class PermissionDenied(NetcoreError):
    """The kernel refused for lack of privilege (CAP_NET_ADMIN / CAP_SYS_ADMIN)."""


class Unsupported(NetcoreError):
    """This kernel lacks the feature (a device kind, a qdisc, ...)."""


class Conflict(NetcoreError):
    """The request clashes with what exists (an overlapping subnet, an address in use, ...)."""


class Unavailable(NetcoreError):
    """A program netcore drives is not there or not answering (the Docker engine, ...)."""


class Busy(NetcoreError):
    """The object is in use (a namespace still holding processes, ...)."""


class Cancelled(NetcoreError):
    """The caller cancelled the run; it stopped at a safe point and removed what it had created."""


class MalformedMessage(NetcoreError):
    """A netlink message that does not parse: a length disagrees with the bytes received, or a
    field has the wrong size. The message names the netlink message and what was wrong."""


class DumpInterrupted(NetcoreError):
    """The kernel flagged every read of a dump as inconsistent (NLM_F_DUMP_INTR: its table kept
    changing while it was dumped), a bounded number of times in a row."""


class EventsLost(NetcoreError):
    """An event socket lost events (ENOBUFS, a truncated or unreadable datagram, a malformed
    message): the caller must resynchronise by dumping again."""


_BY_ERRNO: dict[int, type[NetcoreError]] = {
    _errno.ENOENT: NotFound,
    _errno.ENODEV: NotFound,
    _errno.ESRCH: NotFound,
    _errno.EADDRNOTAVAIL: NotFound,
    _errno.EEXIST: AlreadyExists,
    _errno.EPERM: PermissionDenied,
    _errno.EACCES: PermissionDenied,
    _errno.EOPNOTSUPP: Unsupported,
    _errno.EAFNOSUPPORT: Unsupported,
    _errno.EPROTONOSUPPORT: Unsupported,
    _errno.EBUSY: Busy,
    _errno.EINVAL: InvalidSpec,
    _errno.ERANGE: InvalidSpec,
    _errno.ENAMETOOLONG: InvalidSpec,
}


def from_errno(err: int, *, obj: str, action: str) -> NetcoreError:
    """Translate a kernel errno into the matching NetcoreError.

    `action` says what was being done ("create bridge"), `obj` names the object.
    """
    err = abs(err)
    cls = _BY_ERRNO.get(err, NetcoreError)
    text = os.strerror(err)
    if err == _errno.EOPNOTSUPP and "create" in action:
        text += " (this kernel lacks the device kind or feature)"
    error = cls(f"{action} {obj}: {text} (errno {_errno.errorcode.get(err, err)})", obj=obj, errno=err)
    if cls is InvalidSpec:
        error.exit_code = 1  # the kernel refused it: an operation failure, not bad input we could have caught
    return error


def from_oserror(exc: OSError, *, obj: str, action: str) -> NetcoreError:
    """Translate an OSError raised by a syscall wrapper."""
    return from_errno(exc.errno or _errno.EIO, obj=obj, action=action)
