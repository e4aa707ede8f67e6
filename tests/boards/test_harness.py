"""The board harness: clock plans, pin constraints from the board platforms, and the whole top
below the pins (UARTs, host link, core) driven bit by bit by a simulated host."""

import numpy as np
import pytest
from amaranth.hdl import Fragment

from boards.harness import BoardTop, clock_plan
from boards.link import protocol
from boards.link.host import HostDriver, SimulatedTop
from boards.registry import get_board
from compiler.golden import quantize_input, run_integer
from compiler.lower import lower
from debut.errors import BoardError
from tests.boards.link.test_host import small_graph


def test_clock_plans():
    ulx3s = get_board("ulx3s")
    plan = clock_plan(ulx3s, 100.0)
    assert plan.f_mhz == 100.0 and plan.pll is not None
    assert plan.pll.f_in_mhz == 25.0
    # 25 MHz needs no PLL; a frequency the dividers cannot make names the nearest they can
    assert clock_plan(ulx3s, 25.0).pll is None
    with pytest.raises(BoardError, match=r"nearest is 387\.5 MHz \(--clock-mhz 387\.5\)"):
        clock_plan(ulx3s, 390.0)
    assert clock_plan(ulx3s, 387.5).f_mhz == 387.5
    assert clock_plan(ulx3s, 91.0).f_mhz == 637.5 / 7  # 0.08% off
    ice = get_board("icebreaker")
    assert clock_plan(ice, 12.0).pll is None
    with pytest.raises(BoardError, match="runs at its 12 MHz oscillator"):
        clock_plan(ice, 48.0)


@pytest.fixture(scope="module")
def design():
    graph, x = small_graph()
    selftest = quantize_input(graph, x[:4])
    return graph, x, selftest


@pytest.mark.parametrize("board_name", ["ulx3s-85f", "ulx3s-12f", "icebreaker"])
def test_board_top_pins(design, board_name):
    graph, _, selftest = design
    board = get_board(board_name)
    network = lower(graph, budget=6).network
    clock = clock_plan(board, board.default_clock_mhz or 100.0)  # the ULX3S: any PLL clock
    top = BoardTop(network, clock=clock, selftest=selftest)
    plan = board.make_platform().prepare(top, name="top")
    il = plan.files["top.il"]
    if board.family == "ecp5":
        lpf = plan.files["top.lpf"]
        # the ULX3S's FTDI UART, oscillator and first LED (amaranth-boards' pin table)
        for pin in ('SITE "M1"', 'SITE "L4"', 'SITE "G2"', 'SITE "B2"'):
            assert pin in lpf
        assert "FREQUENCY PORT" in lpf  # lets nextpnr derive the PLL output's constraint
        assert "EHXPLLL" in il
    else:
        assert "set_io" in plan.files["top.pcf"]
        assert "EHXPLLL" not in il


def test_baud_rate_the_clock_cannot_make():
    graph, x = small_graph()
    network = lower(graph, budget=6).network
    with pytest.raises(
        BoardError, match="--baud 5000000 from the 12 MHz oscillator: baud rate must be at most"
    ):
        BoardTop(
            network,
            clock=clock_plan(get_board("icebreaker"), 12.0),
            selftest=quantize_input(graph, x[:2]),
            baud=5_000_000,
        )
    Fragment.get(network, None)  # used, as far as Amaranth's checks go


@pytest.mark.sim
def test_whole_top_over_uart_bits(design):
    """Real frames as UART bits into the top, through its receiver, the link and the core, and
    back out of its transmitter: exact against the golden model, and recovering from a corrupted
    frame, garbage, an oversized length and a truncated frame."""
    graph, x, selftest = design
    lowered = lower(graph, budget=6)
    top = SimulatedTop(
        lowered.network, selftest=selftest, divisor=4, link_timeout=70, design_id=0xBEEF
    )
    driver = HostDriver(lowered.interface(graph), graph.preprocessing, top)
    identity = driver.ping()
    assert identity.design_id == 0xBEEF and identity.selftest_vectors == len(selftest)

    x_int = quantize_input(graph, x[10:13])
    np.testing.assert_array_equal(driver.infer_integers(x_int), run_integer(graph, x_int).output)

    fmt, n = graph.input_format, graph.in_features
    request = bytearray(protocol.infer_request(x_int[0], fmt, n))
    request[6] ^= 0x40  # one payload bit flipped: the CRC no longer matches
    top.write(bytes(request))
    (reply,) = protocol.decode_frames(top.read(9))
    assert reply.command == protocol.ERROR_REPLY
    assert reply.payload[0] == protocol.ErrorCode.BAD_CRC

    top.write(b"\x00garbage\xa5")
    top.write(protocol.encode_frame(protocol.Command.INFER)[:3] + (0xFFFF).to_bytes(2, "little"))
    (reply,) = protocol.decode_frames(top.read(9))
    assert reply.payload[0] == protocol.ErrorCode.OVERSIZED

    top.write(protocol.infer_request(x_int[1], fmt, n)[:10])  # stops mid-frame
    (reply,) = protocol.decode_frames(top.read(9))
    assert reply.payload[0] == protocol.ErrorCode.TRUNCATED

    # the link is still in sync: inference and self-test are exact
    np.testing.assert_array_equal(driver.infer_integers(x_int), run_integer(graph, x_int).output)
    result = driver.selftest()
    golden = run_integer(graph, selftest).output
    assert result.checksum == protocol.selftest_checksum(golden, graph.output_format)
    assert top.framing_errors == 0
