"""The network core: deserializer, one stage per DeBut factor or run of factors (with or without
a register between consecutive stages), serializer."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from debut.fixed import Fixed
from hw.deserializer import Deserializer
from hw.factor_stage import FactorStage
from hw.layouts import beat_layout
from hw.serializer import Serializer
from hw.shared_stage import SharedStage
from hw.stream_register import HalfRateRegister

__all__ = ["Network"]


class Network(wiring.Component):
    """A feed-forward network of stages (factor stages and shared stages) with framed beat
    streams on both ends.

    Ports: ``i`` carries input vectors as ``ceil(in_features / in_per_beat)`` beats of
    ``in_per_beat`` elements (``first``/``last`` framing, see :class:`Deserializer`); ``o``
    carries output vectors likewise. The top only connects its parts.

    Timing: one vector per :attr:`ii` cycles; :attr:`latency` cycles from the transfer of a
    vector's last input beat to its first output beat being valid, with no stalls.

    ``stage_registers``: a :class:`HalfRateRegister` between consecutive stages, so that no path
    runs from one stage's logic into the next one's (a large stage spreads over a region of the
    device, and every path between two of them crossed the gap with logic on both sides). Each
    costs a whole vector of flip-flops and a cycle of latency, and passes a vector at most every
    two cycles, so the network's II must be at least 2.
    """

    def __init__(
        self,
        stages: Sequence[FactorStage | SharedStage],
        *,
        in_format: Fixed,
        out_format: Fixed,
        in_per_beat: int,
        out_per_beat: int,
        stage_registers: bool = False,
    ) -> None:
        if not stages:
            raise ValueError("stages must not be empty")
        for a, b in itertools.pairwise(stages):
            if a.out_length != b.in_length or a.out_format != b.in_format:
                raise ValueError(
                    f"stage outputs {a.out_length} x {a.out_format} but the next takes "
                    f"{b.in_length} x {b.in_format}"
                )
        self.stages = list(stages)
        self.deserializer = Deserializer(in_format, stages[0].in_length, in_per_beat)
        self.serializer = Serializer(out_format, stages[-1].out_length, out_per_beat)
        self.stage_registers = [
            HalfRateRegister(stage.o.payload.shape()) for stage in stages[:-1] if stage_registers
        ]
        if stage_registers and self.ii < 2:
            raise ValueError(f"stage registers need an II of at least 2, not {self.ii}")
        super().__init__(
            {
                "i": In(stream.Signature(beat_layout(in_format, in_per_beat))),
                "o": Out(stream.Signature(beat_layout(out_format, out_per_beat))),
            }
        )

    @property
    def ii(self) -> int:
        return max(
            self.deserializer.beats,
            self.serializer.beats,
            *(stage.interval for stage in self.stages),
        )

    @property
    def latency(self) -> int:
        # 1 cycle to hand the vector over from the deserializer, each stage's latency from its
        # input transfer to its output valid, and 1 cycle into the serializer
        # (and a cycle per stage register)
        return 1 + sum(stage.latency for stage in self.stages) + len(self.stage_registers) + 1

    def stage_register_resources(self) -> dict[str, int]:
        """Flip-flops and LUT4s of the stage registers: the vector and two state bits each, and
        a LUT for each state bit's next value and for the load enable."""
        vectors = sum(len(r.o.payload.as_value()) for r in self.stage_registers)
        count = len(self.stage_registers)
        return {"dsp": 0, "lut": 3 * count, "ff": vectors + 2 * count, "ebr": 0}

    @property
    def multipliers(self) -> int:
        return sum(stage.multipliers for stage in self.stages)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.deserializer = self.deserializer
        m.submodules.serializer = self.serializer
        wiring.connect(m, wiring.flipped(self.i), self.deserializer.i)
        previous = self.deserializer.o
        for k, stage in enumerate(self.stages):
            m.submodules[f"stage{k}"] = stage
            if k and self.stage_registers:
                register = self.stage_registers[k - 1]
                m.submodules[f"register{k}"] = register
                wiring.connect(m, previous, register.i)
                previous = register.o
            wiring.connect(m, previous, stage.i)
            previous = stage.o
        wiring.connect(m, previous, self.serializer.i)
        wiring.connect(m, self.serializer.o, wiring.flipped(self.o))
        return m
