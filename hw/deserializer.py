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
        beats, per_beat = self.beats, self.per_beat
        # the beats shift through a register of whole beats, so every flip-flop takes its
        # neighbour's value under one enable (the transfer) and no beat index is decoded
        lanes = [Signal(self.fmt.width, name=f"lane{k}") for k in range(beats * per_beat)]
        beat = self.i.payload
        full = Signal()
        fire = self.i.valid & self.i.ready
        m.d.comb += [self.o.valid.eq(full), self.i.ready.eq(~full | self.o.ready)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(fire):
            top = (beats - 1) * per_beat
            m.d.sync += [lanes[k].eq(lanes[k + per_beat]) for k in range(top)]
            m.d.sync += [lanes[top + k].eq(beat.data[k]) for k in range(per_beat)]
        m.d.comb += [self.o.payload[j].eq(lanes[j]) for j in range(self.length)]
        # beats taken since the vector's first (0: waiting for a beat flagged first)
        count = Signal(range(beats + 1))
        # the vector is complete with its last beat (with its first, when it has one beat)
        done = beat.first if beats == 1 else ~beat.first & (count == beats - 1)
        with m.If(fire):
            with m.If(done):
                m.d.sync += [count.eq(0), full.eq(1)]
            with m.Elif(beat.first):
                m.d.sync += count.eq(1)
            with m.Elif(count != 0):
                m.d.sync += count.eq(count + 1)
            # else out of sync: wait for a beat that starts a vector
        return m
