"""Register stages on a stream, to cut long combinational paths between components."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, ShapeLike, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["HalfRateRegister", "StreamRegister"]


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


class HalfRateRegister(wiring.Component):
    """``o`` is ``i`` one cycle later through a single register: at most one transfer every
    two cycles, for a consumer that takes one at most every two cycles anyway (a folded
    factor stage). Half the flip-flops of :class:`StreamRegister` and no multiplexer.

    ``o.valid``, ``o.payload`` and ``i.ready`` come from flip-flops. The register's state is
    kept twice, once for each side (``o.valid`` and ``~i.ready`` hold the same value), each
    copy computed from itself, so that synthesis keeps both and placement can put each near
    the logic it drives: a path from either neighbour crosses the gap between them once."""

    def __init__(self, payload_shape: ShapeLike) -> None:
        super().__init__(
            {"i": In(stream.Signature(payload_shape)), "o": Out(stream.Signature(payload_shape))}
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        full_in = Signal()  # the input side's copy: i.ready = ~full_in
        full_out = Signal()  # the output side's copy: o.valid = full_out
        m.d.comb += [self.i.ready.eq(~full_in), self.o.valid.eq(full_out)]
        # full: cleared by the output transfer; else set by an input transfer (taken only when
        # empty, so never in the same cycle as an output transfer)
        m.d.sync += [
            full_in.eq(Mux(full_in, ~self.o.ready, self.i.valid)),
            full_out.eq(Mux(full_out, ~self.o.ready, self.i.valid)),
        ]
        data = Signal.like(self.i.payload, name="data", reset_less=True)  # no reset net
        m.d.comb += self.o.payload.eq(data)
        with m.If(self.i.valid & ~full_in):
            m.d.sync += data.eq(self.i.payload)
        return m
