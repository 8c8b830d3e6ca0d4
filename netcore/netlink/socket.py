"""A rtnetlink socket that pipelines requests and streams dumps.

A socket belongs to the network namespace it was created in for its whole life, so
netcore keeps one per namespace and sends every request for that namespace through it.
"""

from __future__ import annotations

import errno as _errno
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netcore.errors import DumpInterrupted, EventsLost, MalformedMessage, NetcoreError, from_errno
from netcore.netlink import codec as c

_RCVBUF = 32 * 1024 * 1024
_SNDBUF = 4 * 1024 * 1024
_CHUNK = 256 * 1024  # bytes of requests per sendmsg; acks for a chunk always fit the receive buffer
_RECV_BUF = 64 * 1024  # a dump skb is at most 32 KiB; one buffer per socket, reused for every read
_SO_SNDBUFFORCE = 32
_SO_RCVBUFFORCE = 33
_DUMP_INTR = c.NLM_F_DUMP_INTR
_MIN_TYPE = 0x10  # NLMSG_MIN_TYPE: below it, netlink's own control messages (NOOP, ERROR, DONE, OVERRUN)
_ERR_TLVS = 20  # with NETLINK_CAP_ACK the request is not echoed: ack TLVs follow the errno and its header
DUMP_ATTEMPTS = 5  # reads of a dump the kernel keeps flagging as interrupted before giving up


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
    """A netlink socket (NETLINK_ROUTE unless opened for another family) with pipelined requests and dumps."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._seq = 0
        self._buf = bytearray(_RECV_BUF)

    @classmethod
    def open(cls, *, groups: Sequence[int] = (), protocol: int = c.NETLINK_ROUTE) -> NetlinkSocket:
        """A new socket in the calling thread's network namespace; `protocol` picks the netlink family
        (NETLINK_ROUTE, or NETLINK_NETFILTER for conntrack: netcore.netlink.conntrack)."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
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

    def _receive(self) -> int:
        """Read one datagram into the reused buffer and return its size.

        With codec.messages(buf, size), the one receive path of every read: a datagram larger
        than the buffer (MSG_TRUNC: the kernel reports its real size) raises MalformedMessage,
        and every message length is checked against the bytes this read received, never
        against what an earlier read left in the buffer.
        """
        buf = self._buf
        size = self.sock.recv_into(buf, 0, socket.MSG_TRUNC)
        if size > len(buf):
            raise MalformedMessage(
                f"a {size}-byte netlink datagram was truncated to the {len(buf)}-byte receive buffer"
            )
        return size

    def _collect_acks(
        self, pending: dict[int, int], requests: Sequence[Request], results: list[NetcoreError | None]
    ) -> None:
        buf = self._buf
        while pending:
            for msg_type, flags, seq, body, end in c.messages(buf, self._receive()):
                if msg_type != c.NLMSG_ERROR or seq not in pending:
                    continue
                position = pending.pop(seq)
                req = requests[position]
                err = _status(buf, seq, body, end)
                if err and err not in req.tolerate:
                    results[position] = _error(
                        buf, flags, body + _ERR_TLVS, end, err, obj=req.obj, action=req.action
                    )

    def query(self, msg_type: int, body: bytes, *, action: str, obj: str) -> bytes | None:
        """One request with one reply: the reply message body, or None if the object does not exist."""
        seq = self._next_seq()
        self.sock.sendall(c.message(msg_type, c.NLM_F_REQUEST, seq, body))
        buf = self._buf
        while True:
            for kind, flags, mseq, start, end in c.messages(buf, self._receive()):
                if mseq != seq:
                    continue
                if kind == c.NLMSG_ERROR:
                    err = _status(buf, mseq, start, end)
                    if err in (_errno.ENODEV, _errno.ENOENT):
                        return None
                    if not err:
                        raise MalformedMessage(
                            f"{action} {obj}: an acknowledgement came instead of the reply"
                        )
                    raise _error(buf, flags, start + _ERR_TLVS, end, err, obj=obj, action=action)
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
            for kind, _flags, seq, start, end in c.messages(buf, self._receive()):
                if seq in pending:
                    position = pending.pop(seq)
                    if kind == c.RTM_NEWNSID:
                        out[position] = _nsid(buf, seq, start, end)
        return out

    def run(self, requests: Sequence[Request]) -> None:
        """Send requests and raise the first failure."""
        for result in self.send(requests):
            if result is not None:
                raise result

    def dump(self, msg_type: int, body: bytes, *, what: str) -> list[tuple[bytearray, int, int, int]]:
        """Run a dump: (buffer, message type, body start, end) for each reply, in order.

        The whole dump is read before anything is parsed, each datagram copied out of the
        receive buffer: the kernel fills the next datagram only when the previous one has
        been read, so reading fast keeps the window in which a change interrupts the dump
        short (parsing as it streamed, 79% of link dumps of 2000 links were flagged under 20
        changes a second, against none this way). A dump the kernel flags as interrupted
        (NLM_F_DUMP_INTR: its table changed meanwhile, so objects may be missing or doubled)
        is thrown away and run again, up to DUMP_ATTEMPTS times, then DumpInterrupted. An
        errno in NLMSG_ERROR or NLMSG_DONE raises the matching NetcoreError; a truncated
        datagram or a bad message, MalformedMessage. Each error names `what`.
        """
        for _ in range(DUMP_ATTEMPTS):
            try:
                replies = self._dump_once(msg_type, body, what)
            except MalformedMessage as exc:
                raise MalformedMessage(f"{what}: {exc}", obj=what) from exc
            if replies is not None:
                return replies
        raise DumpInterrupted(
            f"{what}: dump interrupted {DUMP_ATTEMPTS} times in a row, the kernel's table kept changing",
            obj=what,
        )

    def _dump_once(
        self, msg_type: int, body: bytes, what: str
    ) -> list[tuple[bytearray, int, int, int]] | None:
        """One read of a dump: its replies, or None if the kernel flagged it as interrupted."""
        seq = self._next_seq()
        self.sock.sendall(c.message(msg_type, c.NLM_F_REQUEST | c.NLM_F_DUMP, seq, body))
        buf = self._buf
        flagged = 0
        replies: list[tuple[bytearray, int, int, int]] = []
        add = replies.append
        while True:
            size = self._receive()
            data = None  # this datagram's replies, copied out of buf (the next read reuses it)
            for kind, flags, mseq, start, end in c.messages(buf, size):
                if mseq != seq:
                    continue
                flagged |= flags
                if kind >= _MIN_TYPE:
                    if data is None:
                        data = buf[:size]
                    add((data, kind, start, end))
                elif kind == c.NLMSG_DONE:  # it may carry the dump's errno (old kernels: no body)
                    err = -c.i32(buf, start) if end - start >= 4 else 0
                    if err:
                        raise _error(buf, flags, start + 4, end, err, obj=what, action="dump")
                    return None if flagged & _DUMP_INTR else replies
                elif kind == c.NLMSG_ERROR:  # the request was refused
                    err = _status(buf, mseq, start, end)
                    if err:
                        raise _error(buf, flags, start + _ERR_TLVS, end, err, obj=what, action="dump")

    def discard_queued(self) -> None:
        """Read and drop every message waiting on this non-blocking event socket (they predate a
        re-dump that follows, and applied after it would take a model back in time)."""
        while True:
            try:
                self.sock.recv_into(self._buf)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != _errno.ENOBUFS:
                    return
                # a further overflow report: keep reading

    def read_events(
        self, handle: Callable[[bytearray, int, int, int], None], *, what: str = "events"
    ) -> None:
        """Read what is queued (non-blocking socket) and pass each message to handle(buffer,
        message type, body start, end); the buffer is reused, so handle parses before it returns.

        Raises EventsLost when events may have been lost and the caller must resynchronise (dump
        again): the socket overflowed (ENOBUFS) or recv failed otherwise, a datagram was
        truncated (MSG_TRUNC) or holds a message header that does not fit it (the messages
        before it are handled, the rest cannot be delimited), or handle raised MalformedMessage
        for a message — then the other messages of that datagram are still handled first, and
        reading stops after it. Anything else handle raises propagates unchanged. `what` names
        the socket in the error ("events of ns1").
        """
        buf = self._buf
        while True:
            try:
                size = self._receive()
            except BlockingIOError:
                return
            except OSError as exc:
                raise EventsLost(
                    f"{what}: events lost: {os.strerror(exc.errno or _errno.EIO)}", obj=what, errno=exc.errno
                ) from exc
            except MalformedMessage as exc:
                raise EventsLost(f"{what}: events lost: {exc}", obj=what) from exc
            bad: MalformedMessage | None = None
            try:
                for kind, _flags, _seq, start, end in c.messages(buf, size):
                    try:
                        handle(buf, kind, start, end)
                    except MalformedMessage as exc:
                        bad = bad or exc
            except MalformedMessage as exc:
                bad = bad or exc
            if bad is not None:
                raise EventsLost(f"{what}: events lost: {bad}", obj=what) from bad


