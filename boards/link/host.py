"""Host driver for the board's UART link, and the transports it talks through.

:class:`HostDriver` speaks the protocol of ``docs/host-protocol.md``: it takes raw features,
applies the manifest's preprocessing and input format, sends one INFER request per vector and
waits for each reply. :class:`SerialTransport` reaches a board over a serial port;
:class:`SimulatedBoard` is the same link and network core running in the Amaranth simulator,
so the driver and the hardware can be checked together without a board.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from boards.link import protocol
from debut.errors import LinkError
from debut.interface import CoreInterface
from debut.preprocessing import Preprocessing

__all__ = [
    "HostDriver",
    "InferenceRun",
    "SerialTransport",
    "SimulatedBoard",
    "SimulatedTop",
    "Transport",
]


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer (possibly none) when the link's timeout passes."""


class SerialTransport:
    """A serial port (pyserial), e.g. the ULX3S's FT231X at ``/dev/ttyUSB0``."""

    def __init__(self, port: str, baud: int = protocol.DEFAULT_BAUD, timeout_s: float = 1.0):
        import serial

        try:
            self.serial = serial.Serial(port, baud, timeout=timeout_s)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(
                f"cannot open serial port {port!r} ({exc}); is the board plugged in and "
                "flashed (python -m compiler flash DIR)?"
            ) from None

    def write(self, data: bytes) -> None:
        self.serial.write(data)

    def read(self, size: int) -> bytes:
        return self.serial.read(size)


class SimulatedBoard:
    """The host link and a network core in the Amaranth simulator, behind the byte interface
    a serial port has. Bytes written are fed to the link's ``rx`` stream; ``read`` runs the
    simulation until the reply bytes are there (or ``timeout_cycles`` pass)."""

    def __init__(self, network, *, selftest: np.ndarray, timeout_cycles: int = 200_000):
        from amaranth.hdl import Module
        from amaranth.lib import wiring
        from amaranth.sim import Simulator

        from boards.link.device import HostLink

        self.link = HostLink.for_network(network, selftest=selftest)
        m = Module()
        m.submodules.link, m.submodules.network = self.link, network
        wiring.connect(m, self.link.core_i, network.i)
        wiring.connect(m, network.o, self.link.core_o)
        self._pending: deque[int] = deque()
        self._received = bytearray()
        self.cycles = 0
        self.timeout_cycles = timeout_cycles
        self._sim = Simulator(m)
        self._sim.add_clock(1e-8)
        self._sim.add_testbench(self._feed, background=True)
        self._sim.add_testbench(self._collect, background=True)

    async def _feed(self, ctx):
        rx = self.link.rx
        while True:
            if self._pending:
                ctx.set(rx.payload, self._pending.popleft())
                ctx.set(rx.valid, 1)
                await ctx.tick().until(rx.ready)
                ctx.set(rx.valid, 0)
            else:
                await ctx.tick()

    async def _collect(self, ctx):
        tx = self.link.tx
        ctx.set(tx.ready, 1)
        while True:
            _, _, valid, payload = await ctx.tick().sample(tx.valid, tx.payload)
            self.cycles += 1
            if valid:
                self._received.append(int(payload))

    def write(self, data: bytes) -> None:
        self._pending.extend(data)

    def read(self, size: int) -> bytes:
        deadline = self.cycles + self.timeout_cycles
        while len(self._received) < size and self.cycles < deadline:
            self._sim.run_until((self.cycles + 256) * 1e-8)
        out = bytes(self._received[:size])
        del self._received[:size]
        return out


