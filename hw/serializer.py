"""Serializer: whole vectors to beats of ``per_beat`` elements with first/last framing."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from debut.fixed import Fixed
from hw.layouts import beat_layout, vector_layout

__all__ = ["Serializer"]


class Serializer(wiring.Component):
    """Sends each vector as ``ceil(length / per_beat)`` beats, element ``j`` in beat
    ``j // per_beat``, lane ``j % per_beat`` (unused lanes of the last beat are zero).

    Ports: ``i`` (vectors), ``o`` (beats). Throughput: one vector per ``beats`` cycles when the
    output keeps up (the next vector is taken with the last beat). Latency: 1 cycle.
    """

    def __init__(self, fmt: Fixed, length: int, per_beat: int) -> None:
        if not 1 <= per_beat <= length:
            raise ValueError(f"per_beat must be in 1..{length}, not {per_beat!r}")
        self.fmt, self.length, self.per_beat = fmt, length, per_beat
        self.beats = -(-length // per_beat)
        super().__init__(
            {
                "i": In(stream.Signature(vector_layout(fmt, length))),
                "o": Out(stream.Signature(beat_layout(fmt, per_beat))),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        held = Signal.like(self.i.payload)
        count = Signal(range(self.beats))
        busy = Signal()
        last_beat = count == self.beats - 1
        m.d.comb += [
            self.o.valid.eq(busy),
            self.i.ready.eq(~busy | (self.o.ready & last_beat)),
            self.o.payload.first.eq(count == 0),
            self.o.payload.last.eq(last_beat),
        ]
        for b in range(self.beats):
            with m.If(count == b):
                for lane in range(self.per_beat):
                    j = b * self.per_beat + lane
                    if j < self.length:
                        m.d.comb += self.o.payload.data[lane].eq(held[j])
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += count.eq(Mux(last_beat, 0, count + 1))
            with m.If(last_beat):
                m.d.sync += busy.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload), busy.eq(1), count.eq(0)]
        return m
