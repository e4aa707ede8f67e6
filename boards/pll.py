"""ECP5 PLL (EHXPLLL) settings for a requested clock, and the Amaranth instance that uses them.

:func:`ecp5_pll` searches the PLL's dividers for the output frequency closest to a request. The
PLL is used with feedback from its CLKOP output, so (Lattice FPGA-TN-02200, ECP5 sysCLOCK PLL):

- ``f_out = f_in * CLKFB_DIV / CLKI_DIV`` and ``f_vco = f_out * CLKOP_DIV``;
- the phase detector input ``f_pfd = f_in / CLKI_DIV`` must lie in 10..400 MHz, so ``f_in`` too;
- ``f_vco`` must lie in 400..800 MHz and ``f_out`` in 3.125..400 MHz, which with
  ``f_out = f_pfd * CLKFB_DIV >= f_pfd`` leaves 10..400 MHz;
- ``CLKI_DIV`` and ``CLKOP_DIV`` are 1..128, ``CLKFB_DIV`` 1..80.

The PFD, VCO and output ranges are applied with a relative slack of ``RANGE_SLACK`` (1 ppm).

:class:`ECP5PLL` instantiates ``EHXPLLL`` with those dividers (parameter names as in Yosys's ECP5
``cells_bb.v``, loop-filter attributes as nextpnr/Trellis read them) and exposes ``LOCK``;
:func:`add_pll_domain` drives a clock domain from it, held in reset until the PLL locks.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

from amaranth import ClockDomain, ClockSignal, Const, Instance, Module
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from debut.errors import BoardError

__all__ = [
    "CLKFB_DIV_RANGE",
    "CLKI_DIV_RANGE",
    "CLKOP_DIV_RANGE",
    "DEFAULT_TOLERANCE",
    "ECP5PLL",
    "F_OUT_RANGE_MHZ",
    "F_PFD_RANGE_MHZ",
    "F_VCO_RANGE_MHZ",
    "RANGE_SLACK",
    "PLLConfig",
    "add_pll_domain",
    "ecp5_pll",
    "ecp5_pll_frequencies",
    "retarget_ecp5_config",
]

# inclusive ranges (MHz for frequencies)
F_PFD_RANGE_MHZ = (10.0, 400.0)
F_VCO_RANGE_MHZ = (400.0, 800.0)
F_OUT_RANGE_MHZ = (10.0, 400.0)  # CLKOP's own range is 3.125..400: see the module docstring
CLKI_DIV_RANGE = (1, 128)
CLKFB_DIV_RANGE = (1, 80)
CLKOP_DIV_RANGE = (1, 128)
# largest relative error between the requested and the produced clock that ecp5_pll accepts
DEFAULT_TOLERANCE = 0.005
# relative slack on the PFD, VCO and output ranges: a phase detector at 9.99999999999999 MHz (from
# a reference given as 49.99999999999994 MHz) is a 10 MHz one; the datasheet limits are not that
# precise, and float inputs should not land on either side of a limit by rounding
RANGE_SLACK = Fraction(1, 10**6)

# loop filter settings nextpnr writes to the bitstream (the values Trellis's ecppll emits for a
# CLKOP-feedback PLL)
_LOOP_FILTER_ATTRS = {
    "ICP_CURRENT": "12",
    "LPF_RESISTOR": "8",
    "MFG_ENABLE_FILTEROPAMP": "1",
    "MFG_GMCREF_SEL": "2",
}


@dataclass(frozen=True)
class PLLConfig:
    """EHXPLLL dividers for one output on CLKOP (feedback from CLKOP, zero phase) and the
    frequencies they give, in MHz. ``f_out_mhz`` is the frequency actually produced: give that one
    to nextpnr and to anything that counts time, not the one requested."""

    f_in_mhz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int
    f_out_mhz: float
    f_vco_mhz: float
    f_pfd_mhz: float

    @property
    def clkop_cphase(self) -> int:
        """Coarse phase of CLKOP in VCO cycles; ``CLKOP_DIV - 1`` is 0 degrees."""
        return self.clkop_div - 1

    @property
    def clkop_fphase(self) -> int:
        """Fine phase of CLKOP (eighths of a VCO cycle): 0."""
        return 0

    def parameters(self) -> dict[str, int | str]:
        """The EHXPLLL parameters (Yosys ``cells_bb.v`` names) that give this configuration."""
        return {
            "CLKI_DIV": self.clki_div,
            "CLKFB_DIV": self.clkfb_div,
            "CLKOP_DIV": self.clkop_div,
            "CLKOP_CPHASE": self.clkop_cphase,
            "CLKOP_FPHASE": self.clkop_fphase,
            "CLKOP_ENABLE": "ENABLED",
            "FEEDBK_PATH": "CLKOP",
            "OUTDIVIDER_MUXA": "DIVA",
            "PLLRST_ENA": "DISABLED",
            "STDBY_ENABLE": "DISABLED",
            "INTFB_WAKE": "DISABLED",
            "DPHASE_SOURCE": "DISABLED",
        }


def _mhz(value: float) -> str:
    # short when that is exact ("100", "33.333"), else every digit
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def _exact(value: float) -> Fraction:
    # the decimal the user wrote (33.333 is 33333/1000, not the nearest binary fraction)
    return Fraction(repr(float(value)))


def _widened(lo: float, hi: float) -> tuple[Fraction, Fraction]:
    return Fraction(lo) * (1 - RANGE_SLACK), Fraction(hi) * (1 + RANGE_SLACK)


def ecp5_pll(
    f_in_mhz: float, f_out_mhz: float, *, tolerance: float = DEFAULT_TOLERANCE
) -> PLLConfig:
    """The EHXPLLL setting whose CLKOP is closest to ``f_out_mhz`` from a ``f_in_mhz`` reference.

    Every setting within the ranges in the module docstring is considered; among equally close
    ones the smallest ``CLKI_DIV`` (highest phase-detector frequency) wins, then the VCO frequency
    nearest the middle of its range (600 MHz; the higher of two equally near).

    Raises :class:`BoardError` when ``f_out_mhz`` (the ``--clock-mhz`` option) is outside
    10..400 MHz or no setting is within ``tolerance`` (relative) of it, and ``ValueError`` when
    ``f_in_mhz`` is outside 10..400 MHz.
    """
    pfd_lo, pfd_hi = F_PFD_RANGE_MHZ
    out_lo, out_hi = F_OUT_RANGE_MHZ
    if not (isinstance(f_in_mhz, int | float) and pfd_lo <= f_in_mhz <= pfd_hi):
        raise ValueError(
            f"f_in_mhz must be in {_mhz(pfd_lo)}..{_mhz(pfd_hi)} MHz, not {f_in_mhz!r}"
        )
    if not (isinstance(tolerance, int | float) and 0 <= tolerance < 1):
        raise ValueError(f"tolerance must be in [0, 1), not {tolerance!r}")
    if not (
        isinstance(f_out_mhz, int | float)
        and math.isfinite(f_out_mhz)
        and out_lo <= f_out_mhz <= out_hi
    ):
        raise BoardError(
            f"--clock-mhz must be in {_mhz(out_lo)}..{_mhz(out_hi)} MHz, not {f_out_mhz!r}"
        )

    target = _exact(f_out_mhz)
    vco_mid = sum(Fraction(f) for f in F_VCO_RANGE_MHZ) / 2
    best_key, best = None, None
    for clki_div, clkfb_div, f_pfd, f_out, clkop_divs in _settings(f_in_mhz):
        # CLKOP_DIV only sets the VCO frequency: the one nearest mid-range, the higher on a tie
        clkop_div = min(clkop_divs, key=lambda d: (abs(f_out * d - vco_mid), -d))
        f_vco = f_out * clkop_div
        key = (abs(f_out - target), clki_div, abs(f_vco - vco_mid), -f_vco)
        if best_key is None or key < best_key:
            best_key, best = key, (clki_div, clkfb_div, clkop_div, f_pfd, f_out)

    assert best is not None  # CLKI_DIV = CLKFB_DIV = 1 is valid for any f_in in range
    clki_div, clkfb_div, clkop_div, f_pfd, f_out = best
    if abs(f_out - target) > target * _exact(tolerance):
        raise BoardError(
            f"--clock-mhz {_mhz(f_out_mhz)} cannot be made from the {_mhz(f_in_mhz)} MHz "
            f"oscillator within {tolerance * 100:g}%: the ECP5 PLL's nearest is "
            f"{float(f_out):.6g} MHz (--clock-mhz {float(f_out):.6g})"
        )
    return PLLConfig(
        f_in_mhz=float(f_in_mhz),
        clki_div=clki_div,
        clkfb_div=clkfb_div,
        clkop_div=clkop_div,
        f_out_mhz=float(f_out),
        f_vco_mhz=float(f_out * clkop_div),
        f_pfd_mhz=float(f_pfd),
    )


def _settings(f_in_mhz: float):
    """Every valid ``(CLKI_DIV, CLKFB_DIV, f_pfd, f_out, CLKOP_DIVs)`` from ``f_in_mhz`` (exact
    fractions, MHz; the CLKOP_DIVs that keep the VCO in range)."""
    f_in = _exact(f_in_mhz)
    vco_lo, vco_hi = _widened(*F_VCO_RANGE_MHZ)
    pfd_lo, pfd_hi = _widened(*F_PFD_RANGE_MHZ)
    out_lo, out_hi = _widened(*F_OUT_RANGE_MHZ)
    for clki_div in range(CLKI_DIV_RANGE[0], CLKI_DIV_RANGE[1] + 1):
        f_pfd = f_in / clki_div
        if not pfd_lo <= f_pfd <= pfd_hi:
            continue
        for clkfb_div in range(CLKFB_DIV_RANGE[0], CLKFB_DIV_RANGE[1] + 1):
            f_out = f_pfd * clkfb_div
            if not out_lo <= f_out <= out_hi:
                continue
            op_lo = max(math.ceil(vco_lo / f_out), CLKOP_DIV_RANGE[0])
            op_hi = min(math.floor(vco_hi / f_out), CLKOP_DIV_RANGE[1])
            if op_lo <= op_hi:
                yield clki_div, clkfb_div, f_pfd, f_out, range(op_lo, op_hi + 1)


def ecp5_pll_frequencies(f_in_mhz: float) -> list[float]:
    """Every CLKOP frequency the PLL makes from ``f_in_mhz`` (MHz, ascending): the clocks a
    build may choose among (from a 25 MHz oscillator, the multiples of 12.5 MHz)."""
    return [float(f) for f in sorted({f_out for _, _, _, f_out, _ in _settings(f_in_mhz)})]


class ECP5PLL(wiring.Component):
    """One ECP5 EHXPLLL set to ``config``: ``clkop`` runs at ``config.f_out_mhz``.

    Ports:
        clki: In(1), the reference clock (``config.f_in_mhz``), straight from an input pin.
        clkop: Out(1), the output clock (also the PLL's feedback).
        lock: Out(1), high while the PLL is locked. It is asynchronous to ``clkop``: synchronise
            it (as :func:`add_pll_domain` does) before using it as a reset.
    """

    clki: In(1)
    clkop: Out(1)
    lock: Out(1)

    def __init__(self, config: PLLConfig):
        if not isinstance(config, PLLConfig):
            raise TypeError(f"config must be a PLLConfig, not {config!r}")
        self.config = config
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        config = self.config
        attrs = {
            "FREQUENCY_PIN_CLKI": _mhz(config.f_in_mhz),
            "FREQUENCY_PIN_CLKOP": _mhz(config.f_out_mhz),
            **_LOOP_FILTER_ATTRS,
        }
        m.submodules.pll = Instance(
            "EHXPLLL",
            *(("a", name, value) for name, value in attrs.items()),
            *(("p", name, value) for name, value in config.parameters().items()),
            ("i", "CLKI", self.clki),
            ("i", "CLKFB", self.clkop),
            ("i", "RST", Const(0)),
            ("i", "STDBY", Const(0)),
            ("i", "PHASESEL0", Const(0)),
            ("i", "PHASESEL1", Const(0)),
            ("i", "PHASEDIR", Const(0)),
            ("i", "PHASESTEP", Const(0)),
            ("i", "PHASELOADREG", Const(0)),
            ("i", "PLLWAKESYNC", Const(0)),
            ("i", "ENCLKOP", Const(0)),
            ("o", "CLKOP", self.clkop),
            ("o", "LOCK", self.lock),
        )
        return m


def add_pll_domain(m: Module, config: PLLConfig, clki, *, domain: str = "sync") -> ECP5PLL:
    """Add to ``m`` an :class:`ECP5PLL` fed by ``clki`` and a clock domain ``domain`` clocked by
    its output, held in reset until the PLL locks (the reset leaves synchronously to the new
    clock). Returns the PLL (its ``lock`` can drive a status LED)."""
    pll = ECP5PLL(config)
    m.submodules[f"pll_{domain}"] = pll
    m.domains += ClockDomain(domain)
    m.d.comb += [pll.clki.eq(clki), ClockSignal(domain).eq(pll.clkop)]
    m.submodules[f"pll_{domain}_reset"] = ResetSynchronizer(~pll.lock, domain=domain)
    return pll


# The EHXPLLL words of a Trellis text configuration (nextpnr --textcfg) that hold the dividers
# and CLKOP's phase, most significant bit first: the name, the parameter it holds, the offset
# added to the parameter, the width in bits
_CONFIG_WORDS = (
    ("CLKI_DIV", "clki_div", -1, 7),
    ("CLKFB_DIV", "clkfb_div", -1, 7),
    ("CLKOP_DIV", "clkop_div", -1, 7),
    ("CLKOP_CPHASE", "clkop_cphase", 0, 7),
    ("CLKOP_FPHASE", "clkop_fphase", 0, 3),
)


def _config_word(config: PLLConfig, attribute: str, offset: int, width: int) -> str:
    return format(getattr(config, attribute) + offset, f"0{width}b")


def retarget_ecp5_config(text: str, routed: PLLConfig, wanted: PLLConfig) -> str:
    """The Trellis text configuration ``text`` of a routed design whose one EHXPLLL is set to
    ``routed``, with the PLL set to ``wanted`` instead: only the dividers' and CLKOP phase's
    words change, so every path keeps the delays it was routed with (the new clock is met when
    the routed design's Fmax reaches it). Raises ``ValueError`` unless ``text`` holds exactly
    one PLL, set to ``routed``."""
    if wanted.f_in_mhz != routed.f_in_mhz:
        raise ValueError(
            f"wanted must use the routed PLL's {routed.f_in_mhz:g} MHz reference, not "
            f"{wanted.f_in_mhz:g} MHz"
        )
    lines = text.split("\n")
    for name, attribute, offset, width in _CONFIG_WORDS:
        at = [k for k, line in enumerate(lines) if line.startswith(f"word: {name} ")]
        if len(at) != 1:
            raise ValueError(f"text must set one PLL's {name}, not {len(at)}")
        old = lines[at[0]].split()[2]
        expected = _config_word(routed, attribute, offset, width)
        if old != expected:
            raise ValueError(f"the routed PLL's {name} is {old}, not {expected} as routed asks")
        lines[at[0]] = f"word: {name} {_config_word(wanted, attribute, offset, width)}"
    return "\n".join(lines)
