"""Deserializer: beats of ``per_beat`` elements with first/last framing to whole vectors."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from debut.fixed import Fixed
from hw.layouts import beat_layout, vector_layout

__all__ = ["Deserializer"]


class Deserializer(wiring.Component):
    """Collects ``ceil(length / per_beat)`` beats into one vector.

    Element ``j`` of a vector travels in beat ``j // per_beat``, lane ``j % per_beat``; lanes past
    the vector's end in its last beat are ignored. A beat flagged ``first`` always starts a new
    vector (a partial one is dropped) and a vector only starts with such a beat, so a host that
    lost sync recovers at its next vector.

    Ports: ``i`` (beats), ``o`` (vectors). Throughput: one vector per ``beats`` cycles when both
    sides keep up (the output hands over in the cycle the last beat arrives). Latency: 1 cycle
    from the last beat to ``o.valid``.
    """

    def __init__(self, fmt: Fixed, length: int, per_beat: int) -> None:
        if not 1 <= per_beat <= length:
            raise ValueError(f"per_beat must be in 1..{length}, not {per_beat!r}")
        self.fmt, self.length, self.per_beat = fmt, length, per_beat
        self.beats = -(-length // per_beat)
        super().__init__(
            {
                "i": In(stream.Signature(beat_layout(fmt, per_beat))),
                "o": Out(stream.Signature(vector_layout(fmt, length))),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        count = Signal(range(self.beats + 1))
        full = Signal()
        m.d.comb += [self.o.valid.eq(full), self.i.ready.eq(~full | self.o.ready)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            beat = self.i.payload
            index = Signal.like(count)
            m.d.comb += index.eq(count)
            with m.If(beat.first):
                m.d.comb += index.eq(0)
            for b in range(self.beats):
                with m.If(index == b):
                    for lane in range(self.per_beat):
                        j = b * self.per_beat + lane
                        if j < self.length:
                            m.d.sync += self.o.payload[j].eq(beat.data[lane])
            with m.If((index == 0) & ~beat.first):
                pass  # out of sync: wait for a beat that starts a vector
            with m.Elif(index == self.beats - 1):
                m.d.sync += [count.eq(0), full.eq(1)]
            with m.Else():
                m.d.sync += count.eq(index + 1)
        return m
