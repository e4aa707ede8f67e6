"""Stream driver and monitor for Amaranth simulator testbenches (``ctx`` from
``Simulator.add_testbench``), with random idle cycles and backpressure."""

from __future__ import annotations

import random
from collections.abc import Iterable

__all__ = ["receive", "send"]


async def send(
    ctx, port, payloads: Iterable, rng: random.Random | None = None, idle: float = 0.0
) -> None:
    """Drive each payload on ``port`` until accepted, idling with probability ``idle`` before
    each transfer."""
    for payload in payloads:
        while rng is not None and rng.random() < idle:
            await ctx.tick()
        ctx.set(port.payload, payload)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)


async def receive(
    ctx,
    port,
    count: int,
    rng: random.Random | None = None,
    stall: float = 0.0,
    times: list | None = None,
) -> list:
    """Collect ``count`` payloads from ``port``, withholding ready with probability ``stall``
    each cycle. When ``times`` is given, the cycle of each transfer is appended to it."""
    out = []
    cycle = 0
    while len(out) < count:
        ready = not (rng is not None and rng.random() < stall)
        ctx.set(port.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
        cycle += 1
        if ready and valid:
            out.append(payload)
            if times is not None:
                times.append(cycle)
    ctx.set(port.ready, 0)
    return out
