"""DSP cells instantiated directly, where synthesis would not use their registers.

Yosys's ``synth_ecp5`` maps a multiplication to a MULT18X18D with every register bypassed, so
the fabric registers around it sit at the end of long routes to and from the DSP column. The
helper here instantiates the cell with its own registers. ``sim/models/mult18x18d.v`` is the
simulation model used with it (Yosys ships only a blackbox).
"""

from __future__ import annotations

from amaranth import ClockSignal, Const, Instance, Module, Signal, signed

__all__ = ["mult18x18d"]


def mult18x18d(a, b, product) -> Module:
    """An ECP5 MULT18X18D with ``product`` = ``a * b`` two clock cycles later: ``a`` and ``b`` go
    through the cell's input registers, the product through its output register (as a factor
    stage uses it: its operand and product registers inside the DSP block, no fabric route
    between them and the multiplier). Operands are sign- or zero-extended to 18 bits and
    multiplied as signed numbers.

    Every register is on clock 0 and always enabled (clock enable 0 tied high); nothing is reset
    and the cascade is unused. Only settings that prjtrellis encodes are used: nextpnr writes no
    REG_OUTPUT_CE (so the output register takes CE0 like the rest), and ecppack rejects
    SOURCEB_MODE other than its default.
    """
    a18, b18 = Signal(signed(18), name="dsp_a"), Signal(signed(18), name="dsp_b")
    p36 = Signal(signed(36), name="dsp_p")
    zero, one = Const(0, 1), Const(1, 1)
    instance = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK="CLK0",
        p_REG_INPUTA_CE="CE0",
        p_REG_INPUTA_RST="RST0",
        p_REG_INPUTB_CLK="CLK0",
        p_REG_INPUTB_CE="CE0",
        p_REG_INPUTB_RST="RST0",
        p_REG_INPUTC_CLK="NONE",
        p_REG_PIPELINE_CLK="NONE",
        p_REG_OUTPUT_CLK="CLK0",
        p_REG_OUTPUT_CE="CE0",
        p_REG_OUTPUT_RST="RST0",
        p_GSR="DISABLED",
        p_RESETMODE="SYNC",
        p_MULT_BYPASS="DISABLED",
        **{f"i_A{n}": a18[n] for n in range(18)},
        **{f"i_B{n}": b18[n] for n in range(18)},
        **{f"i_C{n}": zero for n in range(18)},
        i_SIGNEDA=one,
        i_SIGNEDB=one,
        i_SOURCEA=zero,
        i_SOURCEB=zero,
        i_CLK0=ClockSignal(),
        i_CE0=one,
        i_RST0=zero,
        **{f"o_P{n}": p36[n] for n in range(36)},
    )
    m = Module()
    m.submodules.mult = instance
    m.d.comb += [a18.eq(a), b18.eq(b), product.eq(p36)]
    return m
