"""The device's multiply limit: the Fmax of one MULT18X18D with its own input and output registers
(as the factor stages use it), placed and routed on the board's device with the product's flow.

    .venv/bin/python bench/dsp_peak.py [--board ulx3s-85f] [--seed 1]

The design: two 18-bit counters feed the DSP's input registers; its registered product is
folded into one register that drives an LED (so nothing is optimised away). The device's peak
is then ``DSPs x Fmax`` multiply-accumulates per second. Not a test.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from amaranth import ClockDomain, ClockSignal, Elaboratable, Module, Signal, signed
from amaranth.lib import io

from boards.flow import constraints_name, write_design
from boards.harness import clock_plan
from boards.nextpnr import parse_nextpnr_log, place_and_route
from boards.pll import add_pll_domain
from boards.registry import get_board
from boards.yosys import synthesize
from hw.dsp import mult18x18d

TARGET_MHZ = 200  # above any ECP5 DSP's reach, so nextpnr reports the real Fmax


class PeakTop(Elaboratable):
    def __init__(self, clock) -> None:
        self.clock = clock

    def elaborate(self, platform) -> Module:
        m = Module()
        clk = io.Buffer("i", platform.request(platform.default_clk, dir="-"))
        m.submodules.clk_buffer = clk
        if self.clock.pll is not None:
            add_pll_domain(m, self.clock.pll, clk.i)
        else:
            m.domains.sync = ClockDomain()
            m.d.comb += ClockSignal("sync").eq(clk.i)
        a, b = Signal(signed(18)), Signal(signed(18))
        product, fold = Signal(signed(36)), Signal()
        m.d.sync += [a.eq(a + 1), b.eq(b - 3), fold.eq(product.xor())]
        m.submodules.dsp = mult18x18d(a, b, product)
        led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.submodules.led = led
        m.d.comb += led.o.eq(fold)
        return m


def measure(board_name: str, *, seed: int = 1, workdir: Path | None = None) -> dict:
    """Fmax (MHz) of one registered MULT18X18D on ``board_name``'s device, and the device peak."""
    board = get_board(board_name)
    if board.dsp_primitive != "MULT18X18D":
        raise SystemExit(f"{board.name}: only ECP5 boards are measured here")
    clock = clock_plan(board, TARGET_MHZ)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) if workdir is None else workdir
        write_design(PeakTop(clock), platform=board.make_platform(), board=board, workdir=folder)
        synthesize(folder, family=board.family)
        _, log = place_and_route(
            folder,
            device=board.device,
            package=board.package,
            constraints=constraints_name(board),
            frequency_mhz=clock.f_mhz,
            seed=seed,
        )
    fmax = parse_nextpnr_log(log).main_fmax_mhz
    return {
        "board": board.name,
        "device": board.device,
        "dsp": board.dsp,
        "dsp_fmax_mhz": fmax,
        "peak_macs_per_s": board.dsp * fmax * 1e6,
        "seed": seed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", default="ulx3s-85f")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    peak = measure(args.board, seed=args.seed)
    print(
        f"{peak['board']} ({peak['device']}): one registered MULT18X18D reaches "
        f"{peak['dsp_fmax_mhz']:.1f} MHz; {peak['dsp']} DSPs -> "
        f"{peak['peak_macs_per_s'] / 1e9:.2f} GMAC/s peak"
    )


if __name__ == "__main__":
    main()
