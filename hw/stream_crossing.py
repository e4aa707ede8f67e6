"""A stream from one clock domain to another, for slow streams (a UART's bytes)."""

from __future__ import annotations

from amaranth.hdl import Module, ShapeLike, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["StreamCrossing"]


class StreamCrossing(wiring.Component):
    """``o`` (in ``o_domain``) carries the transfers of ``i`` (in ``i_domain``), one at a time,
    whatever the two clocks' frequencies and phases.

    A two-phase handshake: a transfer on ``i`` stores the payload in a register of ``i_domain``
    and toggles ``request``; ``request``, passed through a two-flop synchroniser into
    ``o_domain``, makes the output register copy the payload (unchanged since before the toggle
    was sent) and toggle ``acknowledge``, which returns through a synchroniser into ``i_domain``
    and makes ``i`` ready again. ``o.valid``, ``o.payload`` and ``i.ready`` come from flip-flops.

    Throughput: one transfer per two synchroniser delays (about 3 cycles of each clock, plus the
    time ``o`` holds a transfer), plenty for a UART's bytes. Both domains must leave reset
    together (the board top resets them from one signal)."""

    def __init__(self, payload_shape: ShapeLike, *, i_domain: str, o_domain: str) -> None:
        if i_domain == o_domain:
            raise ValueError(f"i_domain and o_domain must differ, not both {i_domain!r}")
        self.i_domain, self.o_domain = i_domain, o_domain
        super().__init__(
            {"i": In(stream.Signature(payload_shape)), "o": Out(stream.Signature(payload_shape))}
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        source, sink = m.d[self.i_domain], m.d[self.o_domain]
        held = Signal.like(self.i.payload, name="held", reset_less=True)  # i_domain
        request = Signal()  # i_domain: toggled with each new payload in ``held``
        acknowledge = Signal()  # o_domain: toggled when the payload was copied
        request_seen = Signal()  # request, in o_domain
        acknowledge_seen = Signal()  # acknowledge, in i_domain
        m.submodules.request_sync = FFSynchronizer(request, request_seen, o_domain=self.o_domain)
        m.submodules.acknowledge_sync = FFSynchronizer(
            acknowledge, acknowledge_seen, o_domain=self.i_domain
        )

        ready = Signal()  # i_domain: nothing in flight
        source += ready.eq(request == acknowledge_seen)
        with m.If(self.i.valid & self.i.ready):
            source += [held.eq(self.i.payload), request.eq(~request), ready.eq(0)]
        m.d.comb += self.i.ready.eq(ready)

        with m.If(self.o.ready):
            sink += self.o.valid.eq(0)
        with m.If((request_seen != acknowledge) & (~self.o.valid | self.o.ready)):
            sink += [
                self.o.payload.eq(held),
                self.o.valid.eq(1),
                acknowledge.eq(~acknowledge),
            ]
        return m
