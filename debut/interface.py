"""The network core's stream interface, and how vectors travel on it as beats.

The core has one input and one output ``amaranth.lib.stream`` port. A vector of ``elements``
integers travels as ``beats`` consecutive beats of ``per_beat`` lanes; element ``j`` is lane
``j % per_beat`` of beat ``j // per_beat``; unused lanes of a last beat are zero. A beat's payload
bits are lane ``k`` in bits ``k*width .. k*width+width-1`` (two's complement when the format is
signed), ``first`` in bit ``per_beat*width`` and ``last`` in the bit above it: the flattening of
``hw.layouts.beat_layout``. This module is the one definition of that packing for every reader
(the manifest, the cocotb bench, tests).
"""

from __future__ import annotations

from dataclasses import dataclass

from debut.fixed import Fixed

__all__ = ["BeatFormat", "CoreInterface", "StreamPort"]


@dataclass(frozen=True)
class BeatFormat:
    """How a vector of ``elements`` integers of ``width`` bits travels as beats of ``per_beat``
    lanes with first/last flags."""

    width: int
    signed: bool
    per_beat: int
    elements: int

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"width must be at least 1, not {self.width!r}")
        if not 1 <= self.per_beat <= self.elements:
            raise ValueError(f"per_beat must be in 1..{self.elements}, not {self.per_beat!r}")

    @property
    def beats(self) -> int:
        return -(-self.elements // self.per_beat)

    @property
    def min_int(self) -> int:
        return Fixed(self.width, 0, self.signed).min_int

    @property
    def max_int(self) -> int:
        return Fixed(self.width, 0, self.signed).max_int

    @property
    def payload_width(self) -> int:
        return self.per_beat * self.width + 2

    def pack(self, lanes: list[int], first: bool, last: bool) -> int:
        """The payload bits of one beat, as a non-negative integer."""
        if len(lanes) != self.per_beat:
            raise ValueError(f"a beat must have {self.per_beat} lanes, not {len(lanes)}")
        mask = (1 << self.width) - 1
        value = 0
        for k, lane in enumerate(lanes):
            lane = int(lane)
            if not self.min_int <= lane <= self.max_int:
                raise ValueError(f"element must be in {self.min_int}..{self.max_int}, not {lane!r}")
            value |= (lane & mask) << (k * self.width)
        top = self.per_beat * self.width
        return value | (int(bool(first)) << top) | (int(bool(last)) << (top + 1))

    def unpack(self, value: int) -> tuple[list[int], bool, bool]:
        """Lanes (sign-extended when signed), first and last of one beat's payload bits."""
        mask = (1 << self.width) - 1
        lanes = [self._lane((value >> (k * self.width)) & mask) for k in range(self.per_beat)]
        top = self.per_beat * self.width
        return lanes, bool((value >> top) & 1), bool((value >> (top + 1)) & 1)

    def _lane(self, raw: int) -> int:
        """One lane's ``width`` bits as an integer of the format (two's complement if signed)."""
        if self.signed and raw >> (self.width - 1):
            return raw - (1 << self.width)
        return raw

    def unpack_bits(self, bits: str) -> tuple[list[int | None], bool, bool]:
        """Like :meth:`unpack` for a payload read as a bit string, most significant bit first,
        that may hold unknown bits (``x``, ``z``, ...): a lane with any of them reads None, an
        unknown flag reads False."""
        if len(bits) != self.payload_width:
            raise ValueError(f"a payload must have {self.payload_width} bits, not {len(bits)}")
        lsb_first = bits[::-1]
        lanes: list[int | None] = []
        for k in range(self.per_beat):
            field = lsb_first[k * self.width : (k + 1) * self.width][::-1]
            lanes.append(self._lane(int(field, 2)) if set(field) <= {"0", "1"} else None)
        top = self.per_beat * self.width
        return lanes, lsb_first[top] == "1", lsb_first[top + 1] == "1"

    def beats_of(self, vector) -> list[int]:
        """Packed beats of one vector, in order; lanes past its end are zero."""
        if len(vector) != self.elements:
            raise ValueError(f"a vector must have {self.elements} elements, not {len(vector)}")
        out = []
        for b in range(self.beats):
            lanes = [int(x) for x in vector[b * self.per_beat : (b + 1) * self.per_beat]]
            lanes += [0] * (self.per_beat - len(lanes))
            out.append(self.pack(lanes, b == 0, b == self.beats - 1))
        return out


@dataclass(frozen=True)
class StreamPort:
    """One stream port of the core: its name, the elements of a vector, how many travel per
    beat, and their fixed-point format."""

    port: str
    elements: int
    per_beat: int
    format: Fixed

    @property
    def beats(self) -> int:
        return -(-self.elements // self.per_beat)

    @property
    def beat_format(self) -> BeatFormat:
        return BeatFormat(self.format.width, self.format.signed, self.per_beat, self.elements)

    def to_dict(self) -> dict:
        return {
            "port": self.port,
            "elements": self.elements,
            "per_beat": self.per_beat,
            "beats": self.beats,
            "format": self.format.to_list(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> StreamPort:
        return cls(
            str(data["port"]),
            int(data["elements"]),
            int(data["per_beat"]),
            Fixed.from_list(data["format"]),
        )


@dataclass(frozen=True)
class CoreInterface:
    """What a driver, a testbench or a harness must know of a built core: its top module, clock
    and reset names, both ports, and its initiation interval and latency in cycles."""

    top: str
    clock: str
    reset: str
    input: StreamPort
    output: StreamPort
    ii_cycles: int
    latency_cycles: int

    def to_dict(self) -> dict:
        return {
            "top": self.top,
            "clock": self.clock,
            "reset": self.reset,
            "input": self.input.to_dict(),
            "output": self.output.to_dict(),
            "ii_cycles": self.ii_cycles,
            "latency_cycles": self.latency_cycles,
        }

    @classmethod
    def from_dict(cls, data: dict) -> CoreInterface:
        return cls(
            str(data["top"]),
            str(data["clock"]),
            str(data["reset"]),
            StreamPort.from_dict(data["input"]),
            StreamPort.from_dict(data["output"]),
            int(data["ii_cycles"]),
            int(data["latency_cycles"]),
        )
