"""Our simulation models of ECP5 cells that Yosys ships only as blackboxes, each against an
independent behaviour (ROMs Yosys mapped into DP16KD blocks beside the same ROMs' own Verilog, in
every configuration the designs use; the products of plain multiplies Yosys mapped onto MULT18X18D
cells, and Yosys's own mapping of a registered multiply beside the cell as the cores instantiate
it), and the refusal of a netlist holding a cell that no model covers (simulated, its outputs
would be X)."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from amaranth import Module, signed, unsigned
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from boards.yosys import synthesize
from debut.errors import SimulationError
from hw.dsp import mult18x18d
from sim.runner import DP16KD_MODEL, MULT18X18D_MODEL, available, ecp5_cell_models, run_top_sim


def test_unmodelled_cell_in_a_netlist_is_refused(tmp_path):
    netlist = tmp_path / "top_netlist_sim.v"
    netlist.write_text("module top(clk);\n  input clk;\n  PDPW16KD ram ();\nendmodule\n")
    with pytest.raises(SimulationError, match=r"uses PDPW16KD, which the netlist check does not"):
        run_top_sim(
            netlist,
            top="top",
            clock="clk",
            rx="rx",
            tx="tx",
            divisor=4,
            exchanges=[],
            sim_dir=tmp_path / "sim",
            simulator="icarus" if available("icarus") else "verilator",
        )


class Rom(wiring.Component):
    def __init__(self, contents, width):
        self.contents, self.width = [int(v) for v in contents], width
        depth_bits = (len(contents) - 1).bit_length()
        super().__init__({"addr": In(depth_bits), "data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(
            shape=unsigned(self.width), depth=len(self.contents), init=self.contents
        )
        port = mem.read_port()
        m.d.comb += [port.addr.eq(self.addr), self.data.eq(port.data)]
        return m


def dp16kd_uses(netlist: str) -> set[tuple[int, str]]:
    """(data width, port) of each DP16KD read port in a netlist: the port whose clock enable is
    tied high, at that port's DATA_WIDTH."""
    uses = set()
    for params, ports in re.findall(r"DP16KD #\((.*?)\)\s*\S+\s*\((.*?)\);", netlist, re.S):
        for port in "AB":
            if f".CE{port}(1'h1)" in ports:
                width = re.search(rf"\.DATA_WIDTH_{port}\(32'd(\d+)\)", params)
                uses.add((int(width.group(1)) if width else 18, port))
    return uses


@pytest.mark.synth
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
@pytest.mark.parametrize(
    ("depth", "width", "uses"),
    [
        # the ROMs of the ULX3S-12F top of examples/digits_debut_small.pt at 22 DSPs: step ROMs
        # of 128 steps, 19 to 36 bits wide read on port B in the 36-bit mode (port A its idle
        # write side), up to 18 bits on port A at 18; the self-test ROM, 2,048 x 10 bits, on
        # port A at 9 (its tenth bit in LUTs)
        (128, 22, {(36, "B")}),
        (128, 18, {(18, "A")}),
        (2048, 10, {(9, "A")}),
        # wider and deeper: two 36-bit blocks side by side, a block at 18 bits
        (300, 45, {(36, "B")}),
        (1000, 12, {(18, "A")}),
    ],
)
def test_dp16kd_model_reads_as_the_plain_rom_cycle_by_cycle(tmp_path, depth, width, uses):
    """A ROM as the cores and the self-test write it (an Amaranth memory with a synchronous,
    always enabled read port) through synth_ecp5 into DP16KD blocks, in each configuration the
    designs use; its netlist, through our model, beside the ROM's own Verilog, both in Icarus,
    cycle by cycle on random addresses (held for some cycles, changed every cycle elsewhere):
    equal outputs, each the word addressed at the clock edge before, every word read."""
    contents = np.random.default_rng(depth + width).integers(0, 1 << width, depth)
    rom = Rom(contents, width)
    (tmp_path / "rom.v").write_text(verilog.convert(rom, name="rom", emit_src=False))
    synthesize(
        tmp_path,
        family="ecp5",
        top="rom",
        source="rom.v",
        output=None,
        extra="rename rom rom_netlist\nwrite_verilog -noattr rom_netlist.v\n",
    )
    netlist = (tmp_path / "rom_netlist.v").read_text()
    assert dp16kd_uses(netlist) == uses
    rng = np.random.default_rng(width)
    addresses = [int(a) for a in rng.permutation(depth)]  # every word once
    addresses += [int(a) for a in rng.integers(0, depth, 200).repeat(rng.integers(1, 4, 200))]
    abits = (depth - 1).bit_length()
    steps = "\n".join(
        f'    addr = {a}; #5 clk = 1; #1 $display("%0d %0d %0d", {i}, data_netlist, data_rtl);'
        " #4 clk = 0;"
        for i, a in enumerate(addresses)
    )
    (tmp_path / "tb.v").write_text(
        f"module tb;\n  reg clk = 0, rst = 0;\n  reg [{abits - 1}:0] addr = 0;\n"
        f"  wire [{width - 1}:0] data_netlist, data_rtl;\n"
        "  rom_netlist netlist (.clk(clk), .rst(rst), .addr(addr), .data(data_netlist));\n"
        "  rom rtl (.clk(clk), .rst(rst), .addr(addr), .data(data_rtl));\n"
        f"  initial begin\n{steps}\n    $finish;\n  end\nendmodule\n"
    )
    cells = ecp5_cell_models(tmp_path / "ecp5_cells.v")
    files = [tmp_path / "tb.v", tmp_path / "rom_netlist.v", tmp_path / "rom.v", DP16KD_MODEL, cells]
    lines = icarus_lines(tmp_path, "tb", files)
    assert len(lines) == len(addresses)
    for i, got, want in lines:
        k = int(i)
        assert int(got) == int(want) == contents[addresses[k]], (k, addresses[k])


