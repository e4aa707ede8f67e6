"""What a model does to raw features before its first layer, recorded in the model file and the
manifest and applied on the host before inputs are quantised."""

from __future__ import annotations

import math
from dataclasses import dataclass

from debut.errors import ModelFormatError

__all__ = ["Preprocessing"]


@dataclass(frozen=True)
class Preprocessing:
    """Applied to raw features before the first layer: ``x = raw * scale + offset``."""

    scale: float = 1.0
    offset: float = 0.0

    def apply(self, raw):
        return raw * self.scale + self.offset

    def to_dict(self) -> dict:
        return {"scale": self.scale, "offset": self.offset}

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        try:
            scale, offset = float(data["scale"]), float(data["offset"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(
                f"preprocessing must be {{'scale': float, 'offset': float}}, not {data!r}"
            ) from exc
        if not (math.isfinite(scale) and math.isfinite(offset)) or scale == 0:
            raise ModelFormatError(
                f"preprocessing scale must be finite and non-zero and offset finite, not {data!r}"
            )
        return cls(scale, offset)
