"""The top level of a board: clock, reset, the network core, the UART host link and status LEDs.

::

    oscillator -> PLL (ECP5) -> sync domain: host link, core, LEDs
    oscillator ---------------> uart domain: UART receiver and transmitter, a millisecond tick
    both held in reset until the PLL locks

    UART rx pin -> UARTRx -> crossing -> HostLink -> core_i -> Network
    Network -> core_o -> HostLink -> crossing -> UARTTx -> UART tx pin

Nothing in the sync domain depends on its clock's frequency: the UARTs count the oscillator's
cycles, and the link's timeout and the heartbeat count the ticks. So a design routed once can
be given any sync clock its Fmax allows by the PLL's dividers alone (``boards.pll``).

LEDs, in order of the board's LED resources: 0 heartbeat (about 1.5 Hz: the clock runs), 1 the
PLL is locked (always on without a PLL), 2 the link is busy with a frame, 3 the last command was
answered with an ERROR frame (until the next PING).

The iCE40 boards run both domains from their oscillator directly (no PLL).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.build import ResourceError
from amaranth.hdl import (
    Cat,
    ClockDomain,
    ClockSignal,
    DomainRenamer,
    Elaboratable,
    Module,
    Signal,
)
from amaranth.lib import io, wiring
from amaranth.lib.cdc import PulseSynchronizer, ResetSynchronizer
from amaranth.lib.wiring import In, Out

from boards.link.device import HostLink
from boards.link.protocol import DEFAULT_BAUD
from boards.link.uart import UARTRx, UARTTx, uart_divisor
from boards.pll import PLLConfig, add_pll_domain, ecp5_pll
from boards.registry import Board
from debut.errors import BoardError
from hw.network import Network
from hw.stream_crossing import StreamCrossing
from hw.stream_register import StreamRegister

__all__ = ["BoardTop", "ClockPlan", "Harness", "clock_plan"]

LINK_TIMEOUT_S = 0.1  # a frame whose next byte does not come within this is abandoned
HEARTBEAT_HZ = 1.5
TICK_HZ = 1000  # the tick the link's timeout and the heartbeat count


@dataclass(frozen=True)
class ClockPlan:
    """The design clock of a board build: ``f_mhz`` is the frequency actually produced, which
    may differ slightly from ``requested_mhz``; ``pll`` is None when the oscillator is used."""

    requested_mhz: float
    f_mhz: float
    pll: PLLConfig | None

    @property
    def oscillator_mhz(self) -> float:
        """The board oscillator's frequency: the ``uart`` domain's clock."""
        return self.f_mhz if self.pll is None else self.pll.f_in_mhz


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
    """Everything of the board top inside the pins, in two clock domains: ``uart`` (the
    oscillator: UARTs and the tick) and ``sync`` (host link, network core, LEDs). Ports: ``rx``
    (the UART line from the host), ``tx`` (to the host), ``leds`` (heartbeat, PLL locked from
    ``locked``, busy, error).

    ``divisor`` is ``uart`` cycles per UART bit and ``tick_cycles`` ``uart`` cycles per tick;
    the link abandons a frame after ``timeout_ticks`` ticks without a byte (never when None)
    and the heartbeat LED toggles every ``heartbeat_ticks``. ``selftest`` holds the quantised
    input vectors stored on chip for the SELFTEST command; ``design_id`` is reported by PING.
    """

    def __init__(
        self,
        network: Network,
        *,
        divisor: int,
        selftest: np.ndarray,
        timeout_ticks: int | None,
        tick_cycles: int,
        design_id: int = 0,
        heartbeat_ticks: int = 1,
    ) -> None:
        if not isinstance(network, Network):
            raise TypeError(f"network must be a Network, not {network!r}")
        if not isinstance(tick_cycles, int) or tick_cycles < 4:
            raise ValueError(f"tick_cycles must be an int >= 4, not {tick_cycles!r}")
        self.network = network
        self.divisor = divisor
        self.tick_cycles = tick_cycles
        self.link = HostLink.for_network(
            network, selftest=selftest, timeout=timeout_ticks, design_id=design_id
        )
        self.heartbeat_ticks = heartbeat_ticks
        super().__init__(
            {"rx": In(1, init=1), "tx": Out(1, init=1), "locked": In(1, init=1), "leds": Out(4)}
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        uart = m.d.uart
        m.submodules.uart_rx = rx = DomainRenamer("uart")(UARTRx(self.divisor))
        m.submodules.uart_tx = tx = DomainRenamer("uart")(UARTTx(self.divisor))
        m.submodules.link = link = self.link
        m.submodules.core = core = self.network
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]
        # the bytes cross between the domains; registers (StreamRegister) on the streams
        # between the parts of the sync domain: one between the crossings and the link (whose
        # frame logic would otherwise meet theirs in one cycle), two between the link and the
        # core (the link sits by the UART's pins, the core's deserializer and serializer by
        # the core's first and last stages, maybe across the die: placement puts one register
        # near each end)
        m.submodules.rx_crossing = rx_crossing = StreamCrossing(8, i_domain="uart", o_domain="sync")
        m.submodules.tx_crossing = tx_crossing = StreamCrossing(8, i_domain="sync", o_domain="uart")
        wiring.connect(m, rx.o, rx_crossing.i)
        wiring.connect(m, tx_crossing.o, tx.i)
        for name, source, sink, registers in (
            ("from_uart", rx_crossing.o, link.rx, 1),
            ("to_uart", link.tx, tx_crossing.i, 1),
            ("to_core", link.core_i, core.i, 2),
            ("from_core", core.o, link.core_o, 2),
        ):
            for k in range(registers):
                register = StreamRegister(source.payload.shape())
                m.submodules[f"{name}{k}" if registers > 1 else name] = register
                wiring.connect(m, source, register.i)
                source = register.o
            wiring.connect(m, source, sink)

        # the tick: a pulse every tick_cycles of the uart domain, into the sync domain
        m.submodules.tick = tick = PulseSynchronizer("uart", "sync")
        divider = Signal(range(self.tick_cycles))
        uart += [divider.eq(divider - 1), tick.i.eq(divider == 0)]
        with m.If(divider == 0):
            uart += divider.eq(self.tick_cycles - 1)
        m.d.comb += link.tick.eq(tick.o)

        beat = Signal()
        ticks = Signal(range(self.heartbeat_ticks))
        with m.If(tick.o):
            with m.If(ticks == 0):
                m.d.sync += [ticks.eq(self.heartbeat_ticks - 1), beat.eq(~beat)]
            with m.Else():
                m.d.sync += ticks.eq(ticks - 1)
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
        oscillator_hz = clock.oscillator_mhz * 1e6
        try:
            divisor = uart_divisor(oscillator_hz, baud)
        except ValueError as error:
            self._MustUse__silence = True  # never built, so never to be elaborated
            raise BoardError(
                f"--baud {baud} from the {clock.oscillator_mhz:g} MHz oscillator: {error}"
            ) from None
        self.harness = Harness(
            network,
            divisor=divisor,
            selftest=selftest,
            tick_cycles=round(oscillator_hz / TICK_HZ),
            timeout_ticks=max(1, round(TICK_HZ * LINK_TIMEOUT_S)),
            design_id=design_id,
            heartbeat_ticks=max(1, round(TICK_HZ / HEARTBEAT_HZ / 2)),
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        clk_port = platform.request(platform.default_clk, dir="-")
        m.submodules.clk_buffer = clk = io.Buffer("i", clk_port)
        m.submodules.harness = harness = self.harness
        m.domains.uart = ClockDomain()
        m.d.comb += ClockSignal("uart").eq(clk.i)
        if self.clock.pll is not None:
            pll = add_pll_domain(m, self.clock.pll, clk.i)
            m.submodules.uart_reset = ResetSynchronizer(~pll.lock, domain="uart")
            m.d.comb += harness.locked.eq(pll.lock)
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
