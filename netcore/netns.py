"""Network namespaces: create, delete, list, and reach into them.

Namespace switching happens on one dedicated worker thread, never on the caller's
thread: `unshare`/`setns` change only the calling thread, so the worker can step into
a namespace, open a netlink socket there (which stays in that namespace for its whole
life) and step back. "The host" is always the namespace of the thread that called
netcore, which is what makes netcore work unchanged under `nsenter --net=...`.

Creating a namespace the way `ip netns add` does (unshare + bind mount under
/run/netns) costs about 0.4 ms; forking a helper costs about 5 ms.

A namespace made for an owner is marked before it can be seen under its name: the owner's
alias is set on its `lo` between `unshare` and the bind mount, and the mount point itself
appears under its final name already carrying the mark as an extended attribute (an unnamed
O_TMPFILE given its name by `linkat`). So a process killed at any moment leaves either
nothing, a marked mount point without a namespace, or a marked namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from netcore import requests as rq
from netcore.errors import AlreadyExists, NetcoreError, NotFound, from_oserror
from netcore.netlink.socket import NetlinkSocket

NETNS_DIR = "/run/netns"
DOCKER_NETNS_DIR = "/var/run/docker/netns"
# Docker's handle on the namespace dockerd itself runs in (for host-mode containers), never a
# container's own: the caller's host when it runs there too, another host's otherwise.
DOCKER_DAEMON_NETNS = "default"


def listed(directory: str, name: str) -> bool:
    """Whether a file of a namespace directory is a namespace netcore lists (see DOCKER_DAEMON_NETNS)."""
    return not (directory == DOCKER_NETNS_DIR and name == DOCKER_DAEMON_NETNS)


HOST = "host"
# An agent marks the mount namespace it runs in (mark_agent_host). A namespace held only by processes
# that see another agent's mark is that agent's host (a lab host, a system container with its own
# agent): netns_list leaves it to that agent.
AGENT_MARK = "/run/switchboard/agent"
#: Extended attribute of a mount point under /run/netns holding its owner's mark.
OWNER_XATTR = "trusted.switchboard.owner"

_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SHARED = 1 << 20
_MNT_DETACH = 2
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000

_libc = ctypes.CDLL(None, use_errno=True)
_T = TypeVar("_T")


def _check(result: int, *, obj: str, action: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise from_oserror(OSError(err, os.strerror(err)), obj=obj, action=action)


def _setns(fd: int, *, obj: str) -> None:
    _check(_libc.setns(fd, _CLONE_NEWNET), obj=obj, action="enter namespace")


def _thread_netns_fd() -> int:
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


class _Worker:
    """The one thread allowed to change network namespace; runs jobs in order."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, job: Callable[[], _T]) -> _T:
        """Run job on the worker, starting in the caller's namespace; re-raise its error."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="netcore-netns", daemon=True)
                self._thread.start()
        home = _thread_netns_fd()
        done = threading.Event()
        box: list = []
        self._jobs.put((home, job, box, done))
        done.wait()
        os.close(home)
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def _loop(self) -> None:
        while True:
            home, job, box, done = self._jobs.get()
            try:
                _setns(home, obj=HOST)
                box.append((True, job()))
            except BaseException as exc:  # handed to the caller's thread
                box.append((False, exc))
            finally:
                # every job starts by entering its caller's namespace, so a failed return
                # (no privilege) must not end the thread
                with contextlib.suppress(NetcoreError):
                    _setns(home, obj=HOST)
                done.set()


_worker = _Worker()


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    """A network namespace as netcore sees it.

    kind: "host" (the one netcore runs in), "named" (/run/netns), "docker"
    (/var/run/docker/netns) or "process" (only held by processes, named pid:<lowest pid>).
    """

    name: str
    inode: int
    kind: str
    path: str


@dataclass(slots=True)
class NetnsHandle:
    """A namespace netcore just created: its name, an fd on it and a socket inside it."""

    name: str
    fd: int
    sock: NetlinkSocket

    def close(self) -> None:
        self.sock.close()
        os.close(self.fd)


def _ensure_netns_dir() -> None:
    """Make /run/netns a shared mount point, as iproute2 does, so mounts propagate."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    if _libc.mount(b"", NETNS_DIR.encode(), b"none", _MS_SHARED | _MS_REC, None) == 0:
        return
    if ctypes.get_errno() != _errno.EINVAL:
        return  # already fine, or we cannot change it: creation will report the real problem
    _libc.mount(NETNS_DIR.encode(), NETNS_DIR.encode(), b"none", _MS_BIND | _MS_REC, None)
    _libc.mount(b"", NETNS_DIR.encode(), b"none", _MS_SHARED | _MS_REC, None)


