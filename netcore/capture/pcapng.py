"""Cut a growing pcapng stream into its blocks, as the bytes arrive (what dumpcap writes).

A block is: type (u32), total length (u32), body, total length again; the section header block
(SHB) says the byte order of the section that follows. Only the framing is read here: which blocks
are packets, and where each one ends.
"""

from __future__ import annotations

import struct

from netcore.errors import MalformedMessage

SHB = 0x0A0D0D0A  # section header: the same bytes in either order
PACKET_BLOCKS = frozenset({0x00000006, 0x00000003, 0x00000002})  # enhanced, simple, obsolete packet
_MAGIC = 0x1A2B3C4D
_MAX_BLOCK = 16 * 1024 * 1024  # larger than any packet block dumpcap writes (snaplen ≤ 256 KiB)


class BlockSplitter:
    """Feed bytes in order; get back each complete block with whether it holds a packet."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._order = "<"

    def feed(self, data: bytes) -> list[tuple[bool, bytes]]:
        """The blocks completed by `data`, in order, each as (is_packet, bytes of the block)."""
        self._buffer += data
        blocks: list[tuple[bool, bytes]] = []
        start = 0
        buffer = self._buffer
        while len(buffer) - start >= 12:
            kind = struct.unpack_from("<I", buffer, start)[0]
            if kind == SHB:
                magic = struct.unpack_from("<I", buffer, start + 8)[0]
                if magic == _MAGIC:
                    self._order = "<"
                elif magic == struct.unpack(">I", struct.pack("<I", _MAGIC))[0]:
                    self._order = ">"
                else:
                    raise MalformedMessage(
                        f"pcapng: bad byte-order magic {magic:#x} at byte {start}", obj="pcapng"
                    )
            kind, length = struct.unpack_from(f"{self._order}II", buffer, start)
            if length < 12 or length % 4 or length > _MAX_BLOCK:
                raise MalformedMessage(f"pcapng: block of type {kind:#x} has length {length}", obj="pcapng")
            if len(buffer) - start < length:
                break
            blocks.append((kind in PACKET_BLOCKS, bytes(buffer[start : start + length])))
            start += length
        del self._buffer[:start]
        return blocks
