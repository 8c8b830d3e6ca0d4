"""A rtnetlink socket that pipelines requests and streams dumps.

A socket belongs to the network namespace it was created in for its whole life, so
netcore keeps one per namespace and sends every request for that namespace through it.
"""

from __future__ import annotations

import errno as _errno
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from netcore.errors import NetcoreError, from_errno
from netcore.netlink import codec as c

_RCVBUF = 32 * 1024 * 1024
_SNDBUF = 4 * 1024 * 1024
_CHUNK = 256 * 1024  # bytes of requests per sendmsg; acks for a chunk always fit the receive buffer
_RECV_BUF = 64 * 1024  # a dump skb is at most 32 KiB; one buffer per socket, reused for every read
_SO_SNDBUFFORCE = 32
_SO_RCVBUFFORCE = 33


@dataclass(frozen=True, slots=True)
class Request:
    """One netlink request; `action` and `obj` name it in any error ("create veth", "web1-front")."""

    msg_type: int
    flags: int
    body: bytes
    action: str
    obj: str
    tolerate: tuple[int, ...] = ()


class NetlinkSocket:
    """A NETLINK_ROUTE socket with pipelined requests and dumps."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._seq = 0
        self._buf = bytearray(_RECV_BUF)

    @classmethod
    def open(cls, *, groups: Sequence[int] = ()) -> NetlinkSocket:
        """A new socket in the calling thread's network namespace."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        for forced, plain, value in (
            (_SO_RCVBUFFORCE, socket.SO_RCVBUF, _RCVBUF),
            (_SO_SNDBUFFORCE, socket.SO_SNDBUF, _SNDBUF),
        ):
            try:
                sock.setsockopt(socket.SOL_SOCKET, forced, value)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, plain, value)  # capped by net.core.*mem_max
        sock.setsockopt(c.SOL_NETLINK, c.NETLINK_EXT_ACK, 1)
        sock.setsockopt(c.SOL_NETLINK, c.NETLINK_CAP_ACK, 1)
        sock.setsockopt(c.SOL_NETLINK, c.NETLINK_GET_STRICT_CHK, 1)
        sock.bind((0, 0))
        for group in groups:
            sock.setsockopt(c.SOL_NETLINK, c.NETLINK_ADD_MEMBERSHIP, group)
        return cls(sock)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    def send(self, requests: Sequence[Request]) -> list[NetcoreError | None]:
        """Send requests pipelined; return one result per request (None = success).

        The kernel handles each message of a sendmsg in order and acks each one, so
        thousands of requests cost a few system calls instead of one round trip each.
        """
        results: list[NetcoreError | None] = [None] * len(requests)
        index = 0
        while index < len(requests):
            chunk: list[bytes] = []
            pending: dict[int, int] = {}
            size = 0
            while index < len(requests) and size < _CHUNK:
                req = requests[index]
                seq = self._next_seq()
                msg = c.message(req.msg_type, req.flags | c.NLM_F_REQUEST | c.NLM_F_ACK, seq, req.body)
                chunk.append(msg)
                pending[seq] = index
                size += len(msg)
                index += 1
            self.sock.sendall(b"".join(chunk))
            self._collect_acks(pending, requests, results)
        return results

    def _collect_acks(
        self, pending: dict[int, int], requests: Sequence[Request], results: list[NetcoreError | None]
    ) -> None:
        buf = self._buf
        while pending:
            size = self.sock.recv_into(buf)
            for msg_type, flags, seq, body, end in c.messages(buf, size):
                if msg_type != c.NLMSG_ERROR or seq not in pending:
                    continue
                position = pending.pop(seq)
                err = -c.i32(buf, body)
                if err and err not in requests[position].tolerate:
                    results[position] = _error(buf, flags, body, end, err, requests[position])

    def query(self, msg_type: int, body: bytes, *, action: str, obj: str) -> bytes | None:
        """One request with one reply: the reply message body, or None if the object does not exist."""
        seq = self._next_seq()
        self.sock.sendall(c.message(msg_type, c.NLM_F_REQUEST, seq, body))
        buf = self._buf
        while True:
            size = self.sock.recv_into(buf)
            for kind, flags, mseq, start, end in c.messages(buf, size):
                if mseq != seq:
                    continue
                if kind == c.NLMSG_ERROR:
                    err = -c.i32(buf, start)
                    if err in (_errno.ENODEV, _errno.ENOENT):
                        return None
                    raise _error(buf, flags, start, end, err, Request(msg_type, 0, body, action, obj))
                return bytes(buf[start:end])

    def nsids(self, fds: Sequence[int]) -> list[int]:
        """The id this namespace gives each namespace fd (-1 where none is assigned)."""
        pending: dict[int, int] = {}
        out = [-1] * len(fds)
        chunk = []
        for position, fd in enumerate(fds):
            seq = self._next_seq()
            pending[seq] = position
            body = c.RTGENMSG.pack(c.AF_UNSPEC) + c.attr_u32(c.NETNSA_FD, fd)
            chunk.append(c.message(c.RTM_GETNSID, c.NLM_F_REQUEST, seq, body))
        if chunk:
            self.sock.sendall(b"".join(chunk))
        buf = self._buf
        while pending:
            size = self.sock.recv_into(buf)
            for kind, _flags, seq, start, end in c.messages(buf, size):
                position = pending.pop(seq, None)
                if position is None or kind != c.RTM_NEWNSID:
                    continue
                for attr_kind, a, _b in c.attrs(buf, start + 4, end):
                    if attr_kind == c.NETNSA_NSID:
                        out[position] = c.i32(buf, a)
        return out

    def run(self, requests: Sequence[Request]) -> None:
        """Send requests and raise the first failure."""
        for result in self.send(requests):
            if result is not None:
                raise result

    def dump(self, msg_type: int, body: bytes, *, what: str) -> Iterator[tuple[bytearray, int, int, int]]:
        """Stream a dump: yield (buffer, message type, body start, end) for each reply.

        The buffer is reused: parse each message before asking for the next one.
        """
        seq = self._next_seq()
        self.sock.sendall(c.message(msg_type, c.NLM_F_REQUEST | c.NLM_F_DUMP, seq, body))
        buf = self._buf
        while True:
            size = self.sock.recv_into(buf)
            for kind, _flags, mseq, start, end in c.messages(buf, size):
                if mseq != seq:
                    continue
                if kind == c.NLMSG_DONE:
                    return
                if kind == c.NLMSG_ERROR:
                    err = -c.i32(buf, start)
                    if err:
                        raise from_errno(err, obj=what, action="dump")
                    continue
                yield buf, kind, start, end

    def read_events(self, handle: Callable[[bytearray, int, int, int], None]) -> None:
        """Read what is queued (non-blocking socket) and pass each message to handle."""
        buf = self._buf
        while True:
            try:
                size = self.sock.recv_into(buf)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == _errno.ENOBUFS:
                    raise  # the caller must resynchronise: events were lost
                return
            for kind, _flags, _seq, start, end in c.messages(buf, size):
                handle(buf, kind, start, end)


def _error(buf: bytearray, flags: int, body: int, end: int, err: int, req: Request) -> NetcoreError:
    error = from_errno(err, obj=req.obj, action=req.action)
    if flags & c.NLM_F_ACK_TLVS:
        # With NETLINK_CAP_ACK the original request is not echoed: TLVs follow errno + header.
        for kind, start, stop in c.attrs(buf, body + 4 + 16, end):
            if kind == c.NLMSGERR_ATTR_MSG:
                detail = c.cstr(buf, start, stop)
                error.args = (f"{error.args[0]}: {detail}",)
    return error
