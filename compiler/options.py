"""The options every command shares, typed, with their checks (docs/cli.md).

One :class:`Options` value carries what the CLI's flags say (or the same keyword arguments of the
Python API in :mod:`compiler.pipeline`); :meth:`Options.check` tests every value before any step
runs, so a bad option never costs a half-finished build.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from boards.registry import Board, board_names, get_board
from debut.errors import BoardError, OptionError
from debut.fixed import MAX_WIDTH, MIN_WIDTH

__all__ = ["AUTO_FIRST_MHZ", "AUTO_MARGIN", "SIMULATORS", "Options"]

SIMULATORS = ("verilator", "icarus")  # the default first
# The automatic clock (boards whose default clock is None, the ECP5 ones): place and route once
# at an ambitious target, then set the PLL to the fastest clock it makes that the routed
# design's Fmax meets with a margin (nextpnr's Fmax is its timing model's estimate).
AUTO_FIRST_MHZ = 125.0
AUTO_MARGIN = 0.02
MAX_SEED = 2**31 - 1


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Options:
    """Every option of the commands; a command reads the ones its steps need.

    Quantisation: ``act_bits``, ``weight_bits`` (2..16), ``calib`` (an .npz of raw features 'X'
    and labels 'y' instead of the model's data set), ``trust_pickle``. Hardware: ``board``,
    ``dsp_budget`` (default: all the board's DSPs), ``target_ii``. Board build: ``clock_mhz``
    (default: the board's), ``seed`` (nextpnr's), ``netlist_vectors`` (0: no netlist check),
    ``baud`` (default: the protocol's). ``clock_mhz`` None on a board whose default clock is None
    (the ECP5 ones) is the automatic clock. Simulation (``sim``): ``vectors``, ``simulator``,
    ``waves``, ``sim_seed``. ``sweep_bits``: the bit widths of ``quantize``'s accuracy sweep.
    """

    act_bits: int = 8
    weight_bits: int = 8
    calib: str | None = None
    trust_pickle: bool = False
    board: str = "ulx3s"
    dsp_budget: int | None = None
    target_ii: int | None = None
    clock_mhz: float | None = None
    seed: int = 1
    netlist_vectors: int = field(default=0, metadata={"flag": "--netlist-sim"})
    baud: int | None = None
    vectors: int = 1000
    simulator: str = "verilator"
    waves: bool = False
    sim_seed: int = field(default=0, metadata={"flag": "--seed"})
    sweep_bits: tuple[int, ...] = ()

    @classmethod
    def flag(cls, name: str) -> str:
        """The command-line flag of field ``name``."""
        for f in fields(cls):
            if f.name == name:
                return f.metadata.get("flag", _flag(name))
        raise KeyError(name)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def target_board(self) -> Board:
        return get_board(self.board)

    @property
    def budget(self) -> int:
        """The multipliers the core may use."""
        return self.target_board.dsp if self.dsp_budget is None else self.dsp_budget

    def check(self, *, synthesis: bool = True) -> Options:
        """Raise :class:`OptionError` for the first value out of range. ``synthesis``: whether
        the command goes on to synthesis (the clock and the netlist check need it)."""
        for name in ("act_bits", "weight_bits"):
            value = getattr(self, name)
            if not _is_int(value) or not MIN_WIDTH <= value <= MAX_WIDTH:
                raise OptionError(
                    f"{self.flag(name)} must be an integer in {MIN_WIDTH}..{MAX_WIDTH}, "
                    f"not {value!r}"
                )
        if str(self.board).lower() not in board_names():
            raise OptionError(
                f"--board must be one of {', '.join(board_names())}, not {self.board!r}"
            )
        board = self.target_board
        for name in ("dsp_budget", "target_ii", "baud"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise OptionError(f"{self.flag(name)} must be a positive integer, not {value!r}")
        if self.dsp_budget is not None and self.dsp_budget > board.dsp:
            raise OptionError(
                f"--dsp-budget {self.dsp_budget} exceeds the {board.dsp} DSPs of {board.name}; "
                f"use at most {board.dsp} or a larger board"
            )
        for name in ("seed", "sim_seed"):
            value = getattr(self, name)
            if not _is_int(value) or not 0 <= value <= MAX_SEED:
                raise OptionError(
                    f"{self.flag(name)} must be an integer in 0..{MAX_SEED}, not {value!r}"
                )
        if not _is_int(self.netlist_vectors) or self.netlist_vectors < 0:
            raise OptionError(
                f"--netlist-sim must be 0 or more vectors, not {self.netlist_vectors!r}"
            )
        if not _is_int(self.vectors) or self.vectors < 1:
            raise OptionError(f"--vectors must be a positive integer, not {self.vectors!r}")
        if self.simulator not in SIMULATORS:
            raise OptionError(
                f"--simulator must be one of {', '.join(SIMULATORS)}, not {self.simulator!r}"
            )
        if self.clock_mhz is not None and not (
            isinstance(self.clock_mhz, (int, float))
            and math.isfinite(self.clock_mhz)
            and self.clock_mhz > 0
        ):
            raise OptionError(f"--clock-mhz must be positive, not {self.clock_mhz}")
        if not synthesis and (self.clock_mhz is not None or self.netlist_vectors):
            raise OptionError("--clock-mhz and --netlist-sim need synthesis; drop --no-synth")
        if synthesis:
            self._check_clock(board)
        return self

    def _check_clock(self, board: Board) -> None:
        """The clock the board can make, and a baud rate its oscillator (the UARTs' clock) can
        keep."""
        from boards.harness import clock_plan
        from boards.link.protocol import DEFAULT_BAUD
        from boards.link.uart import uart_divisor

        requested = self.clock_mhz or board.default_clock_mhz or AUTO_FIRST_MHZ
        try:
            clock = clock_plan(board, requested)
        except BoardError as exc:
            raise OptionError(str(exc)) from None
        baud = DEFAULT_BAUD if self.baud is None else self.baud
        try:
            uart_divisor(clock.oscillator_mhz * 1e6, baud)
        except ValueError as exc:
            raise OptionError(
                f"--baud {baud} from the {clock.oscillator_mhz:g} MHz oscillator: {exc}"
            ) from None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
