"""The top level of a board: clock, reset, the network core, the UART host link and status LEDs.

::

    oscillator -> PLL (ECP5) -> sync domain, held in reset until the PLL locks
    UART rx pin -> UARTRx -> HostLink -> core_i -> Network -> core_o -> HostLink -> UARTTx -> pin

LEDs, in order of the board's LED resources: 0 heartbeat (about 1.5 Hz: the clock runs), 1 the
PLL is locked (always on without a PLL), 2 the link is busy with a frame, 3 the last command was
answered with an ERROR frame (until the next PING).

The iCE40 boards run the design from their oscillator directly (no PLL).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.build import ResourceError
from amaranth.hdl import Cat, ClockDomain, ClockSignal, Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from boards.link.device import HostLink
from boards.link.protocol import DEFAULT_BAUD
from boards.link.uart import UARTRx, UARTTx, uart_divisor
from boards.pll import PLLConfig, add_pll_domain, ecp5_pll
from boards.registry import Board
from debut.errors import BoardError
from hw.network import Network
from hw.stream_register import StreamRegister

__all__ = ["BoardTop", "ClockPlan", "Harness", "clock_plan"]

LINK_TIMEOUT_S = 0.1  # a frame whose next byte does not come within this is abandoned
HEARTBEAT_HZ = 1.5


@dataclass(frozen=True)
class ClockPlan:
    """The design clock of a board build: ``f_mhz`` is the frequency actually produced, which
    may differ slightly from ``requested_mhz``; ``pll`` is None when the oscillator is used."""

    requested_mhz: float
    f_mhz: float
    pll: PLLConfig | None


def clock_plan(board: Board, requested_mhz: float) -> ClockPlan:
    """How ``board`` gets a clock of ``requested_mhz``: an ECP5 PLL from the oscillator (the
    nearest frequency its dividers give), or the oscillator itself on iCE40 boards."""
    if not requested_mhz > 0:
        raise BoardError(f"the clock must be positive, not {requested_mhz!r} MHz")
    if board.family == "ecp5":
        if abs(requested_mhz - board.clock_mhz) < 1e-9:
            return ClockPlan(requested_mhz, board.clock_mhz, None)
        pll = ecp5_pll(board.clock_mhz, requested_mhz)
        return ClockPlan(requested_mhz, pll.f_out_mhz, pll)
    if abs(requested_mhz - board.clock_mhz) > 1e-9:
        raise BoardError(
            f"{board.name} runs at its {board.clock_mhz:g} MHz oscillator (no PLL support yet); "
            f"use --clock-mhz {board.clock_mhz:g}"
        )
    return ClockPlan(requested_mhz, board.clock_mhz, None)


def _leds(platform) -> list:
    """The board's LED ports, in resource order."""
    leds = []
    for name in ("led", "led_g", "led_r"):
        number = 0
        while True:
            try:
                leds.append(platform.request(name, number, dir="-"))
            except ResourceError:
                break
            number += 1
    return leds


class Harness(wiring.Component):
    """Everything of the board top that runs in the design clock: UARTs, host link, network
    core and LED logic. Ports: ``rx`` (the UART line from the host), ``tx`` (to the host),
    ``leds`` (heartbeat, PLL locked from ``locked``, busy, error).

    ``selftest`` holds the quantised input vectors stored on chip for the SELFTEST command;
    ``design_id`` is reported by PING; ``divisor`` is clock cycles per UART bit.
    """

    def __init__(
        self,
        network: Network,
        *,
        divisor: int,
        selftest: np.ndarray,
        timeout: int | None,
        design_id: int = 0,
        heartbeat_cycles: int = 1,
    ) -> None:
        if not isinstance(network, Network):
            raise TypeError(f"network must be a Network, not {network!r}")
        self.network = network
        self.divisor = divisor
        self.link = HostLink.for_network(
            network, selftest=selftest, timeout=timeout, design_id=design_id
        )
        self.heartbeat_cycles = heartbeat_cycles
        super().__init__(
            {"rx": In(1, init=1), "tx": Out(1, init=1), "locked": In(1, init=1), "leds": Out(4)}
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.uart_rx = rx = UARTRx(self.divisor)
        m.submodules.uart_tx = tx = UARTTx(self.divisor)
        m.submodules.link = link = self.link
        m.submodules.core = core = self.network
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]
        # A register (StreamRegister) on every stream between the parts: between the UARTs and
        # the link (their bit timers and its frame logic would otherwise meet in one cycle), and
        # between the link and the core (the link's self-test ROM and frame logic on one side,
        # the core's deserializer and serializer on the other).
        for name, source, sink in (
            ("from_uart", rx.o, link.rx),
            ("to_uart", link.tx, tx.i),
            ("to_core", link.core_i, core.i),
            ("from_core", core.o, link.core_o),
        ):
            m.submodules[name] = register = StreamRegister(source.payload.shape())
            wiring.connect(m, source, register.i)
            wiring.connect(m, register.o, sink)

        beat = Signal()
        timer = Signal(range(self.heartbeat_cycles))
        with m.If(timer == 0):
            m.d.sync += [timer.eq(self.heartbeat_cycles - 1), beat.eq(~beat)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        m.d.comb += self.leds.eq(Cat(beat, self.locked, link.status.busy, link.status.error))
        return m


class BoardTop(Elaboratable):
    """The whole design for a board (see the module's documentation): the clock (and PLL) and
    the pins around a :class:`Harness`."""

    def __init__(
        self,
        network: Network,
        *,
        clock: ClockPlan,
        selftest: np.ndarray,
        design_id: int = 0,
        baud: int = DEFAULT_BAUD,
    ) -> None:
        self.clock = clock
        self.baud = baud
        clk_hz = clock.f_mhz * 1e6
        try:
            divisor = uart_divisor(clk_hz, baud)
        except ValueError as error:
            self._MustUse__silence = True  # never built, so never to be elaborated
            raise BoardError(f"--baud {baud} at {clock.f_mhz:g} MHz: {error}") from None
        self.harness = Harness(
            network,
            divisor=divisor,
            selftest=selftest,
            timeout=max(1, round(clk_hz * LINK_TIMEOUT_S)),
            design_id=design_id,
            heartbeat_cycles=max(1, round(clk_hz / HEARTBEAT_HZ / 2)),
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        clk_port = platform.request(platform.default_clk, dir="-")
        m.submodules.clk_buffer = clk = io.Buffer("i", clk_port)
        m.submodules.harness = harness = self.harness
        if self.clock.pll is not None:
            m.d.comb += harness.locked.eq(add_pll_domain(m, self.clock.pll, clk.i).lock)
        else:
            m.domains.sync = ClockDomain()
            m.d.comb += ClockSignal("sync").eq(clk.i)

        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.d.comb += [harness.rx.eq(rx.i), tx.o.eq(harness.tx)]
        for n, led in enumerate(_leds(platform)[:4]):
            m.submodules[f"led{n}_buffer"] = buffer = io.Buffer("o", led)
            m.d.comb += buffer.o.eq(harness.leds[n])
        return m
