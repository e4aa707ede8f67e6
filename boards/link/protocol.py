"""The host side of the UART link to a board: frames, commands, payload encodings, checksums.

A frame is ``SYNC | command | length | payload | crc``::

    0xA5 0x5A | 1 byte | 2 bytes, little-endian | `length` bytes | 2 bytes, little-endian

``crc`` is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no final
XOR) over ``command``, ``length`` and ``payload``. The host sends requests; the device answers
each with exactly one reply whose command is the request's with bit 7 set, or with
:data:`ERROR_REPLY`. ``docs/host-protocol.md`` is the full specification; this module is its
reference implementation and :mod:`boards.link.device` the device side.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from debut.errors import LinkError
from debut.fixed import MAX_FRAC, MIN_FRAC, Fixed

__all__ = [
    "DEFAULT_BAUD",
    "ERROR_REPLY",
    "ERROR_REPLY_SIZE",
    "HEADER_SIZE",
    "IDENTITY_SIZE",
    "MAGIC",
    "MAX_LENGTH",
    "PROTOCOL_VERSION",
    "REPLY_FLAG",
    "SELFTEST_SIZE",
    "SYNC",
    "TRAILER_SIZE",
    "Command",
    "DeviceError",
    "ErrorCode",
    "ErrorReply",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "Identity",
    "ProtocolError",
    "SelftestResult",
    "check_reply",
    "crc16",
    "decode_frames",
    "element_bytes",
    "encode_frame",
    "infer_request",
    "pack_vector",
    "pack_vectors",
    "parse_infer_reply",
    "parse_ping_reply",
    "parse_selftest_reply",
    "ping_request",
    "selftest_checksum",
    "selftest_request",
    "unpack_vector",
]

PROTOCOL_VERSION = 1
SYNC = b"\xa5\x5a"
HEADER_SIZE = 5  # SYNC, command, length
TRAILER_SIZE = 2  # CRC
MAX_LENGTH = 0xFFFF  # the length field's range
REPLY_FLAG = 0x80  # a reply's command is the request's with this bit set
ERROR_REPLY = 0xFF
ERROR_REPLY_SIZE = 2  # the ERROR reply's payload: error code, command byte
MAGIC = b"DBUT"
DEFAULT_BAUD = 1_000_000  # an exact divisor of 25, 50, 75 and 100 MHz; see docs/host-protocol.md


class Command(IntEnum):
    """Requests the device understands."""

    PING = 0x01
    INFER = 0x02
    SELFTEST = 0x03

    @property
    def reply(self) -> int:
        return self | REPLY_FLAG


class ErrorCode(IntEnum):
    """The first payload byte of an :data:`ERROR_REPLY`, and the kind of a :class:`FrameError`."""

    BAD_CRC = 0x01  # the CRC does not match; nothing in the frame is trusted
    BAD_LENGTH = 0x02  # a known command with a payload length it does not take
    UNKNOWN_COMMAND = 0x03
    OVERSIZED = 0x04  # the length field exceeds the largest payload the receiver takes
    TRUNCATED = 0x05  # the frame stopped before its end (the device: an inter-byte timeout)


class ProtocolError(LinkError):
    """A reply breaks the protocol (wrong command, wrong length, out-of-range values)."""


class DeviceError(ProtocolError):
    """The device answered with an ERROR reply."""

    def __init__(self, code: int, command: int) -> None:
        self.code, self.command = code, command
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = f"unknown error code 0x{code:02x}"
        super().__init__(f"the device rejected a frame with command 0x{command:02x}: {name}")


# --- checksums ---------------------------------------------------------------------------------


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
        table.append(crc)
    return table


_CRC16_TABLE = _crc16_table()


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data``, continuing from register value ``crc`` (the initial value
    0xFFFF starts a new CRC). ``crc16(b"123456789") == 0x29B1``."""
    table = _CRC16_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


def selftest_checksum(outputs: np.ndarray, fmt: Fixed) -> int:
    """The SELFTEST checksum: CRC-32 (IEEE 802.3, as ``zlib.crc32``: reflected polynomial
    0xEDB88320, initial value and final XOR 0xFFFFFFFF) over the output vectors in order, each
    encoded exactly as an INFER reply payload (:func:`pack_vector`)."""
    outputs = np.asarray(outputs)
    if outputs.ndim != 2:
        raise ValueError(f"outputs must be a 2-d array (vectors, elements), not {outputs.shape}")
    return zlib.crc32(pack_vectors(outputs, fmt, outputs.shape[1]))


# --- frames ------------------------------------------------------------------------------------


