# amaranth: UnusedElaboratable=no
"""UART receiver and transmitter in the Amaranth simulator: loopback, the line's waveform decoded
independently, baud-rate mismatch, glitches, framing errors and overruns."""

import itertools
import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from boards.link.uart import UARTRx, UARTTx, uart_divisor
from tests.streams import receive, send


def frame_bits(byte, stop=1):
    return [0, *((byte >> k) & 1 for k in range(8)), stop]


async def drive_line(ctx, line, bytes_and_stops, period, gap=0):
    """Put bytes on a UART line with ``period`` cycles per bit (may differ from the divisor)."""
    for byte, stop in bytes_and_stops:
        for bit in frame_bits(byte, stop):
            ctx.set(line, bit)
            await ctx.tick().repeat(period)
        ctx.set(line, 1)
        await ctx.tick().repeat(gap + 2 * period)


def run_rx(divisor, bytes_and_stops, period, gap=0, pulses=None):
    """Drive an UARTRx's line; returns the bytes on ``o`` (always ready) and counts of the
    framing-error and overrun pulses."""
    dut = UARTRx(divisor)
    got = []
    counts = {"framing_error": 0, "overrun": 0}

    async def line(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(5)
        if pulses:
            for low, high in pulses:
                ctx.set(dut.rx, 0)
                await ctx.tick().repeat(low)
                ctx.set(dut.rx, 1)
                await ctx.tick().repeat(high)
        await drive_line(ctx, dut.rx, bytes_and_stops, period, gap)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        async for _, _, valid, payload, framing, overrun in ctx.tick().sample(
            dut.o.valid, dut.o.payload, dut.framing_error, dut.overrun
        ):
            if valid:
                got.append(payload)
            counts["framing_error"] += framing
            counts["overrun"] += overrun

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(line)
    sim.add_testbench(sink, background=True)
    sim.run()
    return got, counts


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_loopback_with_waveform_check(divisor):
    rng = random.Random(divisor)
    data = [0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(40)]
    tx, rx = UARTTx(divisor), UARTRx(divisor)
    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx
    m.d.comb += rx.rx.eq(tx.tx)
    result, line = {}, []

    async def source(ctx):
        await send(ctx, tx.i, data[:20], rng, idle=0.3)
        await send(ctx, tx.i, data[20:])  # back to back

    async def sink(ctx):
        result["bytes"] = await receive(ctx, rx.o, len(data))

    async def probe(ctx):
        async for _, _, level, framing in ctx.tick().sample(tx.tx, rx.framing_error):
            line.append(level)
            assert not framing

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.add_testbench(probe, background=True)
    sim.run()
    assert result["bytes"] == data
    # decode the line on its own: start at each falling edge, sample mid-bit
    decoded, starts, t = [], [], 1
    while t < len(line):
        if line[t - 1] == 1 and line[t] == 0:
            bits = [line[t + k * divisor + divisor // 2] for k in range(10)]
            assert bits[0] == 0 and bits[9] == 1
            decoded.append(sum(b << k for k, b in enumerate(bits[1:9])))
            starts.append(t)
            t += 10 * divisor - 1
        t += 1
    assert decoded == data
    # the last 20 bytes went back to back: one byte every 10 bit times exactly
    assert {b - a for a, b in itertools.pairwise(starts[-20:])} == {10 * divisor}


@pytest.mark.parametrize("period", [31, 32, 33])
def test_rx_tolerates_three_percent_rate_error(period):
    data = [0x00, 0xFF, 0x81, 0x7E, 0x3C]
    got, counts = run_rx(32, [(b, 1) for b in data], period)
    assert got == data
    assert counts == {"framing_error": 0, "overrun": 0}


def test_rx_ignores_glitches_and_reports_framing_errors():
    # pulses shorter than half a bit are not start bits; a low stop bit drops its byte with a
    # pulse on framing_error, and reception resumes after the line returns high
    got, counts = run_rx(16, [(0x12, 1), (0x34, 0), (0x56, 1)], 16, pulses=[(3, 20), (7, 40)])
    assert got == [0x12, 0x56]
    assert counts == {"framing_error": 1, "overrun": 0}


def test_rx_framing_error_on_a_break_then_recovers():
    dut = UARTRx(8)
    got, errors = [], []

    async def line(ctx):
        ctx.set(dut.rx, 0)  # a break: the line held low for many byte times
        await ctx.tick().repeat(300)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(20)
        await drive_line(ctx, dut.rx, [(0xC3, 1)], 8)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        async for _, _, valid, payload, framing in ctx.tick().sample(
            dut.o.valid, dut.o.payload, dut.framing_error
        ):
            if valid:
                got.append(payload)
            if framing:
                errors.append(1)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(line)
    sim.add_testbench(sink, background=True)
    sim.run()
    assert got == [0xC3]
    assert errors == [1]


def test_rx_overrun_keeps_the_waiting_byte():
    dut = UARTRx(8)
    result = {"overrun": 0}

    async def line(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(4)
        await drive_line(ctx, dut.rx, [(0x11, 1), (0x22, 1)], 8)  # nobody takes them
        result["valid"], result["payload"] = ctx.get(dut.o.valid), ctx.get(dut.o.payload)

    async def monitor(ctx):
        async for _, _, overrun in ctx.tick().sample(dut.overrun):
            result["overrun"] += overrun

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(line)
    sim.add_testbench(monitor, background=True)
    sim.run()
    assert (result["valid"], result["payload"], result["overrun"]) == (1, 0x11, 1)


def test_divisors():
    assert uart_divisor(25e6, 1_000_000) == 25
    assert uart_divisor(75e6, 3_000_000) == 25
    assert uart_divisor(48e6, 115_200) == 417
    with pytest.raises(
        ValueError, match=r"^baud rate 3000000 is 4\.2% off at 25 MHz \(divisor 8\)"
    ):
        uart_divisor(25e6, 3_000_000)
    with pytest.raises(ValueError, match=r"^baud rate must be at most clock / 4 = 250000"):
        uart_divisor(1e6, 500_000)
    for cls in (UARTRx, UARTTx):
        with pytest.raises(ValueError, match=r"^divisor must be an int >= 4, not 3$"):
            cls(3)
