"""UART receiver and transmitter (8 data bits, no parity, 1 stop bit) with byte streams."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["MIN_DIVISOR", "UARTRx", "UARTTx", "uart_divisor"]

MIN_DIVISOR = 4  # clock cycles per bit: enough for the synchroniser and mid-bit sampling
MAX_RATE_ERROR = 0.02  # per side; 8N1 with mid-bit sampling tolerates about 4.5% in total


def uart_divisor(clk_hz: float, baud: float) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_hz``: the nearest integer, refused when the
    rate it gives is more than 2% off."""
    if not (clk_hz > 0 and baud > 0):
        raise ValueError(f"clock and baud rate must be positive, not {clk_hz!r} and {baud!r}")
    divisor = round(clk_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(
            f"baud rate must be at most clock / {MIN_DIVISOR} = {clk_hz / MIN_DIVISOR:.0f}, "
            f"not {baud!r}"
        )
    error = abs(clk_hz / divisor - baud) / baud
    if error > MAX_RATE_ERROR:
        raise ValueError(
            f"baud rate {baud} is {error:.1%} off at {clk_hz / 1e6:g} MHz (divisor {divisor}); "
            f"it must be within {MAX_RATE_ERROR:.0%}: choose a clock that is a multiple of it"
        )
    return divisor


def _check_divisor(divisor: int) -> None:
    if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an int >= {MIN_DIVISOR}, not {divisor!r}")


class UARTRx(wiring.Component):
    """UART receiver, 8N1, ``divisor`` clock cycles per bit.

    Ports: ``rx`` (the line, asynchronous: it passes a 2-flop synchroniser), ``o`` (received
    bytes), ``framing_error`` and ``overrun`` (one-cycle pulses).

    A start bit is a low level still low half a bit after the falling edge (shorter glitches are
    ignored); each bit is then sampled once, in the middle of its bit time. A byte whose stop bit
    is low is dropped with a ``framing_error`` pulse and the receiver waits for the line to go
    high (a break) before looking for the next start bit. A byte that completes while the previous
    one is still waiting on ``o`` is dropped with an ``overrun`` pulse (the one on ``o`` is kept).
    Latency: a byte is valid on ``o`` at most 4 cycles after the middle of its stop bit (2 of
    them in the synchroniser).
    """

    def __init__(self, divisor: int) -> None:
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__(
            {
                "rx": In(1, init=1),
                "o": Out(stream.Signature(8)),
                "framing_error": Out(1),
                "overrun": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self.divisor))
        bits = Signal(range(8))
        shift = Signal(8)
        expired = timer == 0

        with m.If(~expired):
            m.d.sync += timer.eq(timer - 1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"), m.If(~line):
                m.d.sync += timer.eq(self.divisor // 2 - 1)
                m.next = "START"
            with m.State("START"), m.If(expired):
                with m.If(line):
                    m.next = "IDLE"  # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"), m.If(expired):
                m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(self.divisor - 1)]
                m.d.sync += bits.eq(bits + 1)
                with m.If(bits == 7):
                    m.next = "STOP"
            with m.State("STOP"), m.If(expired):
                with m.If(line):
                    with m.If(self.o.valid & ~self.o.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += self.framing_error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"), m.If(line):
                m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """UART transmitter, 8N1, ``divisor`` clock cycles per bit.

    Ports: ``i`` (bytes to send), ``tx`` (the line, driven from a register, high when idle).
    Throughput: one byte per ``10 * divisor`` cycles when bytes are offered back to back (the
    next byte is taken in the last cycle of the stop bit). Latency: the start bit begins in the
    cycle after the byte is taken.
    """

    def __init__(self, divisor: int) -> None:
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        timer = Signal(range(self.divisor))
        remaining = Signal(range(10))  # bits still to put on the line after the current one
        shift = Signal(9)  # data bits then the stop bit
        busy = Signal()
        expired = timer == 0
        m.d.comb += self.i.ready.eq(~busy | (expired & (remaining == 0)))

        with m.If(busy):
            m.d.sync += timer.eq(timer - 1)
            with m.If(expired):
                m.d.sync += timer.eq(self.divisor - 1)
                with m.If(remaining == 0):
                    m.d.sync += busy.eq(0)
                with m.Else():
                    m.d.sync += [
                        self.tx.eq(shift[0]),
                        shift.eq(shift >> 1),
                        remaining.eq(remaining - 1),
                    ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                self.tx.eq(0),  # start bit
                shift.eq(Cat(self.i.payload, 1)),
                remaining.eq(9),
                timer.eq(self.divisor - 1),
                busy.eq(1),
            ]
        return m