def netns_path(name: str) -> str:
    """Where a named namespace is mounted."""
    return os.path.join(NETNS_DIR, name)


def _claim(name: str, path: str, mark: str | None) -> None:
    """Make the mount point `path` (AlreadyExists if taken), carrying `mark` from the moment it exists.

    The file is made unnamed (O_TMPFILE), marked, then named by `linkat`, which fails if the name
    is taken. A filesystem without O_TMPFILE or extended attributes gets a plain exclusive create.
    """
    if mark is not None:
        try:
            fd = os.open(NETNS_DIR, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o444)
        except OSError as exc:
            if exc.errno not in (_errno.EOPNOTSUPP, _errno.EISDIR):
                raise from_oserror(exc, obj=name, action="create namespace") from None
        else:
            try:
                os.setxattr(fd, OWNER_XATTR, mark.encode())
                if _libc.linkat(fd, b"", _AT_FDCWD, path.encode(), _AT_EMPTY_PATH) == 0:
                    return
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            except OSError as exc:
                if exc.errno == _errno.EEXIST:
                    raise AlreadyExists(f"namespace {name} already exists", obj=name) from None
                if exc.errno != _errno.EOPNOTSUPP:
                    raise from_oserror(exc, obj=name, action="create namespace") from None
            finally:
                os.close(fd)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    except FileExistsError:
        raise AlreadyExists(f"namespace {name} already exists", obj=name) from None
    except OSError as exc:
        raise from_oserror(exc, obj=name, action="create namespace") from None


def _create_one(name: str, home: int, mark: str | None) -> NetnsHandle:
    """On the worker: unshare, mark `lo` with `mark`, then name the namespace by its mount point."""
    path = netns_path(name)
    sock: NetlinkSocket | None = None
    try:
        _check(_libc.unshare(_CLONE_NEWNET), obj=name, action="create namespace")
        sock = NetlinkSocket.open()
        if mark is not None:
            sock.run([rq.link_set(index=1, name=f"{name}:lo", alias=mark)])
        _claim(name, path, mark)
        try:
            source = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
            _check(
                _libc.mount(source, path.encode(), b"none", _MS_BIND, None),
                obj=name,
                action="mount namespace",
            )
            return NetnsHandle(name=name, fd=_thread_netns_fd(), sock=sock)
        except BaseException:
            _libc.umount2(path.encode(), _MNT_DETACH)
            os.unlink(path)
            raise
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    finally:
        _setns(home, obj=HOST)


def netns_create_many(names: Iterable[str], *, marks: Mapping[str, str] | None = None) -> list[NetnsHandle]:
    """Create named namespaces; each comes back with an open socket inside it.

    `marks` maps a name to its owner's mark, set on its `lo` (IFLA_IFALIAS) and on its mount point
    (OWNER_XATTR) before the namespace appears under its name. If one fails, the ones this call
    already created are removed before the error is raised.
    """
    names = list(names)
    marks = marks or {}

    def job() -> list[NetnsHandle]:
        _ensure_netns_dir()
        home = _thread_netns_fd()
        made: list[NetnsHandle] = []
        try:
            for name in names:
                made.append(_create_one(name, home, marks.get(name)))
        except BaseException:
            for handle in made:
                handle.close()
            _delete_paths([h.name for h in made])
            raise
        finally:
            os.close(home)
        return made

    return _worker.run(job)


def netns_create(*, name: str, mark: str | None = None) -> None:
    """Create one named namespace with `lo` down, as `ip netns add` does; `mark` as in netns_create_many."""
    for handle in netns_create_many([name], marks={name: mark} if mark is not None else None):
        handle.close()


def _delete_paths(names: Iterable[str]) -> list[NetcoreError]:
    errors: list[NetcoreError] = []
    for name in names:
        path = netns_path(name)
        _libc.umount2(path.encode(), _MNT_DETACH)
        try:
            os.unlink(path)
        except FileNotFoundError:
            errors.append(NotFound(f"namespace {name} does not exist", obj=name))
        except OSError as exc:
            errors.append(from_oserror(exc, obj=name, action="delete namespace"))
    return errors


def netns_delete_many(names: Iterable[str], *, missing_ok: bool = False) -> None:
    """Unmount and remove named namespaces; the kernel frees each once nothing holds it."""
    errors = [e for e in _delete_paths(names) if not (missing_ok and isinstance(e, NotFound))]
    if errors:
        raise errors[0]


def netns_delete(*, name: str) -> None:
    """Remove one named namespace."""
    netns_delete_many([name])


def netns_exists(name: str) -> bool:
    return os.path.exists(netns_path(name))


