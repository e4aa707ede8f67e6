# amaranth: UnusedElaboratable=no
"""StreamCrossing: every transfer arrives once and in order in the other clock domain, whatever
the two clocks' periods and phases, with idle sources and stalling sinks."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hw.stream_crossing import StreamCrossing


@pytest.mark.parametrize(
    ("i_period", "o_period"), [(10, 27), (27, 10), (10, 10), (13, 13.7), (40, 9)]
)
@pytest.mark.parametrize(("in_idle", "out_stall"), [(0.0, 0.0), (0.5, 0.0), (0.0, 0.6)])
def test_carries_every_transfer_in_order(i_period, o_period, in_idle, out_stall):
    dut = StreamCrossing(9, i_domain="src", o_domain="dst")
    rng = random.Random(int(i_period * 100 + o_period))
    sent = [rng.randrange(1 << 9) for _ in range(120)]
    got = []

    async def source(ctx):
        n, offered = 0, False
        while n < len(sent):
            if offered or rng.random() >= in_idle:
                offered = True
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, sent[n])
            else:
                ctx.set(dut.i.valid, 0)
            _, _, valid, ready = await ctx.tick("src").sample(dut.i.valid, dut.i.ready)
            if valid and ready:
                n += 1
                offered = False
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        while len(got) < len(sent):
            ctx.set(dut.o.ready, int(rng.random() >= out_stall))
            _, _, valid, ready, payload = await ctx.tick("dst").sample(
                dut.o.valid, dut.o.ready, dut.o.payload
            )
            if valid and ready:
                got.append(payload)

    sim = Simulator(dut)
    sim.add_clock(i_period * 1e-9, domain="src")
    sim.add_clock(o_period * 1e-9, domain="dst", phase=o_period * 0.37e-9)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    assert got == sent


def test_same_domain_is_refused():
    with pytest.raises(ValueError, match=r"^i_domain and o_domain must differ, not both 'sync'$"):
        StreamCrossing(8, i_domain="sync", o_domain="sync")