def icarus_lines(tmp_path, top, files):
    """Compile ``files`` with Icarus (top module ``top``), run them, return the output lines."""
    vvp = tmp_path / f"{top}.vvp"
    subprocess.run(
        ["iverilog", "-g2005", "-s", top, "-o", str(vvp), *map(str, files)],
        check=True,
        capture_output=True,
    )
    run = subprocess.run(["vvp", "-n", str(vvp)], check=True, capture_output=True, text=True)
    return [line.split() for line in run.stdout.splitlines() if line[:1].isdigit()]


def operand_values(width, signed_, count, rng):
    """The operand's edges (minimum, maximum, zero, one, minus one or maximum - 1) and ``count``
    random values."""
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed_ else (0, (1 << width) - 1)
    edges = [lo, hi, 0, 1, -1 if signed_ else hi - 1]
    return np.concatenate([edges, rng.integers(lo, hi + 1, count)]).astype(object)


@pytest.mark.synth
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
@pytest.mark.parametrize(
    ("width_a", "signed_a", "width_b", "signed_b"),
    [
        (18, True, 18, True),  # the cores' operands: both sign- or zero-extended to 18 bits
        (16, True, 16, True),
        (17, False, 16, True),  # an unsigned activation times a signed weight
        (8, False, 8, True),
        (9, True, 5, True),
        (17, False, 17, False),
        (2, True, 2, True),
    ],
)
def test_mult18x18d_model_computes_what_yosys_maps_plain_multiplies_to(
    tmp_path, width_a, signed_a, width_b, signed_b
):
    """A multiply of plain Verilog through synth_ecp5 onto MULT18X18D cells (registers
    bypassed, signedness on SIGNEDA/SIGNEDB), its netlist simulated in Icarus with our model:
    every product equals the exact one."""
    width_p = width_a + width_b + (signed_a != signed_b)

    def operand(name, width, is_signed, other_signed):
        if is_signed:
            return f"$signed({name})"
        return f"$signed({{1'b0, {name}}})" if other_signed else name

    expr = (
        f"{operand('a', width_a, signed_a, signed_b)} * {operand('b', width_b, signed_b, signed_a)}"
    )
    (tmp_path / "mul.v").write_text(
        f"module mul(input [{width_a - 1}:0] a, input [{width_b - 1}:0] b,\n"
        f"           output [{width_p - 1}:0] p);\n  assign p = {expr};\nendmodule\n"
    )
    synthesize(
        tmp_path,
        family="ecp5",
        top="mul",
        source="mul.v",
        output=None,
        extra="write_verilog -noattr mul_netlist.v\n",
    )
    assert "MULT18X18D" in (tmp_path / "mul_netlist.v").read_text()
    rng = np.random.default_rng(width_a * 100 + width_b)
    a = operand_values(width_a, signed_a, 300, rng)
    b = np.roll(operand_values(width_b, signed_b, 300, rng), 3)
    pairs = list(zip(a, b, strict=True))
    steps = "\n".join(
        f"    a = {width_a}'d{int(x) % (1 << width_a)}; b = {width_b}'d{int(y) % (1 << width_b)};"
        ' #1 $display("%0d %0d", ' + f"{i}, p);"
        for i, (x, y) in enumerate(pairs)
    )
    (tmp_path / "tb.v").write_text(
        f"module tb;\n  reg [{width_a - 1}:0] a = 0;\n  reg [{width_b - 1}:0] b = 0;\n"
        f"  wire [{width_p - 1}:0] p;\n  mul dut (.a(a), .b(b), .p(p));\n"
        f"  initial begin\n{steps}\n    $finish;\n  end\nendmodule\n"
    )
    cells = ecp5_cell_models(tmp_path / "ecp5_cells.v")
    files = [tmp_path / "tb.v", tmp_path / "mul_netlist.v", MULT18X18D_MODEL, cells]
    got = {int(i): int(p) for i, p in icarus_lines(tmp_path, "tb", files)}
    want = {i: int(x * y) % (1 << width_p) for i, (x, y) in enumerate(pairs)}
    assert got == want