def _status(buf: bytearray, seq: int, start: int, end: int) -> int:
    """The positive errno an NLMSG_ERROR body carries (0: an acknowledgement)."""
    if end - start >= 4:
        return -c.i32(buf, start)
    raise MalformedMessage(f"NLMSG_ERROR seq {seq}: {end - start}-byte body has no errno")


def _nsid(buf: bytearray, seq: int, start: int, end: int) -> int:
    """The NETNSA_NSID of an RTM_NEWNSID body (-1 if it has none)."""
    nsid = -1
    try:
        for kind, a, b in c.attrs(buf, start + 4, end):
            if kind == c.NETNSA_NSID:
                if b - a != 4:
                    raise MalformedMessage(f"NETNSA_NSID has {b - a} bytes of payload, expected 4")
                nsid = c.i32(buf, a)
    except MalformedMessage as exc:
        raise MalformedMessage(f"RTM_NEWNSID seq {seq}: {exc}") from exc
    return nsid


def _error(
    buf: bytearray, flags: int, tlvs: int, end: int, err: int, *, obj: str, action: str
) -> NetcoreError:
    """The NetcoreError for errno `err`, with the kernel's extended-ack message when it sent one
    (attributes from `tlvs` to `end`)."""
    error = from_errno(err, obj=obj, action=action)
    if flags & c.NLM_F_ACK_TLVS:
        try:
            for kind, start, stop in c.attrs(buf, tlvs, end):
                if kind == c.NLMSGERR_ATTR_MSG:
                    detail = c.cstr(buf, start, stop)
                    error.args = (f"{error.args[0]}: {detail}",)
        except MalformedMessage:
            pass  # the kernel's errno is the answer; an unreadable explanation must not replace it
    return error