def encode_frame(command: int, payload: bytes = b"") -> bytes:
    """One frame: SYNC, command, length, payload and CRC."""
    if not 0 <= command <= 0xFF:
        raise ValueError(f"command must be a byte, not {command!r}")
    if len(payload) > MAX_LENGTH:
        raise ValueError(f"payload must be at most {MAX_LENGTH} bytes, not {len(payload)}")
    body = bytes([command]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return SYNC + body + crc16(body).to_bytes(2, "little")


@dataclass(frozen=True)
class Frame:
    """A frame that passed its CRC check."""

    command: int
    payload: bytes


@dataclass(frozen=True)
class FrameError:
    """A frame the decoder rejected: ``kind`` is BAD_CRC, OVERSIZED or TRUNCATED; ``command`` and
    ``length`` are as received (None where they did not arrive)."""

    kind: ErrorCode
    command: int | None
    length: int | None


class FrameDecoder:
    """Streaming frame decoder: :meth:`feed` it bytes as they arrive and it returns the frames and
    errors completed so far.

    Bytes before a SYNC are skipped (counted in :attr:`skipped`). A frame whose length exceeds
    ``max_payload`` (OVERSIZED) or whose CRC does not match (BAD_CRC) yields a :class:`FrameError`
    and the search for SYNC resumes at the byte after the rejected frame's first SYNC byte, so a
    good frame hidden inside a bad one is still found. A frame still incomplete when the stream
    ends (:meth:`flush`, e.g. after a read timeout) yields TRUNCATED.

    The work is bounded whatever arrives: the CRC of a candidate frame is computed as its bytes
    arrive, each byte once per candidate frame that holds it, and a candidate holds at most
    ``max_payload + 7`` bytes; so a host that sets ``max_payload`` from the reply it expects does
    a bounded amount of work per byte received. :attr:`work` counts the bytes examined.
    """

    def __init__(self, max_payload: int = MAX_LENGTH) -> None:
        if not 0 <= max_payload <= MAX_LENGTH:
            raise ValueError(f"max_payload must be in 0..{MAX_LENGTH}, not {max_payload!r}")
        self.max_payload = max_payload
        self.skipped = 0  # bytes that were not part of a good frame
        self.work = 0  # bytes examined by the SYNC search and the CRC
        self._buffer = bytearray()
        self._pos = 0  # where the undecoded bytes start in _buffer
        self._crc: int | None = None  # running CRC of the candidate frame at _pos
        self._checked = 0  # bytes of the candidate (from its start) the CRC has covered

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        self._buffer += data
        return self._decode()

    def flush(self) -> list[Frame | FrameError]:
        """End of stream: report an incomplete frame as TRUNCATED, then decode what follows its
        SYNC; returns with the buffer empty."""
        results = self._decode()
        while self.pending:
            if self._buffer.startswith(SYNC, self._pos):
                command = self._byte(2) if self.pending > 2 else None
                length = self._length() if self.pending >= HEADER_SIZE else None
                results.append(FrameError(ErrorCode.TRUNCATED, command, length))
            self._drop(1)
            results += self._decode()
        return results

    @property
    def pending(self) -> int:
        """Bytes held back as the start of an incomplete frame."""
        return len(self._buffer) - self._pos

    def _byte(self, offset: int) -> int:
        return self._buffer[self._pos + offset]

    def _length(self) -> int:
        return int.from_bytes(self._buffer[self._pos + 3 : self._pos + 5], "little")

    def _drop(self, count: int) -> None:
        """Skip ``count`` bytes at the start; the candidate frame there, if any, is given up."""
        self.skipped += count
        self._pos += count
        self._crc = None
        if self._pos > 4096 and self._pos * 2 > len(self._buffer):
            del self._buffer[: self._pos]
            self._pos = 0

    def _decode(self) -> list[Frame | FrameError]:
        results: list[Frame | FrameError] = []
        while True:
            if self._crc is None:
                found = self._buffer.find(SYNC, self._pos)
                if found < 0:
                    # keep a trailing first SYNC byte: its partner may be in the next read
                    keep = 1 if self.pending and self._buffer[-1] == SYNC[0] else 0
                    self.work += self.pending
                    self._drop(self.pending - keep)
                    return results
                self.work += found - self._pos + len(SYNC)
                if found > self._pos:
                    self._drop(found - self._pos)
                if self.pending < HEADER_SIZE:
                    return results
                if self._length() > self.max_payload:
                    results.append(FrameError(ErrorCode.OVERSIZED, self._byte(2), self._length()))
                    self._drop(1)
                    continue
                self._crc, self._checked = 0xFFFF, len(SYNC)
            length = self._length()
            body_end = HEADER_SIZE + length
            available = min(self.pending, body_end)
            if available > self._checked:
                start = self._pos + self._checked
                self._crc = crc16(self._buffer[start : self._pos + available], self._crc)
                self.work += available - self._checked
                self._checked = available
            end = body_end + TRAILER_SIZE
            if self.pending < end:
                return results
            trailer = self._buffer[self._pos + body_end : self._pos + end]
            if self._crc != int.from_bytes(trailer, "little"):
                results.append(FrameError(ErrorCode.BAD_CRC, self._byte(2), length))
                self._drop(1)
                continue
            payload = bytes(self._buffer[self._pos + HEADER_SIZE : self._pos + body_end])
            results.append(Frame(self._byte(2), payload))
            self.skipped -= end  # a good frame's bytes are not skipped ones
            self._drop(end)


def decode_frames(data: bytes, max_payload: int = MAX_LENGTH) -> list[Frame | FrameError]:
    """Every frame and error in a complete byte string (a trailing partial frame is TRUNCATED)."""
    decoder = FrameDecoder(max_payload)
    return decoder.feed(data) + decoder.flush()


# --- vectors -----------------------------------------------------------------------------------


def element_bytes(fmt: Fixed) -> int:
    """Bytes per element on the wire: the format's width rounded up to whole bytes."""
    return -(-fmt.width // 8)


def pack_vector(values: Sequence[int] | np.ndarray, fmt: Fixed, count: int) -> bytes:
    """``count`` integers in format ``fmt``, each as :func:`element_bytes` bytes of little-endian
    two's complement (unsigned formats: plain binary), element 0 first."""
    values = np.asarray(values)
    if values.shape != (count,):
        raise ValueError(f"vector must have {count} elements, not shape {values.shape}")
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"vector must hold integers, not {values.dtype}")
    size = element_bytes(fmt)
    out = bytearray()
    for k, value in enumerate(values.tolist()):
        if not fmt.min_int <= value <= fmt.max_int:
            raise ValueError(
                f"element {k} must lie in {fmt.min_int}..{fmt.max_int} ({fmt}), not {value}"
            )
        out += value.to_bytes(size, "little", signed=fmt.signed)
    return bytes(out)


def pack_vectors(vectors: Iterable, fmt: Fixed, count: int) -> bytes:
    """:func:`pack_vector` of each vector, concatenated."""
    return b"".join(pack_vector(v, fmt, count) for v in vectors)


def unpack_vector(data: bytes, fmt: Fixed, count: int) -> np.ndarray:
    """The inverse of :func:`pack_vector` (int64); a payload of the wrong size or with a value
    outside the format raises :class:`ProtocolError`."""
    size = element_bytes(fmt)
    if len(data) != count * size:
        raise ProtocolError(
            f"a vector of {count} x {fmt} must take {count * size} bytes, not {len(data)}"
        )
    values = [
        int.from_bytes(data[k * size : (k + 1) * size], "little", signed=fmt.signed)
        for k in range(count)
    ]
    for k, value in enumerate(values):
        if not fmt.min_int <= value <= fmt.max_int:
            raise ProtocolError(
                f"element {k} must lie in {fmt.min_int}..{fmt.max_int} ({fmt}), not {value}"
            )
    return np.array(values, dtype=np.int64)


# --- payloads ----------------------------------------------------------------------------------

_IDENTITY = struct.Struct("<4sBHBbBHBbBHI")
IDENTITY_SIZE = _IDENTITY.size
_SELFTEST = struct.Struct("<II")
SELFTEST_SIZE = _SELFTEST.size


@dataclass(frozen=True)
class Identity:
    """The PING reply: which protocol and which network the device carries. ``design_id`` is a
    32-bit tag chosen at build time (e.g. the first 4 bytes of the manifest's weights hash)."""

    in_features: int
    in_format: Fixed
    out_features: int
    out_format: Fixed
    selftest_vectors: int
    design_id: int = 0
    version: int = PROTOCOL_VERSION

    def encode(self) -> bytes:
        for name, value, top in [
            ("in_features", self.in_features, 0xFFFF),
            ("out_features", self.out_features, 0xFFFF),
            ("selftest_vectors", self.selftest_vectors, 0xFFFF),
            ("design_id", self.design_id, 0xFFFF_FFFF),
            ("version", self.version, 0xFF),
        ]:
            if not 0 <= value <= top:
                raise ValueError(f"{name} must be in 0..{top}, not {value!r}")
        for name, fmt in [("in_format", self.in_format), ("out_format", self.out_format)]:
            if not MIN_FRAC <= fmt.frac <= MAX_FRAC:
                raise ValueError(f"{name}.frac must be in {MIN_FRAC}..{MAX_FRAC}, not {fmt.frac!r}")
        return _IDENTITY.pack(
            MAGIC,
            self.version,
            self.in_features,
            self.in_format.width,
            self.in_format.frac,
            self.in_format.signed,
            self.out_features,
            self.out_format.width,
            self.out_format.frac,
            self.out_format.signed,
            self.selftest_vectors,
            self.design_id,
        )

    @classmethod
    def decode(cls, payload: bytes) -> Identity:
        if len(payload) != IDENTITY_SIZE:
            raise ProtocolError(f"a PING reply must hold {IDENTITY_SIZE} bytes, not {len(payload)}")
        magic, version, n_in, w_in, f_in, s_in, n_out, w_out, f_out, s_out, vectors, design = (
            _IDENTITY.unpack(payload)
        )
        if magic != MAGIC:
            raise ProtocolError(f"a PING reply must start with {MAGIC!r}, not {magic!r}")
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"the device speaks protocol version {version}; this host speaks {PROTOCOL_VERSION}"
            )
        try:
            in_format, out_format = Fixed(w_in, f_in, bool(s_in)), Fixed(w_out, f_out, bool(s_out))
        except ValueError as exc:
            raise ProtocolError(f"a PING reply holds an invalid format: {exc}") from None
        return cls(n_in, in_format, n_out, out_format, vectors, design, version)


