"""A register stage on a stream, to cut long combinational paths between components."""

from __future__ import annotations

from amaranth.hdl import Module, ShapeLike
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamRegister"]


class StreamRegister(wiring.Component):
    """``o`` is ``i`` one cycle later: ``o.valid`` and ``o.payload`` are registers, so no
    combinational path runs from ``i.payload`` or ``i.valid`` to ``o`` (``i.ready`` still follows
    ``o.ready``). Full throughput: one transfer per cycle while ``o`` is ready."""

    def __init__(self, payload_shape: ShapeLike) -> None:
        super().__init__(
            {"i": In(stream.Signature(payload_shape)), "o": Out(stream.Signature(payload_shape))}
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        return m
