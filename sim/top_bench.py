"""cocotb testbench: a whole board top at its pins, over its UART.

The bench drives the top's clock pin, sends request bytes on its UART receive pin (8N1, the
design's own bit time) and reads the transmit pin back into bytes; it knows nothing of the frames
it carries. For each exchange of the plan it sends the request's bytes back to back, then waits
until the reply's expected number of bytes arrived or the exchange's time ran out, and records
the bytes received and the clock cycles the exchange took. What the bytes mean is the caller's
business (:func:`compiler.verification.check_board_top`).

Environment:

- ``DEBUT_TOP_PLAN``: a JSON file: ``clock``, ``rx``, ``tx`` (the top's port names),
  ``divisor`` (clock cycles per UART bit), ``start_cycles`` (cycles before the first byte: the
  clock settles and the reset is released), ``exchanges`` (a list of ``send``, the request as
  hex, ``expect``, the reply's length in bytes, and ``timeout_cycles``).
- ``DEBUT_TOP_RESULTS``: where the results JSON is written: per exchange ``received`` (hex),
  ``timed_out`` and ``cycles``; ``framing_errors`` (bytes whose stop bit was low), ``cycles``
  (the whole run) and ``sim_wall_s``.

The bench wakes once per UART bit, not once per clock cycle, and the clock runs in the
simulator (cocotb's GPI clock, not its Python one), so a run costs about what the design's own
evaluation costs. The request bits are written between clock edges' worth of time, not on them:
the receive pin is asynchronous to the design, which synchronises it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import Event, FallingEdge, First, Timer

__all__ = ["ENV_PLAN", "ENV_RESULTS", "UartReceiver"]

ENV_PLAN = "DEBUT_TOP_PLAN"
ENV_RESULTS = "DEBUT_TOP_RESULTS"
CLOCK_NS = 10


def _cycle() -> int:
    return int(get_sim_time(unit="ns")) // CLOCK_NS


async def send_byte(line, byte: int, bit_ns: int) -> None:
    """One 8N1 character on ``line``: start bit, data bits LSB first, stop bit."""
    for value in [0, *((byte >> k) & 1 for k in range(8)), 1]:
        line.value = value
        await Timer(bit_ns, unit="ns")


class UartReceiver:
    """Reads 8N1 characters from ``line``, sampling each bit in its middle; :meth:`expect`
    starts a reply of ``count`` bytes and :attr:`done` fires when it is complete."""

    def __init__(self, line, bit_ns: int) -> None:
        self.line, self.bit_ns = line, bit_ns
        self.received = bytearray()
        self.framing_errors = 0
        self.count = 0
        self.done = Event()

    def expect(self, count: int) -> None:
        self.received.clear()
        self.count = count
        self.done.clear()

    async def run(self) -> None:
        half = self.bit_ns // 2
        while True:
            await FallingEdge(self.line)
            await Timer(half, unit="ns")
            if int(self.line.value):
                continue  # a glitch, not a start bit
            byte = 0
            for k in range(8):
                await Timer(self.bit_ns, unit="ns")
                byte |= int(self.line.value) << k
            await Timer(self.bit_ns, unit="ns")
            if not int(self.line.value):
                self.framing_errors += 1
                continue
            self.received.append(byte)
            if len(self.received) >= self.count:
                self.done.set()


@cocotb.test()
async def top_answers_over_its_uart(dut) -> None:
    """Every exchange of the plan: the request sent, the reply's bytes collected."""
    plan = json.loads(Path(os.environ[ENV_PLAN]).read_text())
    results_path = Path(os.environ[ENV_RESULTS])
    clock, rx, tx = (getattr(dut, plan[name]) for name in ("clock", "rx", "tx"))
    bit_ns = plan["divisor"] * CLOCK_NS
    rx.value = 1
    Clock(clock, CLOCK_NS, unit="ns", impl="gpi").start()
    await Timer(plan["start_cycles"] * CLOCK_NS, unit="ns")
    receiver = UartReceiver(tx, bit_ns)
    cocotb.start_soon(receiver.run())
    start = time.perf_counter()
    exchanges = []
    for exchange in plan["exchanges"]:
        begin = _cycle()
        receiver.expect(exchange["expect"])
        for byte in bytes.fromhex(exchange["send"]):
            await send_byte(rx, byte, bit_ns)
        left = exchange["timeout_cycles"] - (_cycle() - begin)
        if not receiver.done.is_set():
            await First(receiver.done.wait(), Timer(max(left, 1) * CLOCK_NS, unit="ns"))
        exchanges.append(
            {
                "received": bytes(receiver.received).hex(),
                "timed_out": not receiver.done.is_set(),
                "cycles": _cycle() - begin,
            }
        )
        dut._log.info(
            "exchange %d: %d of %d bytes back in %d cycles (%.1f s)",
            len(exchanges) - 1,
            len(receiver.received),
            exchange["expect"],
            _cycle() - begin,
            time.perf_counter() - start,
        )
    results = {
        "exchanges": exchanges,
        "framing_errors": receiver.framing_errors,
        "cycles": _cycle(),
        "sim_wall_s": time.perf_counter() - start,
    }
    results_path.write_text(json.dumps(results, indent=1))