@dataclass(frozen=True)
class SelftestResult:
    """The SELFTEST reply: :func:`selftest_checksum` of the outputs, and the clock cycles from
    the transfer of the first input beat to the transfer of the last output beat."""

    checksum: int
    cycles: int

    def encode(self) -> bytes:
        return _SELFTEST.pack(self.checksum, self.cycles)

    @classmethod
    def decode(cls, payload: bytes) -> SelftestResult:
        if len(payload) != SELFTEST_SIZE:
            raise ProtocolError(
                f"a SELFTEST reply must hold {SELFTEST_SIZE} bytes, not {len(payload)}"
            )
        return cls(*_SELFTEST.unpack(payload))


@dataclass(frozen=True)
class ErrorReply:
    """The ERROR reply's payload: the error code and the command byte of the rejected frame (0
    when it did not arrive)."""

    code: int
    command: int

    def encode(self) -> bytes:
        return bytes([self.code, self.command])

    @classmethod
    def decode(cls, payload: bytes) -> ErrorReply:
        if len(payload) != ERROR_REPLY_SIZE:
            raise ProtocolError(
                f"an ERROR reply must hold {ERROR_REPLY_SIZE} bytes, not {len(payload)}"
            )
        return cls(payload[0], payload[1])


# --- requests and replies ----------------------------------------------------------------------


