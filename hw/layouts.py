"""Payload layouts shared by the components, defined once."""

from __future__ import annotations

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from debut.fixed import Fixed

__all__ = ["beat_layout", "element_shape", "vector_layout"]


def element_shape(fmt: Fixed) -> Shape:
    """The Amaranth shape of one element of a tensor in format ``fmt``."""
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


def vector_layout(fmt: Fixed, length: int) -> data.ArrayLayout:
    """A whole vector per transfer, element ``k`` at index ``k``."""
    return data.ArrayLayout(element_shape(fmt), length)


def beat_layout(fmt: Fixed, per_beat: int) -> data.StructLayout:
    """One beat of the network's external stream: ``per_beat`` elements and the framing flags
    ``first`` (the beat starts a vector) and ``last`` (the beat ends it)."""
    return data.StructLayout(
        {"data": data.ArrayLayout(element_shape(fmt), per_beat), "first": 1, "last": 1}
    )
