"""A netlist holding a cell that no simulation model covers is refused before Icarus runs
(Yosys's DP16KD is a blackbox: simulated, its outputs would be X)."""

import numpy as np
import pytest

from compiler.cli import main
from sim.runner import SimulationError, run_sim
from tests.test_cli import tiny_model  # noqa: F401  (fixture)


def test_block_ram_in_a_netlist_is_refused(tiny_model, tmp_path):  # noqa: F811
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "cal.npz", X=rng.standard_normal((20, 8)))
    out = tmp_path / "b"
    args = ["build", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    assert main([*args, "--no-synth"]) == 0
    netlist = tmp_path / "core_netlist.v"
    netlist.write_text((out / "core.v").read_text() + "\nmodule rom; DP16KD ram (); endmodule\n")
    with pytest.raises(SimulationError, match=r"uses DP16KD, which Yosys ships only as a blackbox"):
        run_sim(
            out, np.zeros((1, 8), dtype=np.int64), np.zeros((1, 3), dtype=np.int64), netlist=netlist
        )