def ping_request() -> bytes:
    return encode_frame(Command.PING)


def infer_request(values: Sequence[int] | np.ndarray, fmt: Fixed, count: int) -> bytes:
    return encode_frame(Command.INFER, pack_vector(values, fmt, count))


def selftest_request() -> bytes:
    return encode_frame(Command.SELFTEST)


def check_reply(reply: Frame | FrameError, request: Command) -> bytes:
    """The payload of the reply to ``request``; raises :class:`DeviceError` for an ERROR reply and
    :class:`ProtocolError` for a rejected frame or a reply to another command."""
    if isinstance(reply, FrameError):
        raise ProtocolError(f"the reply to {request.name} was rejected: {reply.kind.name}")
    if reply.command == ERROR_REPLY:
        error = ErrorReply.decode(reply.payload)
        raise DeviceError(error.code, error.command)
    if reply.command != request.reply:
        raise ProtocolError(
            f"the reply to {request.name} must have command 0x{request.reply:02x}, "
            f"not 0x{reply.command:02x}"
        )
    return reply.payload


def parse_ping_reply(reply: Frame | FrameError) -> Identity:
    return Identity.decode(check_reply(reply, Command.PING))


def parse_infer_reply(reply: Frame | FrameError, fmt: Fixed, count: int) -> np.ndarray:
    return unpack_vector(check_reply(reply, Command.INFER), fmt, count)


def parse_selftest_reply(reply: Frame | FrameError) -> SelftestResult:
    return SelftestResult.decode(check_reply(reply, Command.SELFTEST))