def netns_placeholder_mark(name: str) -> str | None:
    """The owner's mark on /run/netns/<name> when it is a mount point without its namespace.

    That is what a creation or deletion cut short (kill -9) leaves behind. None if the file is
    missing, holds a namespace, or carries no mark.
    """
    path = netns_path(name)
    try:
        if is_netns_mount(path):
            return None
        return os.getxattr(path, OWNER_XATTR).decode("utf-8", errors="replace")
    except OSError:
        return None


def _enter(path: str) -> None:
    """On the worker thread: step into the namespace at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd, obj=path)
    finally:
        os.close(fd)


def netns_open_sockets(paths: Iterable[str], *, groups: Iterable[int] = ()) -> list[NetlinkSocket | None]:
    """One socket inside each namespace path, in one trip to the worker; None where one vanished."""
    paths = list(paths)
    groups = tuple(groups)

    def job() -> list[NetlinkSocket | None]:
        socks: list[NetlinkSocket | None] = []
        for path in paths:
            try:
                _enter(path)
            except (OSError, NetcoreError):
                socks.append(None)
                continue
            socks.append(NetlinkSocket.open(groups=groups))
        return socks

    return _worker.run(job)


def netns_open_socket(*, path: str, groups: Iterable[int] = ()) -> NetlinkSocket:
    """A netlink socket inside the namespace at `path` (a /run/netns or /proc path)."""
    sock = netns_open_sockets([path], groups=groups)[0]
    if sock is None:
        name = os.path.basename(path) if path.startswith(NETNS_DIR) else path
        raise NotFound(f"namespace {name} does not exist", obj=name)
    return sock


def netns_run(*, path: str, fn: Callable[[], _T]) -> _T:
    """Run fn on the worker thread inside the namespace at `path` (sockets made there stay there)."""

    def job() -> _T:
        _enter(path)
        return fn()

    return _worker.run(job)


def host_inode() -> int:
    """Inode of the caller's network namespace: what netcore calls "host"."""
    return os.stat("/proc/thread-self/ns/net").st_ino


_NET_LINK = re.compile(r"net:\[(\d+)\]")


def netns_list(*, processes: bool = True, named: bool = True) -> list[NamespaceInfo]:
    """Every network namespace netcore can see, de-duplicated by inode, host first.

    Named ones (/run/netns, unless named=False), Docker's (/var/run/docker/netns) and, with
    processes=True, namespaces only held by a process (/proc/*/ns/net).
    """
    home = host_inode()
    seen: dict[int, NamespaceInfo] = {home: NamespaceInfo(HOST, home, "host", "/proc/thread-self/ns/net")}
    directories = ((NETNS_DIR, "named"),) if named else ()
    for directory, kind in (*directories, (DOCKER_NETNS_DIR, "docker")):
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            if not listed(directory, entry.name):
                continue
            try:
                inode = entry.stat().st_ino
            except OSError:
                continue
            if inode in seen or not is_netns_mount(entry.path):
                continue
            name = entry.name if kind == "named" else f"docker:{entry.name}"
            seen[inode] = NamespaceInfo(name, inode, kind, entry.path)
    if processes:
        ours = _mark_of("")
        elsewhere: set[int] = set()  # namespaces of another agent's host
        for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
            try:
                match = _NET_LINK.match(os.readlink(f"/proc/{pid}/ns/net"))
            except OSError:
                continue
            if not match:
                continue
            inode = int(match.group(1))
            if inode in seen or inode in elsewhere:
                continue
            theirs = _mark_of(f"/proc/{pid}/root")
            if theirs is not None and theirs != ours:
                elsewhere.add(inode)
                continue
            seen[inode] = NamespaceInfo(f"pid:{pid}", inode, "process", f"/proc/{pid}/ns/net")
    return list(seen.values())


def _mark_of(root: str) -> tuple[int, int] | None:
    """The identity (device, inode) of the agent mark a process with that root sees, if any."""
    try:
        found = os.stat(root + AGENT_MARK)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def mark_agent_host(host: str) -> None:
    """Mark the mount namespace the caller runs in as an agent's host (AGENT_MARK; `host`: its name,
    for people). Other agents on the machine then leave the namespaces of its processes to it."""
    os.makedirs(os.path.dirname(AGENT_MARK), mode=0o755, exist_ok=True)
    with open(AGENT_MARK, "w") as mark:
        mark.write(f"{host} (pid {os.getpid()})\n")


def is_netns_mount(path: str) -> bool:
    """A file under /run/netns that is not (or no longer) a mounted namespace has a tmpfs inode."""
    return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev


def netns_resolve(name: str) -> NamespaceInfo:
    """Find a namespace by the name netns_list gives it."""
    for info in netns_list(processes=name.startswith("pid:")):
        if info.name == name:
            return info
    raise NotFound(f"namespace {name} does not exist", obj=name)
