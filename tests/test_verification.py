"""The netlist check's judgement of a board top's replies (compiler.verification.check_board_top),
without a simulator: a stand-in for the simulation answers each request as a correct device
would, or with one fault, and the check must pass the first and name each fault."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from boards.link import protocol
from compiler.golden import run_integer
from compiler.verification import check_board_top, input_vectors, top_check_section
from debut.errors import SimulationMismatch
from sim import runner
from tests.helpers import EXAMPLES, quantize_model

DESIGN_ID = 0x1234ABCD


@pytest.fixture(scope="module")
def graph():
    return quantize_model(EXAMPLES / "digits_debut_small.pt").graph


def device(graph, selftest, fault):
    """A stand-in for :func:`sim.runner.run_top_sim`: the replies of a correct device to each
    request, but for ``fault``."""
    in_fmt, out_fmt = graph.input_format, graph.output_format
    n_in, n_out = graph.in_features, graph.out_features

    def run_top_sim(netlist, *, exchanges, sim_dir, simulator, **pins):
        received, timed_out = [], []
        for k, (request, expect, _) in enumerate(exchanges):
            (frame,) = protocol.decode_frames(request)
            if frame.command == protocol.Command.PING:
                identity = protocol.Identity(
                    n_in, in_fmt, n_out, out_fmt, len(selftest), DESIGN_ID + (fault == "id")
                )
                reply = protocol.encode_frame(frame.command | 0x80, identity.encode())
            elif frame.command == protocol.Command.SELFTEST:
                outputs = run_integer(graph, selftest).output
                checksum = protocol.selftest_checksum(outputs, out_fmt) ^ (fault == "checksum")
                result = protocol.SelftestResult(checksum, 700)
                reply = protocol.encode_frame(frame.command | 0x80, result.encode())
            else:
                x = protocol.unpack_vector(frame.payload, in_fmt, n_in)
                y = run_integer(graph, x[None]).output[0].copy()
                if fault == "element" and k == 3:
                    y[4] = y[4] + 1 if y[4] < out_fmt.max_int else y[4] - 1
                reply = protocol.encode_frame(
                    frame.command | 0x80, protocol.pack_vector(y, out_fmt, n_out)
                )
            if fault == "silent" and k == 2:
                reply = reply[:3]
            assert len(reply) == expect or fault == "silent"
            received.append(reply)
            timed_out.append(len(reply) < expect)
        cycles = [100] * len(exchanges)
        return runner.TopSimResult(
            simulator=simulator,
            received=tuple(received),
            timed_out=tuple(timed_out),
            exchange_cycles=tuple(cycles),
            framing_errors=0,
            cycles=sum(cycles),
            sim_s=1.0,
            wall_s=1.0,
            sim_dir=Path(sim_dir),
        )

    return run_top_sim


def check(graph, monkeypatch, tmp_path, fault, raise_on_mismatch=False):
    selftest = input_vectors(graph, np.empty((0, graph.in_features)), 8, 3)
    monkeypatch.setattr(runner, "run_top_sim", device(graph, selftest, fault))
    interface = SimpleNamespace(
        latency_cycles=100,
        ii_cycles=50,
        input=SimpleNamespace(beats=8),
        output=SimpleNamespace(beats=2),
    )
    return check_board_top(
        graph,
        interface,
        tmp_path / "top_netlist_sim.v",
        pins={"clock": "clk25_0__io", "rx": "uart_0__rx__io", "tx": "uart_0__tx__io"},
        divisor=25,
        design_id=DESIGN_ID,
        selftest=selftest,
        vectors=input_vectors(graph, np.empty((0, graph.in_features)), 4, 4),
        sim_dir=tmp_path,
        progress=lambda line: None,
        raise_on_mismatch=raise_on_mismatch,
    )


def test_a_correct_device_passes(graph, monkeypatch, tmp_path):
    result = check(graph, monkeypatch, tmp_path, None)
    assert result.passed and result.identity_passed and result.selftest_passed
    section = top_check_section(result)
    assert (section.vectors, section.mismatches, section.framing_errors) == (4 + 8, 0, 0)
    assert section.cycles_per_vector == 700 / 8


@pytest.mark.parametrize(
    ("fault", "problem", "mismatches", "framing_errors"),
    [
        ("id", "PING: the device says", 0, 1),
        ("checksum", "SELFTEST: checksum", 8 * 10, 0),
        ("element", "INFER 1, element 4: expected", 1, 0),
        ("silent", "INFER 0: 3 bytes came back, not one reply frame (timed out)", 10, 0),
    ],
)
def test_each_fault_is_found(
    graph, monkeypatch, tmp_path, fault, problem, mismatches, framing_errors
):
    result = check(graph, monkeypatch, tmp_path, fault)
    assert not result.passed and result.problems[0].startswith(problem)
    section = top_check_section(result)
    assert (section.mismatches, section.framing_errors) == (mismatches, framing_errors)


def test_a_fault_is_an_error_naming_it(graph, monkeypatch, tmp_path):
    with pytest.raises(
        SimulationMismatch,
        match=r"^the synthesised netlist differs from the golden model: 1 differences, the "
        r"first: SELFTEST: checksum 0x[0-9a-f]{8}, the golden model's 0x[0-9a-f]{8}; logs in ",
    ):
        check(graph, monkeypatch, tmp_path, "checksum", raise_on_mismatch=True)