class RegisteredDsp(wiring.Component):
    """The MULT18X18D as the factor stages instantiate it (hw/dsp.py)."""

    a: In(signed(18))
    b: In(signed(18))
    p: Out(signed(36))

    def elaborate(self, platform):
        m = Module()
        m.submodules.dsp = mult18x18d(self.a, self.b, self.p)
        return m


@pytest.mark.synth
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
def test_mult18x18d_model_registers_as_yosys_maps_a_registered_multiply(tmp_path):
    """The cell with its input and output registers (the cores' configuration), through our
    model, against Yosys's own mapping of the same registered multiply in plain Verilog (fabric
    flip-flops around a bypassed MULT18X18D), cycle by cycle on operands changing every cycle:
    equal outputs, each the product of the operands taken at the clock edge before (two register
    stages: operands, then product)."""
    (tmp_path / "dsp.v").write_text(verilog.convert(RegisteredDsp(), name="dsp", emit_src=False))
    assert "MULT18X18D" in (tmp_path / "dsp.v").read_text()
    (tmp_path / "ref.v").write_text(
        "module ref(input clk, input signed [17:0] a, input signed [17:0] b,\n"
        "           output reg signed [35:0] p);\n"
        "  reg signed [17:0] ar, br;\n"
        "  always @(posedge clk) begin ar <= a; br <= b; p <= ar * br; end\nendmodule\n"
    )
    synthesize(
        tmp_path,
        family="ecp5",
        top="ref",
        source="ref.v",
        output=None,
        extra="write_verilog -noattr ref_netlist.v\n",
    )
    netlist = (tmp_path / "ref_netlist.v").read_text()
    # the cell's registers left at their defaults (bypassed), fabric flip-flops around it
    assert "MULT18X18D" in netlist and "REG_OUTPUT_CLK" not in netlist and "TRELLIS_FF" in netlist
    rng = np.random.default_rng(18)
    a = operand_values(18, True, 400, rng)
    b = np.roll(operand_values(18, True, 400, rng), 2)
    n = len(a)
    steps = "\n".join(
        f"    a = {int(x)}; b = {int(y)}; #5 clk = 1; #1 "
        f'$display("%0d %0d %0d", {i}, p_dsp, p_ref); #4 clk = 0;'
        for i, (x, y) in enumerate(zip(a, b, strict=True))
    )
    (tmp_path / "tb.v").write_text(
        "module tb;\n  reg clk = 0, rst = 0;\n  reg signed [17:0] a = 0, b = 0;\n"
        "  wire signed [35:0] p_dsp, p_ref;\n"
        "  dsp dut (.clk(clk), .rst(rst), .a(a), .b(b), .p(p_dsp));\n"
        "  ref yosys (.clk(clk), .a(a), .b(b), .p(p_ref));\n"
        f"  initial begin\n{steps}\n    $finish;\n  end\nendmodule\n"
    )
    cells = ecp5_cell_models(tmp_path / "ecp5_cells.v")
    files = [tmp_path / "tb.v", tmp_path / "dsp.v", tmp_path / "ref_netlist.v"]
    lines = icarus_lines(tmp_path, "tb", [*files, MULT18X18D_MODEL, cells])
    assert len(lines) == n
    for i, p_dsp, p_ref in lines[2:]:
        k = int(i)
        assert int(p_dsp) == int(p_ref) == int(a[k - 1] * b[k - 1]), k
