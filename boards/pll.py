"""ECP5 PLL (EHXPLLL) settings for a requested clock, and the Amaranth instance that uses them.

:func:`ecp5_pll` searches the PLL's dividers for the output frequency closest to a request. The
design clock is the PLL's CLKOS output, and the feedback comes from CLKOP (Lattice FPGA-TN-02200,
ECP5 sysCLOCK PLL; the arrangement Trellis's ``ecppll --highres`` uses):

- the phase detector runs at ``f_pfd = f_in / CLKI_DIV``, which must lie in 10..400 MHz, so
  ``f_in`` too;
- the feedback makes ``f_op = f_pfd * CLKFB_DIV`` on CLKOP, and the VCO runs at
  ``f_vco = f_op * CLKOP_DIV``, which must lie in 400..800 MHz;
- the design clock is ``f_out = f_vco / CLKOS_DIV``; CLKOP and CLKOS may run at 3.125..400 MHz,
  and the design clock is kept to 10..400 MHz (``f_op >= f_pfd >= 10`` anyway);
- ``CLKI_DIV``, ``CLKOP_DIV`` and ``CLKOS_DIV`` are 1..128, ``CLKFB_DIV`` 1..80.

With CLKOP alone (``CLKOS_DIV = CLKOP_DIV``) a 25 MHz oscillator gives only multiples of 12.5 MHz;
dividing the VCO a second time gives a clock within 1% of any request from 10 to 200 MHz (within
1.2% above).

The PFD, VCO and output ranges are applied with a relative slack of ``RANGE_SLACK`` (1 ppm).

:class:`ECP5PLL` instantiates ``EHXPLLL`` with those dividers (parameter names as in Yosys's ECP5
``cells_bb.v``, loop-filter attributes as nextpnr/Trellis read them) and exposes ``LOCK``;
:func:`add_pll_domain` drives a clock domain from it, held in reset until the PLL locks.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

from amaranth import ClockDomain, ClockSignal, Const, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from debut.errors import BoardError

__all__ = [
    "CLKFB_DIV_RANGE",
    "CLKI_DIV_RANGE",
    "CLKOP_DIV_RANGE",
    "CLKOS_DIV_RANGE",
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
F_OUT_RANGE_MHZ = (10.0, 400.0)  # CLKOS's own range is 3.125..400: see the module docstring
CLKI_DIV_RANGE = (1, 128)
CLKFB_DIV_RANGE = (1, 80)
CLKOP_DIV_RANGE = (1, 128)
CLKOS_DIV_RANGE = (1, 128)
# largest relative error between the requested and the produced clock that ecp5_pll accepts
DEFAULT_TOLERANCE = 0.005
# relative slack on the PFD, VCO and output ranges: a phase detector at 9.99999999999999 MHz (from
# a reference given as 49.99999999999994 MHz) is a 10 MHz one; the datasheet limits are not that
# precise, and float inputs should not land on either side of a limit by rounding
RANGE_SLACK = Fraction(1, 10**6)

# loop filter settings nextpnr writes to the bitstream (the values Trellis's ecppll emits for a
# PLL with CLKOP feedback)
_LOOP_FILTER_ATTRS = {
    "ICP_CURRENT": "12",
    "LPF_RESISTOR": "8",
    "MFG_ENABLE_FILTEROPAMP": "1",
    "MFG_GMCREF_SEL": "2",
}


@dataclass(frozen=True)
class PLLConfig:
    """EHXPLLL dividers for the design clock on CLKOS (feedback from CLKOP, zero phase on both)
    and the frequencies they give, in MHz. ``f_out_mhz`` is the frequency actually produced: give
    that one to nextpnr and to anything that counts time, not the one requested."""

    f_in_mhz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int
    clkos_div: int
    f_out_mhz: float
    f_vco_mhz: float
    f_pfd_mhz: float

    @property
    def f_feedback_mhz(self) -> float:
        """CLKOP's frequency, the feedback: ``f_pfd * CLKFB_DIV``."""
        return self.f_vco_mhz / self.clkop_div

    @property
    def clkop_cphase(self) -> int:
        """Coarse phase of CLKOP in VCO cycles; ``CLKOP_DIV - 1`` is 0 degrees."""
        return self.clkop_div - 1

    @property
    def clkos_cphase(self) -> int:
        """Coarse phase of CLKOS in VCO cycles; ``CLKOS_DIV - 1`` is 0 degrees."""
        return self.clkos_div - 1

    @property
    def fphase(self) -> int:
        """Fine phase of CLKOP and CLKOS (eighths of a VCO cycle): 0."""
        return 0

    def describe(self) -> str:
        """The dividers, as a build's progress shows them."""
        return (
            f"CLKI/{self.clki_div} FB x{self.clkfb_div} OP/{self.clkop_div} "
            f"OS/{self.clkos_div}, VCO {_mhz(round(self.f_vco_mhz, 6))} MHz"
        )

    def parameters(self) -> dict[str, int | str]:
        """The EHXPLLL parameters (Yosys ``cells_bb.v`` names) that give this configuration."""
        return {
            "CLKI_DIV": self.clki_div,
            "CLKFB_DIV": self.clkfb_div,
            "CLKOP_DIV": self.clkop_div,
            "CLKOP_CPHASE": self.clkop_cphase,
            "CLKOP_FPHASE": self.fphase,
            "CLKOS_DIV": self.clkos_div,
            "CLKOS_CPHASE": self.clkos_cphase,
            "CLKOS_FPHASE": self.fphase,
            "CLKOP_ENABLE": "ENABLED",
            "CLKOS_ENABLE": "ENABLED",
            "FEEDBK_PATH": "CLKOP",
            "OUTDIVIDER_MUXA": "DIVA",
            "OUTDIVIDER_MUXB": "DIVB",
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
    """The EHXPLLL setting whose CLKOS is closest to ``f_out_mhz`` from a ``f_in_mhz`` reference.

    Every setting within the ranges in the module docstring is considered; among equally close
    ones the smallest ``CLKI_DIV`` (highest phase-detector frequency) wins, then the VCO frequency
    nearest the middle of its range (600 MHz; the higher of two equally near), then CLKOP at the
    design clock (``CLKOP_DIV = CLKOS_DIV``) where the feedback can run there, else the smallest
    ``CLKOP_DIV``.

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
    for clki_div, f_pfd, f_vco, clkos_divs in _settings(f_in_mhz):
        # the CLKOS dividers on either side of the target (the nearest clocks this VCO makes)
        near = f_vco / target
        sides = (math.floor(near), math.ceil(near))
        for clkos_div in {_clamp(side, clkos_divs) for side in sides}:
            f_out = f_vco / clkos_div
            key = (abs(f_out - target), clki_div, abs(f_vco - vco_mid), -f_vco)
            if best_key is None or key < best_key:
                best_key, best = key, (clki_div, f_pfd, f_vco, clkos_div, f_out)

    assert best is not None  # CLKI_DIV = 1 and a VCO in range are valid for any f_in in range
    clki_div, f_pfd, f_vco, clkos_div, f_out = best
    if abs(f_out - target) > target * _exact(tolerance):
        raise BoardError(
            f"--clock-mhz {_mhz(f_out_mhz)} cannot be made from the {_mhz(f_in_mhz)} MHz "
            f"oscillator within {tolerance * 100:g}%: the ECP5 PLL's nearest is "
            f"{float(f_out):.6g} MHz (--clock-mhz {float(f_out):.6g})"
        )
    clkfb_div, clkop_div = _feedback(f_pfd, f_vco, clkos_div)
    return PLLConfig(
        f_in_mhz=float(f_in_mhz),
        clki_div=clki_div,
        clkfb_div=clkfb_div,
        clkop_div=clkop_div,
        clkos_div=clkos_div,
        f_out_mhz=float(f_out),
        f_vco_mhz=float(f_vco),
        f_pfd_mhz=float(f_pfd),
    )


def _clamp(value: int, allowed: range) -> int:
    return min(max(value, allowed.start), allowed.stop - 1)


def _settings(f_in_mhz: float):
    """Every valid ``(CLKI_DIV, f_pfd, f_vco, CLKOS_DIVs)`` from ``f_in_mhz`` (exact fractions,
    MHz; the CLKOS dividers that keep the design clock in range). The VCO runs at ``f_pfd``
    times ``CLKFB_DIV * CLKOP_DIV``, and every multiple of ``f_pfd`` in the VCO's range is made
    by some pair of them (:func:`_feedback`)."""
    f_in = _exact(f_in_mhz)
    vco_lo, vco_hi = _widened(*F_VCO_RANGE_MHZ)
    pfd_lo, pfd_hi = _widened(*F_PFD_RANGE_MHZ)
    out_lo, out_hi = _widened(*F_OUT_RANGE_MHZ)
    for clki_div in range(CLKI_DIV_RANGE[0], CLKI_DIV_RANGE[1] + 1):
        f_pfd = f_in / clki_div
        if not pfd_lo <= f_pfd <= pfd_hi:
            continue
        for n in range(max(1, math.ceil(vco_lo / f_pfd)), math.floor(vco_hi / f_pfd) + 1):
            f_vco = f_pfd * n
            os_lo = max(math.ceil(f_vco / out_hi), CLKOS_DIV_RANGE[0])
            os_hi = min(math.floor(f_vco / out_lo), CLKOS_DIV_RANGE[1])
            if os_lo <= os_hi:
                yield clki_div, f_pfd, f_vco, range(os_lo, os_hi + 1)


def _feedback(f_pfd: Fraction, f_vco: Fraction, clkos_div: int) -> tuple[int, int]:
    """``(CLKFB_DIV, CLKOP_DIV)`` that run the VCO at ``f_vco``: CLKOP at the design clock
    (``CLKOP_DIV = CLKOS_DIV``) when the dividers allow it, else the smallest ``CLKOP_DIV``.
    CLKOP runs at ``f_pfd * CLKFB_DIV``, which is at least ``f_pfd`` and at most 400 MHz."""
    n = f_vco / f_pfd
    assert n.denominator == 1
    n = int(n)
    op_hi = _widened(*F_OUT_RANGE_MHZ)[1]
    pairs = [
        (n // op, op)
        for op in range(CLKOP_DIV_RANGE[0], CLKOP_DIV_RANGE[1] + 1)
        if n % op == 0 and n // op <= CLKFB_DIV_RANGE[1] and f_pfd * (n // op) <= op_hi
    ]
    assert pairs  # CLKFB_DIV = 1, CLKOP_DIV = n (at most 80: f_pfd >= 10, f_vco <= 800)
    return min(pairs, key=lambda pair: (pair[1] != clkos_div, pair[1]))


def ecp5_pll_frequencies(f_in_mhz: float) -> list[float]:
    """Every CLKOS frequency the PLL makes from ``f_in_mhz`` (MHz, ascending): the clocks a
    build may choose among."""
    return [
        float(f)
        for f in sorted(
            {f_vco / d for _, _, f_vco, clkos_divs in _settings(f_in_mhz) for d in clkos_divs}
        )
    ]


class ECP5PLL(wiring.Component):
    """One ECP5 EHXPLLL set to ``config``: ``clkos`` runs at ``config.f_out_mhz``.

    Ports:
        clki: In(1), the reference clock (``config.f_in_mhz``), straight from an input pin.
        clkos: Out(1), the output clock (CLKOP, at ``config.f_feedback_mhz``, is the PLL's
            feedback and drives nothing else).
        lock: Out(1), high while the PLL is locked. It is asynchronous to ``clkos``: synchronise
            it (as :func:`add_pll_domain` does) before using it as a reset.
    """

    clki: In(1)
    clkos: Out(1)
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
            "FREQUENCY_PIN_CLKOP": _mhz(config.f_feedback_mhz),
            "FREQUENCY_PIN_CLKOS": _mhz(config.f_out_mhz),
            **_LOOP_FILTER_ATTRS,
        }
        clkop = Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            *(("a", name, value) for name, value in attrs.items()),
            *(("p", name, value) for name, value in config.parameters().items()),
            ("i", "CLKI", self.clki),
            ("i", "CLKFB", clkop),
            ("i", "RST", Const(0)),
            ("i", "STDBY", Const(0)),
            ("i", "PHASESEL0", Const(0)),
            ("i", "PHASESEL1", Const(0)),
            ("i", "PHASEDIR", Const(0)),
            ("i", "PHASESTEP", Const(0)),
            ("i", "PHASELOADREG", Const(0)),
            ("i", "PLLWAKESYNC", Const(0)),
            ("i", "ENCLKOP", Const(0)),
            ("i", "ENCLKOS", Const(0)),
            ("o", "CLKOP", clkop),
            ("o", "CLKOS", self.clkos),
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
    m.d.comb += [pll.clki.eq(clki), ClockSignal(domain).eq(pll.clkos)]
    m.submodules[f"pll_{domain}_reset"] = ResetSynchronizer(~pll.lock, domain=domain)
    return pll


# The EHXPLLL words of a Trellis text configuration (nextpnr --textcfg) that hold the dividers
# and the phases of CLKOP and CLKOS, most significant bit first: the name, the parameter it
# holds, the offset added to the parameter, the width in bits
_CONFIG_WORDS = (
    ("CLKI_DIV", "clki_div", -1, 7),
    ("CLKFB_DIV", "clkfb_div", -1, 7),
    ("CLKOP_DIV", "clkop_div", -1, 7),
    ("CLKOP_CPHASE", "clkop_cphase", 0, 7),
    ("CLKOP_FPHASE", "fphase", 0, 3),
    ("CLKOS_DIV", "clkos_div", -1, 7),
    ("CLKOS_CPHASE", "clkos_cphase", 0, 7),
    ("CLKOS_FPHASE", "fphase", 0, 3),
)


def _config_word(config: PLLConfig, attribute: str, offset: int, width: int) -> str:
    return format(getattr(config, attribute) + offset, f"0{width}b")


def retarget_ecp5_config(text: str, routed: PLLConfig, wanted: PLLConfig) -> str:
    """The Trellis text configuration ``text`` of a routed design whose one EHXPLLL is set to
    ``routed``, with the PLL set to ``wanted`` instead: only the words of the dividers and the
    output phases change, so every path keeps the delays it was routed with (the new clock is
    met when the routed design's Fmax reaches it). Raises ``ValueError`` unless ``text`` holds
    exactly one PLL, set to ``routed``."""
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
