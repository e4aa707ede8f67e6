"""The device side of the UART host protocol (``boards/protocol.py``, ``docs/host-protocol.md``):
byte streams from and to the UARTs on one side, the network core's beat streams on the other."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from amaranth.hdl import Array, C, Cat, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from boards.link.protocol import (
    ERROR_REPLY,
    IDENTITY_SIZE,
    MAX_LENGTH,
    SELFTEST_SIZE,
    SYNC,
    Command,
    ErrorCode,
    Identity,
    crc16,
    element_bytes,
)
from debut.fixed import Fixed
from hw.layouts import beat_layout
from hw.network import Network

__all__ = ["HostLink", "StatusSignature"]

# where a reply's payload comes from
_KIND_IDENTITY = 0  # the PING reply, a constant
_KIND_SELFTEST = 1  # the checksum and cycle count registers
_KIND_ERROR = 2  # the error code and the command byte
_KIND_OUTPUT = 3  # the core's output beats (INFER)


class StatusSignature(wiring.Signature):
    """For LEDs: ``busy`` while a frame is received, executed or answered; ``error`` from an
    ERROR reply until the next successful PING."""

    def __init__(self) -> None:
        super().__init__({"busy": Out(1), "error": Out(1)})


def _gf2_columns(update: Callable[[int, bytes], int], state_bits: int, data_bits: int):
    """The columns of a CRC register update, a linear map over GF(2) of (state, data): the new
    state for each single state bit and for each single data bit (bit ``k`` of the data is bit
    ``k % 8`` of byte ``k // 8``)."""
    size = data_bits // 8
    zero = bytes(size)
    state = [update(1 << i, zero) for i in range(state_bits)]
    data = [update(0, (1 << k).to_bytes(size, "little")) for k in range(data_bits)]
    return state, data


def _linear_update(
    m: Module, update: Callable[[int, bytes], int], width: int, state: Value, data: Value
) -> Signal:
    """``update`` (a CRC register update, ``width`` bits) of ``state`` by ``data`` (whole bytes)
    as one XOR per output bit, driven combinationally in ``m``."""
    state_cols, data_cols = _gf2_columns(update, width, len(data))
    # bits of signals, not of expressions: the simulator evaluates an expression per bit taken
    state_bits, data_bits = Signal(len(state)), Signal(len(data))
    result = Signal(width)
    m.d.comb += [state_bits.eq(state), data_bits.eq(data)]
    for j in range(width):
        terms = [state_bits[i] for i, col in enumerate(state_cols) if col >> j & 1]
        terms += [data_bits[k] for k, col in enumerate(data_cols) if col >> j & 1]
        m.d.comb += result[j].eq(Cat(*terms).xor() if terms else 0)
    return result


def _crc16_update(state: int, data: bytes) -> int:
    return crc16(data, state)


def _crc32_update(state: int, data: bytes) -> int:
    """The bare CRC-32 register update (reflected polynomial 0xEDB88320), bit by bit; tests hold
    the hardware built from it against ``zlib.crc32``."""
    for byte in data:
        state ^= byte
        for _ in range(8):
            state = (state >> 1) ^ 0xEDB8_8320 if state & 1 else state >> 1
    return state


def _extend(bits: Value, fmt: Fixed, width: int) -> Value:
    """Raw element bits to ``width`` bits: sign-extended for signed formats, zero-extended else."""
    pad = width - fmt.width
    if pad == 0:
        return bits
    return Cat(bits, bits[-1].replicate(pad) if fmt.signed else C(0, pad))


class HostLink(wiring.Component):
    """Answers host frames (PING, INFER, SELFTEST) over byte streams, driving the network core.

    Ports
    -----
    rx : ``In(stream.Signature(8))``
        Bytes from the host (the UART receiver).
    tx : ``Out(stream.Signature(8))``
        Bytes to the host (the UART transmitter).
    core_i : ``Out(stream.Signature(beat_layout(in_format, in_per_beat)))``
        Input beats to the core (first/last framing as in ``docs/report.md``).
    core_o : ``In(stream.Signature(beat_layout(out_format, out_per_beat)))``
        Output beats from the core.
    status : ``Out(StatusSignature())``
        ``busy`` and ``error`` for LEDs.
    tick : ``In(1)``
        The timeout's time base (high by default: the timeout counts cycles).

    Behaviour: frames are parsed a byte every two cycles at most. INFER payload elements go to
    the core as they arrive, and the core's output beats are sent back as the reply, a byte every
    two cycles at most (the core is held by backpressure in between): throughput is bound by the
    UART. An INFER whose CRC fails after its whole vector went in has the core's output drained and
    dropped. SELFTEST feeds the ``selftest`` vectors from a ROM back to back as fast as the core
    takes them with ``core_o`` always ready, and counts the cycles from the first input transfer
    to the last output transfer. Bytes that arrive while a reply is executed or sent are
    discarded. Frames that stop arriving are abandoned (TRUNCATED) after ``timeout`` ticks
    without a byte (never, when None); a tick is a cycle with ``tick`` high, every cycle unless
    ``tick`` is driven. ``design_id`` is reported by PING
    (:class:`boards.link.protocol.Identity`).

    Timing: a reply's first byte is offered four cycles after the request's last byte (the
    CRC is checked, then the command decided, then the byte is registered; INFER: its bytes
    follow as the core's output beats become valid; SELFTEST: after the run). ``tx`` is driven
    from registers, and a byte is chosen only while none waits, so that ``tx.ready`` reaches no
    decision of the frame logic.
    """

    def __init__(
        self,
        *,
        in_format: Fixed,
        in_features: int,
        in_per_beat: int,
        out_format: Fixed,
        out_features: int,
        out_per_beat: int,
        selftest: np.ndarray,
        timeout: int | None = None,
        design_id: int = 0,
    ) -> None:
        for name, n, per_beat, fmt in [
            ("in", in_features, in_per_beat, in_format),
            ("out", out_features, out_per_beat, out_format),
        ]:
            if not isinstance(fmt, Fixed):
                raise ValueError(f"{name}_format must be a Fixed, not {fmt!r}")
            if not isinstance(n, int) or not 1 <= n * element_bytes(fmt) <= MAX_LENGTH:
                raise ValueError(
                    f"{name}_features must be an int in 1..{MAX_LENGTH // element_bytes(fmt)}, "
                    f"not {n!r}"
                )
            if not isinstance(per_beat, int) or not 1 <= per_beat <= n:
                raise ValueError(f"{name}_per_beat must be in 1..{n}, not {per_beat!r}")
        selftest = np.asarray(selftest)
        if (
            selftest.ndim != 2
            or selftest.shape[1] != in_features
            or not 1 <= selftest.shape[0] <= 0xFFFF
        ):
            raise ValueError(
                f"selftest must be an array of 1..65535 vectors of {in_features} elements, "
                f"not shape {selftest.shape}"
            )
        if not np.issubdtype(selftest.dtype, np.integer):
            raise ValueError(f"selftest must hold integers, not {selftest.dtype}")
        if selftest.min() < in_format.min_int or selftest.max() > in_format.max_int:
            raise ValueError(
                f"selftest elements must lie in {in_format.min_int}..{in_format.max_int} "
                f"({in_format}), not {selftest.min()}..{selftest.max()}"
            )
        if timeout is not None and (not isinstance(timeout, int) or timeout < 1):
            raise ValueError(f"timeout must be a positive int or None, not {timeout!r}")
        self.in_format, self.in_features, self.in_per_beat = in_format, in_features, in_per_beat
        self.out_format, self.out_features = out_format, out_features
        self.out_per_beat = out_per_beat
        self.selftest = selftest.astype(np.int64)
        self.timeout = timeout
        self.identity = Identity(
            in_features, in_format, out_features, out_format, len(selftest), design_id
        )
        self._identity_bytes = self.identity.encode()  # checks the ranges
        self.in_bytes = in_features * element_bytes(in_format)
        self.out_bytes = out_features * element_bytes(out_format)
        self.in_beats = -(-in_features // in_per_beat)
        self.out_beats = -(-out_features // out_per_beat)
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "tx": Out(stream.Signature(8)),
                "core_i": Out(stream.Signature(beat_layout(in_format, in_per_beat))),
                "core_o": In(stream.Signature(beat_layout(out_format, out_per_beat))),
                "status": Out(StatusSignature()),
                "tick": In(1, init=1),
            }
        )

    @classmethod
    def for_network(cls, network: Network, *, selftest: np.ndarray, **kwargs) -> HostLink:
        """A host link matching the streams of a :class:`hw.network.Network`."""
        des, ser = network.deserializer, network.serializer
        return cls(
            in_format=des.fmt,
            in_features=des.length,
            in_per_beat=des.per_beat,
            out_format=ser.fmt,
            out_features=ser.length,
            out_per_beat=ser.per_beat,
            selftest=selftest,
            **kwargs,
        )

    @property
    def max_payload(self) -> int:
        """The longest payload accepted; a longer length field is answered OVERSIZED."""
        return self.in_bytes

    def _rom_words(self) -> list[int]:
        """One word per input beat of the self-test vectors: lanes, then ``first``, ``last``."""
        fmt, per_beat = self.in_format, self.in_per_beat
        mask = (1 << fmt.width) - 1
        words = []
        for vector in self.selftest.tolist():
            for b in range(self.in_beats):
                lanes = vector[b * per_beat : (b + 1) * per_beat]
                word = sum((v & mask) << (k * fmt.width) for k, v in enumerate(lanes))
                word |= (b == 0) << (per_beat * fmt.width)
                word |= (b == self.in_beats - 1) << (per_beat * fmt.width + 1)
                words.append(word)
        return words

    def elaborate(self, platform) -> Module:
        m = Module()
        in_fmt, out_fmt = self.in_format, self.out_format
        in_w, out_w = in_fmt.width, out_fmt.width
        in_size, out_size = element_bytes(in_fmt), element_bytes(out_fmt)
        in_pb, out_pb = self.in_per_beat, self.out_per_beat
        max_reply = max(IDENTITY_SIZE, SELFTEST_SIZE, 2, self.out_bytes)

        rx, tx, core_i, core_o = self.rx, self.tx, self.core_i, self.core_o
        # rx.ready is a register: a byte is taken at most every other cycle, and whether the
        # next one can be is decided from the state the last one left (the frame logic never
        # waits on its own ready)
        rx_take = Signal()
        rx_fire = rx.valid & rx_take
        m.d.comb += rx.ready.eq(rx_take)
        byte = rx.payload

        # the byte offered to the transmitter, in registers; the reply states choose the next
        # one only while this one is empty
        tx_full = Signal()
        tx_data = Signal(8)
        m.d.comb += [tx.valid.eq(tx_full), tx.payload.eq(tx_data)]
        with m.If(tx.ready):
            m.d.sync += tx_full.eq(0)

        # --- receive side
        cmd = Signal(8)
        length_lo = Signal(8)
        remaining = Signal(range(self.max_payload + 1))  # payload bytes still to come
        empty = Signal()  # the payload length is 0
        exact = Signal()  # the payload length is one input vector
        forward = Signal()  # an INFER of the right length: its payload goes to the core
        crc_lo = Signal(8)
        crc_hi = Signal(8)
        crc_ok = Signal()
        elem = Signal(8 * in_size)
        byte_in_elem = Signal(range(in_size))
        elem_idx = Signal(range(self.in_features))
        lane = Signal(range(in_pb))
        beat_data = Signal(in_pb * in_w)
        beat_first = Signal()
        beat_last = Signal()
        beat_full = Signal()  # a beat waits on core_i
        vector_sent = Signal()  # this frame's whole vector went into the core
        idle = Signal(range(self.timeout or 1))  # ticks without a byte inside a frame
        timed_out = Signal()  # registered, so that rx.ready does not wait on a comparator

        # one CRC register serves the frame received and then the reply sent. It takes each
        # byte a cycle after the byte's transfer, from a register (crc_byte, crc_load), so that
        # no path runs from the frame logic that chooses a byte through the CRC's XORs
        crc = Signal(16)
        crc_byte = Signal(8)
        crc_load = Signal()
        m.d.sync += crc_load.eq(0)
        with m.If(crc_load):
            m.d.sync += crc.eq(_linear_update(m, _crc16_update, 16, crc, crc_byte))

        # --- reply side
        reply_cmd = Signal(8)
        reply_len = Signal(range(max_reply + 1))
        reply_kind = Signal(2)
        reply_output = Signal()  # reply_kind is _KIND_OUTPUT
        tx_last = Signal()  # tx_pos is the payload's last byte
        beat_end = Signal()  # the output byte is the last of its beat
        error_code = Signal(8)
        tx_pos = Signal(range(max_reply))
        out_lane = Signal(range(out_pb))
        out_byte = Signal(range(out_size))
        out_elem = Signal(range(self.out_features))
        error_seen = Signal()

        # --- self-test
        words = self._rom_words()
        total_in, total_out = len(words), len(self.selftest) * self.out_beats
        m.submodules.rom = rom = Memory(
            shape=unsigned(in_pb * in_w + 2), depth=total_in, init=words
        )
        rd = rom.read_port()
        feeding = Signal()  # self-test beats go to the core
        started = Signal()
        rom_idx = Signal(range(total_in))  # the beat offered
        # the indices of the two beats after it (mod total_in), and the offered beat's word
        rom_idx1 = Signal(range(total_in), init=1 % total_in)
        rom_idx2 = Signal(range(total_in), init=2 % total_in)
        rom_word = Signal(rd.data.shape(), init=words[0])
        out_count = Signal(range(total_out))
        cycles = Signal(32)
        checksum = Signal(32)

        # --- core streams
        m.d.comb += [
            core_i.valid.eq(beat_full | feeding),
            core_i.payload.as_value().eq(
                Mux(feeding, rom_word, Cat(beat_data, beat_first, beat_last))
            ),
        ]
        in_fire = core_i.valid & core_i.ready
        with m.If(in_fire & ~feeding):
            m.d.sync += beat_full.eq(0)
            with m.If(beat_last):
                m.d.sync += vector_sent.eq(1)
        rom_fire = in_fire & feeding
        # the read port runs a beat ahead of the offered word, which is a register (no path
        # starts at the block RAM's slow output): the port holds the next beat's word, and in
        # the cycle the offered beat is taken it reads the one after
        m.d.comb += rd.addr.eq(Mux(rom_fire, rom_idx2, rom_idx1))
        with m.If(rom_fire):
            m.d.sync += [
                rom_word.eq(rd.data),
                rom_idx.eq(rom_idx1),
                rom_idx1.eq(rom_idx2),
                rom_idx2.eq(Mux(rom_idx2 == total_in - 1, 0, rom_idx2 + 1)),
            ]
            with m.If(rom_idx == total_in - 1):
                m.d.sync += feeding.eq(0)

        out_raw = core_o.payload.data.as_value()
        # in DRAIN and SELFTEST core_o is always ready, so a valid beat is a transfer there
        checksum_next = self._checksum_update(m, checksum, out_raw)

        def reply(command: int, size: int, kind: int) -> None:
            m.d.sync += [
                reply_cmd.eq(command),
                reply_len.eq(size),
                reply_kind.eq(kind),
                reply_output.eq(kind == _KIND_OUTPUT),
                tx_last.eq(size == 1),
                beat_end.eq(out_size == 1 and (out_pb == 1 or self.out_features == 1)),
                tx_pos.eq(0),
                out_lane.eq(0),
                out_byte.eq(0),
                out_elem.eq(0),
            ]

        def error(code: ErrorCode) -> None:
            reply(ERROR_REPLY, 2, _KIND_ERROR)
            m.d.sync += [error_code.eq(code), error_seen.eq(1)]
            with m.If(vector_sent):
                m.next = "DRAIN"  # the core holds an output for a frame that failed
            with m.Else():
                m.next = "TX_SYNC0"

        # inside a frame (CMD to CRC1): ready unless a beat waits on the core; the timeout; the
        # CRC over command, length and payload (CMD to PAYLOAD)
        in_frame = Signal()
        crc_covers = Signal()
        with m.If(in_frame):
            m.d.sync += rx_take.eq(~rx_fire & ~beat_full & ~timed_out)
            if self.timeout is not None:
                with m.If(rx_fire):
                    m.d.sync += idle.eq(0)
                with m.Elif(~beat_full & ~timed_out & self.tick):
                    m.d.sync += idle.eq(idle + 1)
                    with m.If(idle == self.timeout - 1):
                        m.d.sync += timed_out.eq(1)
        with m.Else():  # outside a frame every byte is taken (and discarded but in HUNT, SYNC1)
            m.d.sync += rx_take.eq(~rx_fire)
        with m.If(crc_covers & rx_fire):
            m.d.sync += [crc_byte.eq(rx.payload), crc_load.eq(1)]

        def receive(covered: bool = True) -> None:
            m.d.comb += [in_frame.eq(1), crc_covers.eq(covered)]
            with m.If(timed_out):
                error(ErrorCode.TRUNCATED)

        with m.FSM() as fsm:
            with m.State("HUNT"), m.If(rx_fire & (byte == SYNC[0])):
                m.next = "SYNC1"
            with m.State("SYNC1"), m.If(rx_fire):
                with m.If(byte == SYNC[1]):
                    m.d.sync += [
                        cmd.eq(0),
                        crc.eq(0xFFFF),
                        idle.eq(0),
                        timed_out.eq(0),
                        vector_sent.eq(0),
                    ]
                    m.next = "CMD"
                with m.Elif(byte != SYNC[0]):
                    m.next = "HUNT"
            with m.State("CMD"):
                receive()
                with m.If(rx_fire):
                    m.d.sync += cmd.eq(byte)
                    m.next = "LEN0"
            with m.State("LEN0"):
                receive()
                with m.If(rx_fire):
                    m.d.sync += length_lo.eq(byte)
                    m.next = "LEN1"
            with m.State("LEN1"):
                receive()
                length = Cat(length_lo, byte)
                with m.If(rx_fire):
                    m.d.sync += [
                        remaining.eq(length),
                        empty.eq(length == 0),
                        exact.eq(length == self.in_bytes),
                        forward.eq((cmd == Command.INFER) & (length == self.in_bytes)),
                        elem_idx.eq(0),
                        lane.eq(0),
                        byte_in_elem.eq(0),
                    ]
                    with m.If(length > self.max_payload):
                        error(ErrorCode.OVERSIZED)
                    with m.Elif(length == 0):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                receive()
                with m.If(rx_fire):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.next = "CRC0"
                    with m.If(forward):
                        word = Cat(elem[8:], byte)
                        m.d.sync += elem.eq(word)
                        with m.If(byte_in_elem == in_size - 1):
                            last_elem = elem_idx == self.in_features - 1
                            m.d.sync += [
                                byte_in_elem.eq(0),
                                beat_data.word_select(lane, in_w).eq(word[:in_w]),
                                elem_idx.eq(elem_idx + 1),
                            ]
                            with m.If((lane == in_pb - 1) | last_elem):
                                m.d.sync += [
                                    lane.eq(0),
                                    beat_full.eq(1),
                                    beat_first.eq(elem_idx == lane),
                                    beat_last.eq(last_elem),
                                ]
                            with m.Else():
                                m.d.sync += lane.eq(lane + 1)
                        with m.Else():
                            m.d.sync += byte_in_elem.eq(byte_in_elem + 1)
            with m.State("CRC0"):
                receive(covered=False)
                with m.If(rx_fire):
                    m.d.sync += crc_lo.eq(byte)
                    m.next = "CRC1"
            with m.State("CRC1"):
                receive(covered=False)
                with m.If(rx_fire):
                    m.d.sync += crc_hi.eq(byte)
                    m.next = "CHECK"
            # the frame's CRC against the one computed, then the command: a cycle each, so
            # that neither the comparison nor the command's decision waits on the other
            with m.State("CHECK"):
                m.d.sync += crc_ok.eq(Cat(crc_lo, crc_hi) == crc)
                m.next = "EXECUTE"
            with m.State("EXECUTE"):
                with m.If(~crc_ok):
                    error(ErrorCode.BAD_CRC)
                with m.Elif(cmd == Command.PING):
                    with m.If(~empty):
                        error(ErrorCode.BAD_LENGTH)
                    with m.Else():
                        reply(Command.PING.reply, IDENTITY_SIZE, _KIND_IDENTITY)
                        m.d.sync += error_seen.eq(0)
                        m.next = "TX_SYNC0"
                with m.Elif(cmd == Command.INFER):
                    with m.If(~exact):
                        error(ErrorCode.BAD_LENGTH)
                    with m.Else():
                        reply(Command.INFER.reply, self.out_bytes, _KIND_OUTPUT)
                        m.next = "TX_SYNC0"
                with m.Elif(cmd == Command.SELFTEST):
                    with m.If(~empty):
                        error(ErrorCode.BAD_LENGTH)
                    with m.Else():
                        m.d.sync += [
                            feeding.eq(1),
                            started.eq(0),
                            cycles.eq(0),
                            checksum.eq(0xFFFF_FFFF),
                            out_count.eq(0),
                        ]
                        m.next = "SELFTEST"
                with m.Else():
                    error(ErrorCode.UNKNOWN_COMMAND)
            with m.State("DRAIN"):
                m.d.comb += core_o.ready.eq(1)
                with m.If(core_o.valid & core_o.payload.last):
                    m.next = "TX_SYNC0"
            with m.State("SELFTEST"):
                m.d.comb += core_o.ready.eq(1)
                last_out = core_o.valid & (out_count == total_out - 1)
                with m.If((started | rom_fire) & ~last_out & (cycles != 0xFFFF_FFFF)):
                    m.d.sync += cycles.eq(cycles + 1)
                with m.If(rom_fire):
                    m.d.sync += started.eq(1)
                with m.If(core_o.valid):
                    m.d.sync += [checksum.eq(checksum_next), out_count.eq(out_count + 1)]
                with m.If(last_out):
                    m.d.sync += checksum.eq(checksum_next ^ 0xFFFF_FFFF)
                    reply(Command.SELFTEST.reply, SELFTEST_SIZE, _KIND_SELFTEST)
                    m.next = "TX_SYNC0"

            def send(state: str, value: Value, following: str, crc_use: str | None) -> None:
                """A state that sends one byte; ``crc_use``: "start" the CRC register after it,
                "cover" the byte by the CRC, or "send" a byte of the CRC (offered once the
                CRC took the bytes before)."""
                free = ~tx_full & (~crc_load if crc_use == "send" else 1)
                with m.State(state), m.If(free):
                    m.d.sync += [tx_data.eq(value), tx_full.eq(1)]
                    if crc_use == "start":
                        m.d.sync += crc.eq(0xFFFF)
                    elif crc_use == "cover":
                        m.d.sync += [crc_byte.eq(value), crc_load.eq(1)]
                    m.next = following

            send("TX_SYNC0", C(SYNC[0], 8), "TX_SYNC1", "start")
            send("TX_SYNC1", C(SYNC[1], 8), "TX_CMD", None)
            send("TX_CMD", reply_cmd, "TX_LEN0", "cover")
            send("TX_LEN0", reply_len[:8], "TX_LEN1", "cover")
            send("TX_LEN1", reply_len[8:], "TX_PAYLOAD", "cover")
            with m.State("TX_PAYLOAD"):
                identity = Array(C(b, 8) for b in self._identity_bytes)
                selftest = Cat(checksum, cycles)
                element = _extend(out_raw.word_select(out_lane, out_w), out_fmt, 8 * out_size)
                value = Signal(8)
                available = Signal()  # the byte at tx_pos can be taken
                m.d.comb += available.eq(1)
                with m.Switch(reply_kind):
                    with m.Case(_KIND_IDENTITY):
                        m.d.comb += value.eq(identity[tx_pos])
                    with m.Case(_KIND_SELFTEST):
                        m.d.comb += value.eq(selftest.word_select(tx_pos[:3], 8))
                    with m.Case(_KIND_ERROR):
                        m.d.comb += value.eq(Mux(tx_pos[0], cmd, error_code))
                    with m.Case(_KIND_OUTPUT):
                        m.d.comb += [
                            available.eq(core_o.valid),
                            value.eq(element.word_select(out_byte, 8)),
                        ]
                take = ~tx_full & available
                with m.If(take):
                    m.d.sync += [
                        tx_data.eq(value),
                        tx_full.eq(1),
                        crc_byte.eq(value),
                        crc_load.eq(1),
                        tx_pos.eq(tx_pos + 1),
                        tx_last.eq(tx_pos + 2 == reply_len),
                    ]
                    with m.If(tx_last):
                        m.next = "TX_CRC0"
                # the position in the core's output: byte of the element, lane of the beat and
                # element of the vector; whether the next byte ends its beat is decoded ahead
                with m.If(take & reply_output):
                    m.d.comb += core_o.ready.eq(beat_end)
                    next_byte = Signal.like(out_byte)
                    next_lane = Signal.like(out_lane)
                    next_elem = Signal.like(out_elem)
                    m.d.comb += [next_byte.eq(out_byte + 1), next_lane.eq(out_lane)]
                    m.d.comb += next_elem.eq(out_elem)
                    with m.If(out_byte == out_size - 1):
                        last_elem = out_elem == self.out_features - 1
                        m.d.comb += [next_byte.eq(0), next_elem.eq(out_elem + 1)]
                        with m.If((out_lane == out_pb - 1) | last_elem):
                            m.d.comb += next_lane.eq(0)
                        with m.Else():
                            m.d.comb += next_lane.eq(out_lane + 1)
                    m.d.sync += [
                        out_byte.eq(next_byte),
                        out_lane.eq(next_lane),
                        out_elem.eq(next_elem),
                        beat_end.eq(
                            (next_byte == out_size - 1)
                            & ((next_lane == out_pb - 1) | (next_elem == self.out_features - 1))
                        ),
                    ]
            send("TX_CRC0", crc[:8], "TX_CRC1", "send")
            send("TX_CRC1", crc[8:], "HUNT", "send")

        m.d.comb += [
            self.status.busy.eq(~fsm.ongoing("HUNT") & ~fsm.ongoing("SYNC1")),
            self.status.error.eq(error_seen),
        ]
        return m

    def _checksum_update(self, m: Module, checksum: Value, out_raw: Value) -> Value:
        """The CRC-32 register after one output beat: its lanes, each extended to whole bytes;
        the last beat of a vector carries only the elements left over."""
        fmt, per_beat = self.out_format, self.out_per_beat
        size = 8 * element_bytes(fmt)

        def lanes(count: int) -> Value:
            return Cat(
                *(_extend(out_raw.word_select(k, fmt.width), fmt, size) for k in range(count))
            )

        full = _linear_update(m, _crc32_update, 32, checksum, lanes(per_beat))
        left = self.out_features % per_beat
        if left == 0:
            return full
        partial = _linear_update(m, _crc32_update, 32, checksum, lanes(left))
        return Mux(self.core_o.payload.last, partial, full)
