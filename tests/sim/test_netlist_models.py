"""Our simulation models of ECP5 cells that Yosys ships only as blackboxes, and the refusal of a
netlist holding a cell that no model covers (simulated, its outputs would be X)."""

import shutil
import subprocess

import numpy as np
import pytest
from amaranth import Module, unsigned
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from boards.yosys import synthesize
from compiler.artifacts import read_manifest
from compiler.cli import main
from debut.errors import SimulationError
from sim.runner import DP16KD_MODEL, ecp5_cell_models, run_sim
from tests.test_cli import tiny_model  # noqa: F401  (fixture)


def test_unmodelled_cell_in_a_netlist_is_refused(tiny_model, tmp_path):  # noqa: F811
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "cal.npz", X=rng.standard_normal((20, 8)))
    out = tmp_path / "b"
    args = ["build", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    assert main([*args, "--no-synth"]) == 0
    netlist = tmp_path / "core_netlist.v"
    netlist.write_text((out / "core.v").read_text() + "\nmodule rom; PDPW16KD ram (); endmodule\n")
    with pytest.raises(SimulationError, match=r"uses PDPW16KD, which Yosys ships only as a"):
        run_sim(
            out / "core.v",
            read_manifest(out).interface,
            np.zeros((1, 8), dtype=np.int64),
            np.zeros((1, 3), dtype=np.int64),
            sim_dir=tmp_path / "sim",
            netlist=netlist,
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


@pytest.mark.synth
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
@pytest.mark.parametrize(
    ("depth", "width"),
    [
        (300, 45),  # 36-bit words (two blocks: 36 + 9 bits)
        (1000, 12),  # 18-bit words
        (2000, 7),  # 9-bit words
    ],
)
def test_dp16kd_model_reads_back_the_rom_yosys_mapped(tmp_path, depth, width):
    """A ROM through synth_ecp5 into DP16KD blocks, its netlist simulated in Icarus with our
    model: every word reads back as the ROM's contents, one cycle after its address."""
    contents = np.random.default_rng(depth).integers(0, 1 << width, depth)
    rom = Rom(contents, width)
    (tmp_path / "rom.v").write_text(verilog.convert(rom, name="rom"))
    synthesize(
        tmp_path,
        family="ecp5",
        top="rom",
        source="rom.v",
        output="rom.json",
        extra="write_verilog -noattr rom_netlist.v\n",
    )
    netlist = (tmp_path / "rom_netlist.v").read_text()
    assert "DP16KD" in netlist and "TRELLIS_COMB" not in netlist
    abits = (depth - 1).bit_length()
    order = np.random.default_rng(1).permutation(depth)
    reads = "\n".join(
        f'    addr = {a}; #1 clk = 1; #1 clk = 0; $display("%0d %0d", {a}, data);' for a in order
    )
    (tmp_path / "tb.v").write_text(
        f"module tb;\n  reg clk = 0, rst = 0;\n  reg [{abits - 1}:0] addr = 0;\n"
        f"  wire [{width - 1}:0] data;\n"
        "  rom dut (.clk(clk), .rst(rst), .addr(addr), .data(data));\n"
        f"  initial begin\n{reads}\n    $finish;\n  end\nendmodule\n"
    )
    cells = ecp5_cell_models(tmp_path / "ecp5_cells.v")
    files = [tmp_path / "tb.v", tmp_path / "rom_netlist.v", DP16KD_MODEL, cells]
    subprocess.run(
        ["iverilog", "-g2005", "-s", "tb", "-o", str(tmp_path / "tb.vvp"), *map(str, files)],
        check=True,
        capture_output=True,
    )
    run = subprocess.run(
        ["vvp", "-n", str(tmp_path / "tb.vvp")], check=True, capture_output=True, text=True
    )
    got = {}
    for line in run.stdout.splitlines():
        fields = line.split()
        if len(fields) == 2 and all(f.isdigit() for f in fields):
            got[int(fields[0])] = int(fields[1])
    assert len(got) == depth
    assert [got[a] for a in range(depth)] == contents.tolist()