class SimulatedTop:
    """The board's whole design below the pins (:class:`boards.harness.Harness`: UARTs, host
    link, core, LEDs) in the Amaranth simulator, behind the byte interface of a serial port: each
    byte written is sent on the ``rx`` line bit by bit (8N1, ``divisor`` cycles of the ``uart``
    domain per bit) and the ``tx`` line is decoded back into bytes by a UART receiver model
    written here. The ``sync`` domain's clock has a period of 10 ns, the ``uart`` domain's
    ``uart_period`` (not a multiple of it, so that the bytes cross between unrelated clocks);
    ``link_timeout`` is in ticks of ``tick_cycles`` ``uart`` cycles."""

    SYNC_PERIOD = 1e-8

    def __init__(
        self,
        network,
        *,
        selftest: np.ndarray,
        divisor: int = 4,
        uart_period: float = 2.7e-8,
        tick_cycles: int = 16,
        link_timeout: int | None = 500,
        design_id: int = 0,
        timeout_cycles: int = 400_000,
    ):
        from amaranth.sim import Simulator

        from boards.harness import Harness

        self.harness = Harness(
            network,
            divisor=divisor,
            selftest=selftest,
            tick_cycles=tick_cycles,
            timeout_ticks=link_timeout,
            design_id=design_id,
            heartbeat_ticks=100,
        )
        self.divisor = divisor
        self._pending: deque[int] = deque()
        self._received = bytearray()
        self.cycles = 0
        self.timeout_cycles = timeout_cycles
        self.framing_errors = 0
        self._sim = Simulator(self.harness)
        self._sim.add_clock(self.SYNC_PERIOD)
        self._sim.add_clock(uart_period, domain="uart")
        self._sim.add_testbench(self._send, background=True)
        self._sim.add_testbench(self._receive, background=True)
        self._sim.add_testbench(self._count, background=True)

    async def _count(self, ctx):
        while True:
            await ctx.tick()
            self.cycles += 1

    async def _send(self, ctx):
        line = self.harness.rx
        ctx.set(line, 1)
        while True:
            if not self._pending:
                await ctx.tick("uart")
                continue
            byte = self._pending.popleft()
            for bit in [0, *((byte >> k) & 1 for k in range(8)), 1]:  # start, data LSB first, stop
                ctx.set(line, bit)
                await ctx.tick("uart").repeat(self.divisor)

    async def _receive(self, ctx):
        line = self.harness.tx
        while True:
            await ctx.tick("uart")
            if ctx.get(line):
                continue
            # a start bit: sample each bit in its middle
            await ctx.tick("uart").repeat(self.divisor // 2)
            bits = []
            for _ in range(9):
                await ctx.tick("uart").repeat(self.divisor)
                bits.append(ctx.get(line))
            if bits[8]:
                self._received.append(sum(b << k for k, b in enumerate(bits[:8])))
            else:
                self.framing_errors += 1

    def write(self, data: bytes) -> None:
        self._pending.extend(data)

    def read(self, size: int) -> bytes:
        deadline = self.cycles + self.timeout_cycles
        while len(self._received) < size and self.cycles < deadline:
            self._sim.run_until((self.cycles + 1024) * self.SYNC_PERIOD)
        out = bytes(self._received[:size])
        del self._received[:size]
        return out


@dataclass(frozen=True)
class InferenceRun:
    outputs: np.ndarray  # integers in the output format, one row per input vector
    predictions: np.ndarray  # argmax of each output
    seconds: float

    @property
    def inferences_per_s(self) -> float:
        return len(self.outputs) / self.seconds if self.seconds > 0 else float("inf")


class HostDriver:
    """Inference and self-test requests over a transport, for a core with the stream
    ``interface`` whose model applies ``preprocessing`` to raw features (both from the build's
    manifest).

    Each request waits for its reply at most ``deadline_s`` seconds in all, however many bytes
    the line keeps sending. Bytes that are not the reply (noise, a stale reply, a frame that
    fails its CRC) are skipped and the driver keeps listening: it resynchronises on the next
    good frame. The decoder takes no payload longer than the reply expected, so a spurious
    header claiming a long frame costs nothing.
    """

    def __init__(
        self,
        interface: CoreInterface,
        preprocessing: Preprocessing,
        transport: Transport,
        *,
        deadline_s: float = 5.0,
    ) -> None:
        if not deadline_s > 0:
            raise ValueError(f"deadline_s must be positive, not {deadline_s!r}")
        self.interface = interface
        self.preprocessing = preprocessing
        self.transport = transport
        self.deadline_s = deadline_s
        self.in_format, self.out_format = interface.input.format, interface.output.format
        self.skipped = 0  # bytes received that were not a reply

    def _exchange(
        self, request: bytes, command: protocol.Command, reply_size: int
    ) -> protocol.Frame:
        self.transport.write(request)
        decoder = protocol.FrameDecoder(max_payload=max(reply_size, protocol.ERROR_REPLY_SIZE))
        deadline = time.monotonic() + self.deadline_s
        try:
            while time.monotonic() < deadline:
                chunk = self.transport.read(1)
                if not chunk:
                    raise LinkError(f"no reply to {command.name} before the link's timeout")
                for item in decoder.feed(chunk):
                    if isinstance(item, protocol.Frame) and item.command in (
                        command.reply,
                        protocol.ERROR_REPLY,
                    ):
                        return item
            raise LinkError(
                f"no reply to {command.name} within {self.deadline_s:g} s: the line carried "
                f"{decoder.skipped} bytes that were not one; is the port the board's?"
            )
        finally:
            self.skipped += decoder.skipped

    def ping(self) -> protocol.Identity:
        reply = self._exchange(
            protocol.ping_request(), protocol.Command.PING, protocol.IDENTITY_SIZE
        )
        return protocol.parse_ping_reply(reply)

    def infer_integers(self, x_int: np.ndarray) -> np.ndarray:
        """Output integers for input integers (one request per row)."""
        n_in, n_out = self.interface.input.elements, self.interface.output.elements
        reply_size = n_out * protocol.element_bytes(self.out_format)
        outputs = []
        for row in np.atleast_2d(x_int):
            request = protocol.infer_request(row, self.in_format, n_in)
            reply = self._exchange(request, protocol.Command.INFER, reply_size)
            outputs.append(protocol.parse_infer_reply(reply, self.out_format, n_out))
        return np.array(outputs, dtype=np.int64)

    def infer(self, raw: np.ndarray) -> InferenceRun:
        """Raw features (the model's preprocessing and input format applied here)."""
        raw = np.atleast_2d(np.asarray(raw, dtype=np.float64))
        features = self.interface.input.elements
        if raw.shape[1] != features:
            raise LinkError(f"input must have {features} features per row, not {raw.shape[1]}")
        start = time.perf_counter()
        outputs = self.infer_integers(self.in_format.quantize(self.preprocessing.apply(raw)))
        return InferenceRun(outputs, outputs.argmax(axis=1), time.perf_counter() - start)

    def selftest(self) -> protocol.SelftestResult:
        reply = self._exchange(
            protocol.selftest_request(), protocol.Command.SELFTEST, protocol.SELFTEST_SIZE
        )
        return protocol.parse_selftest_reply(reply)
