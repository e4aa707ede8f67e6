"""Does a core fit a board? The analytical estimate of the core and the board harness around it,
held against the board's resources, and the lowering that a board build uses (registers between
the stages wherever the II allows them and the board has room)."""

from __future__ import annotations

from boards.registry import Board
from compiler.artifacts import Resources
from compiler.ir import Graph
from compiler.lower import Lowered, hardware_section, lower
from debut.errors import FitError

__all__ = ["HARNESS_ESTIMATE", "check_fit", "design_estimate", "lower_for_board", "misfits"]

# the harness around the core (UARTs, host link with its self-test ROM and checksum, PLL, LEDs),
# measured: an ECP5 build of a small model with the harness, minus the estimate of its core
HARNESS_ESTIMATE = Resources(dsp=0, lut=1000, ff=450, ebr=1)
_NAMES = {"dsp": "DSPs", "lut": "LUT4s", "ff": "flip-flops", "ebr": "EBRs"}


def design_estimate(lowered: Lowered) -> Resources:
    """The analytical estimate of the core and the board harness around it."""
    return hardware_section(lowered).estimate + HARNESS_ESTIMATE


def misfits(estimate: Resources, board: Board) -> list[str]:
    """What of ``estimate`` exceeds ``board`` (each LUT4 has one flip-flop), as text."""
    limits = {"dsp": board.dsp, "lut": board.lut, "ff": board.lut, "ebr": board.ebr}
    return [
        f"{getattr(estimate, key):,} {_NAMES[key]} of {limit:,}"
        for key, limit in limits.items()
        if getattr(estimate, key) > limit
    ]


def lower_for_board(
    graph: Graph, board: Board, *, budget: int, target_ii: int | None = None
) -> Lowered:
    """The core for ``board``: registers between consecutive stages when the II allows them
    (2 or more) and the design still fits the board with them, else none."""
    plain = lower(graph, budget=budget, target_ii=target_ii, dsp=board.dsp_primitive)
    if plain.ii < 2:
        return plain
    registered = lower(
        graph, budget=budget, target_ii=target_ii, dsp=board.dsp_primitive, stage_registers=True
    )
    if misfits(design_estimate(registered), board):
        registered.discard()
        return plain
    plain.discard()
    return registered


def check_fit(graph: Graph, lowered: Lowered, board: Board) -> Resources:
    """Raise :class:`FitError` when the estimate of ``lowered`` and the harness exceeds
    ``board``, naming the largest DSP budget that fits (or that none does). Returns the
    estimate."""
    estimate = design_estimate(lowered)
    problems = misfits(estimate, board)
    if not problems:
        return estimate
    budget = lowered.network.multipliers
    stages = len(lowered.network.stages)
    suggestion = None
    for candidate in range(min(budget, board.dsp) - 1, stages - 1, -1):
        smaller = lower(graph, budget=candidate)
        smaller.discard()
        if not misfits(design_estimate(smaller), board):
            suggestion = f"--dsp-budget {candidate} fits (II {smaller.ii} cycles)"
            break
    if suggestion is None:
        smallest_design = lower(graph, budget=stages)
        smallest_design.discard()
        smallest = design_estimate(smallest_design)
        suggestion = (
            "no DSP budget fits: even with one multiplier per stage it needs an estimated "
            f"{', '.join(misfits(smallest, board))}; use a larger board "
            "(python -m compiler boards) or a smaller model"
        )
    raise FitError(
        f"the design does not fit {board.name}: it needs an estimated {', '.join(problems)}; "
        f"{suggestion}"
    )
