"""A register stage on a stream, to cut long combinational paths between components."""

from __future__ import annotations

from amaranth.hdl import Module, ShapeLike, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamRegister"]


class StreamRegister(wiring.Component):
    """``o`` is ``i`` one cycle later, with every handshake signal a register (a skid buffer):
    ``o.valid``, ``o.payload`` and ``i.ready`` come from flip-flops, so no combinational path
    runs through the stage in either direction. Full throughput: one transfer per cycle while
    ``o`` is ready.

    A transfer accepted while ``o`` stalls waits in the skid register, and ``i.ready`` drops
    until the output has taken it."""

    def __init__(self, payload_shape: ShapeLike) -> None:
        super().__init__(
            {"i": In(stream.Signature(payload_shape)), "o": Out(stream.Signature(payload_shape))}
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        skid_valid = Signal()
        skid = Signal.like(self.i.payload, name="skid", reset_less=True)
        m.d.comb += self.i.ready.eq(~skid_valid)
        with m.If(~self.o.valid | self.o.ready):  # the output register takes a transfer
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        with m.Elif(self.i.valid & ~skid_valid):  # the output stalls: park the transfer
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m
