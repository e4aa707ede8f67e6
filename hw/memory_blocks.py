"""Block RAMs of each FPGA family, for the resource estimates of the stages' ROMs and memories."""

from __future__ import annotations

__all__ = ["BLOCK_SHAPES", "EBR_MIN_DEPTH", "FAMILIES", "blocks"]

# (depth, width) configurations of one block RAM: the ECP5's DP16KD (18 Kb) and the iCE40's
# SB_RAM40_4K (4 Kb)
BLOCK_SHAPES = {
    "ecp5": ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
    "ice40": ((2048, 2), (1024, 4), (512, 8), (256, 16)),
}
FAMILIES = tuple(BLOCK_SHAPES)
EBR_MIN_DEPTH = 128  # words from which Yosys put the stages' ROMs in block RAM (ECP5, measured)


def blocks(depth: int, width: int, family: str = "ecp5") -> int:
    """Block RAMs of ``family`` that hold ``depth`` words of ``width`` bits (the cheapest of
    its configurations, blocks side by side for width and stacked for depth)."""
    if family not in BLOCK_SHAPES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    return min(-(-depth // d) * -(-width // w) for d, w in BLOCK_SHAPES[family])
