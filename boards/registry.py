"""The boards the compiler targets and the resources a design may use on each.

Budgets are the device's usable totals (the ECP5-12F to its datasheet, although nextpnr lets a
12F design use the whole 25F die it shares); a design that fits only beyond them is not a design
for that board.
"""

from __future__ import annotations

from dataclasses import dataclass

from debut.errors import BoardError

__all__ = ["ALIASES", "BOARDS", "Board", "board_names", "get_board"]


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    family: str  # "ecp5" or "ice40"
    device: str  # as nextpnr names it
    package: str
    dsp: int  # 18x18 multipliers (ECP5 MULT18X18D) or 16x16 MACs (iCE40 SB_MAC16)
    lut: int  # 4-input LUTs
    ebr: int  # block RAMs (ECP5 DP16KD, 18 Kb; iCE40 4 Kb)
    clock_mhz: float  # board oscillator
    platform: str  # the amaranth-boards platform class, "module:Class"
    # the design clock `build` uses unless told otherwise; None: chosen from the routed design
    # (the fastest the board's PLL makes that it meets: see compiler/steps/board.py)
    default_clock_mhz: float | None
    loader_board: str  # openFPGALoader's name for the board (-b)

    @property
    def dsp_primitive(self) -> str | None:
        """The DSP cell the core instantiates itself (``FactorStage``'s ``dsp``): the ECP5's
        MULT18X18D with its own registers; on iCE40 synthesis infers SB_MAC16s."""
        return "MULT18X18D" if self.family == "ecp5" else None

    @property
    def bitstream_name(self) -> str:
        """The file the packer writes: ``top.bit`` (ecppack) or ``top.bin`` (icepack)."""
        return "top.bit" if self.family == "ecp5" else "top.bin"

    def make_platform(self):
        """An instance of the board's Amaranth platform."""
        import importlib

        module, name = self.platform.split(":")
        return getattr(importlib.import_module(module), name)()


BOARDS = {
    b.name: b
    for b in (
        Board(
            "ulx3s-12f",
            "ULX3S with ECP5 LFE5U-12F",
            "ecp5",
            "LFE5U-12F",
            "CABGA381",
            platform="amaranth_boards.ulx3s:ULX3S_12F_Platform",
            dsp=28,
            lut=12_000,
            ebr=32,
            clock_mhz=25.0,
            default_clock_mhz=None,
            loader_board="ulx3s",
        ),
        Board(
            "ulx3s-25f",
            "ULX3S with ECP5 LFE5U-25F",
            "ecp5",
            "LFE5U-25F",
            "CABGA381",
            platform="amaranth_boards.ulx3s:ULX3S_25F_Platform",
            dsp=28,
            lut=24_288,
            ebr=56,
            clock_mhz=25.0,
            default_clock_mhz=None,
            loader_board="ulx3s",
        ),
        Board(
            "ulx3s-45f",
            "ULX3S with ECP5 LFE5U-45F",
            "ecp5",
            "LFE5U-45F",
            "CABGA381",
            platform="amaranth_boards.ulx3s:ULX3S_45F_Platform",
            dsp=72,
            lut=43_848,
            ebr=108,
            clock_mhz=25.0,
            default_clock_mhz=None,
            loader_board="ulx3s",
        ),
        Board(
            "ulx3s-85f",
            "ULX3S with ECP5 LFE5U-85F",
            "ecp5",
            "LFE5U-85F",
            "CABGA381",
            platform="amaranth_boards.ulx3s:ULX3S_85F_Platform",
            dsp=156,
            lut=83_640,
            ebr=208,
            clock_mhz=25.0,
            default_clock_mhz=None,
            loader_board="ulx3s",
        ),
        Board(
            "icebreaker",
            "iCEBreaker with iCE40 UP5K",
            "ice40",
            "up5k",
            "sg48",
            platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
            dsp=8,
            lut=5_280,
            ebr=30,
            clock_mhz=12.0,
            default_clock_mhz=12.0,
            loader_board="icebreaker",
        ),
    )
}
ALIASES = {"ulx3s": "ulx3s-85f"}


def board_names() -> list[str]:
    """Every name :func:`get_board` takes."""
    return [*BOARDS, *ALIASES]


def get_board(name: str) -> Board:
    """A board by name (``ulx3s`` is the 85F)."""
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in BOARDS:
        raise BoardError(f"board must be one of {', '.join(board_names())}, not {name!r}")
    return BOARDS[key]
