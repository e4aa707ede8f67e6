"""Does a core fit a board? The analytical estimate of the core and the board harness around it,
held against the board's resources, and the lowering that a board build uses (registers between
the stages wherever the II allows them and the board has room)."""

from __future__ import annotations

from boards.registry import Board
from compiler.artifacts import Resources
from compiler.ir import Graph
from compiler.lower import Lowered, hardware_section, lower
from debut.errors import FitError

__all__ = [
    "HARNESS_ESTIMATE",
    "check_fit",
    "design_estimate",
    "largest_fitting_budget",
    "lower_for_board",
    "misfits",
]

# the harness around the core (UARTs, host link with its self-test ROM and checksum, PLL, LEDs),
# measured: an ECP5 build of a small model with the harness, minus the estimate of its core
HARNESS_ESTIMATE = Resources(dsp=0, lut=1000, ff=450, ebr=1)
# the share of an iCE40's logic cells that a design may take and still place
ICE40_CELL_SHARE = 0.9
_NAMES = {"dsp": "DSPs", "lut": "LUT4s", "ff": "flip-flops", "ebr": "EBRs"}


def design_estimate(lowered: Lowered) -> Resources:
    """The analytical estimate of the core and the board harness around it."""
    return hardware_section(lowered).estimate + HARNESS_ESTIMATE


def misfits(estimate: Resources, board: Board) -> list[str]:
    """What of ``estimate`` exceeds ``board`` (each LUT4 has one flip-flop), as text. On the
    iCE40 a logic cell is one LUT4 and one flip-flop, and few of the stages' flip-flops share a
    cell with a LUT4 (measured: the 64-64-64-10 digits pair packed into 0.80 and 0.93 of their
    estimated LUT4s plus flip-flops), so LUT4s plus flip-flops are held against
    ``ICE40_CELL_SHARE`` of the cells (placement failed on the DeBut one of the pair at 2
    multipliers, estimated at 99% of the cells)."""
    limits = {"dsp": board.dsp, "lut": board.lut, "ff": board.lut, "ebr": board.ebr}
    found = [
        f"{getattr(estimate, key):,} {_NAMES[key]} of {limit:,}"
        for key, limit in limits.items()
        if getattr(estimate, key) > limit
    ]
    cells = estimate.lut + estimate.ff
    usable = int(board.lut * ICE40_CELL_SHARE)
    if board.family == "ice40" and cells > usable and not found:
        found.append(
            f"{cells:,} logic cells (LUT4s and flip-flops) of {board.lut:,} "
            f"(placement needs {1 - ICE40_CELL_SHARE:.0%} of them free)"
        )
    return found


def _fits(graph: Graph, board: Board, budget: int) -> Lowered | None:
    """The core at ``budget`` multipliers when its estimate fits ``board``, else None."""
    lowered = lower(graph, budget=budget, dsp=board.dsp_primitive, family=board.family)
    if misfits(design_estimate(lowered), board):
        lowered.discard()
        return None
    return lowered


def largest_fitting_budget(
    graph: Graph, board: Board, below: int
) -> tuple[int, Lowered] | tuple[None, None]:
    """The largest budget under ``below`` whose core's estimate fits ``board`` and that core
    (the fewer the multipliers, the fewer stages and the less logic: a bisection), or None."""
    low, high, found = 1, below - 1, (None, None)
    while low <= high:
        mid = (low + high) // 2
        lowered = _fits(graph, board, mid)
        if lowered is None:
            high = mid - 1
            continue
        if found[1] is not None:
            found[1].discard()
        found, low = (mid, lowered), mid + 1
    return found


def lower_for_board(
    graph: Graph,
    board: Board,
    *,
    budget: int,
    target_ii: int | None = None,
    shrink: bool = False,
    say=None,
) -> Lowered:
    """The core for ``board``: registers between consecutive stages when the II allows them
    (2 or more) and the design still fits the board with them, else none. ``shrink``: when the
    core at ``budget`` does not fit the board, the largest budget that does (so a tiny board
    gets shared stages rather than an error), told through ``say``."""
    plain = lower(
        graph, budget=budget, target_ii=target_ii, dsp=board.dsp_primitive, family=board.family
    )
    if shrink and misfits(design_estimate(plain), board):
        smaller, lowered = largest_fitting_budget(graph, board, budget)
        if lowered is not None:
            if say is not None:
                say(
                    f"{budget} multipliers do not fit {board.name} "
                    f"({', '.join(misfits(design_estimate(plain), board))}); {smaller} is the "
                    "largest budget that does"
                )
            plain.discard()
            budget, plain = smaller, lowered
    if plain.ii < 2:
        return plain
    registered = lower(
        graph,
        budget=budget,
        target_ii=target_ii,
        dsp=board.dsp_primitive,
        stage_registers=True,
        family=board.family,
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
    fitting, smaller = largest_fitting_budget(graph, board, min(budget, board.dsp))
    if smaller is not None:
        smaller.discard()
        suggestion = f"--dsp-budget {fitting} fits (II {smaller.ii} cycles)"
    else:
        smallest_design = lower(graph, budget=1, family=board.family)
        smallest_design.discard()
        smallest = design_estimate(smallest_design)
        suggestion = (
            "no DSP budget fits: even on a single multiplier it needs an estimated "
            f"{', '.join(misfits(smallest, board))}; use a larger board "
            "(python -m compiler boards) or a smaller model"
        )
    raise FitError(
        f"the design does not fit {board.name}: it needs an estimated {', '.join(problems)}; "
        f"{suggestion}"
    )
