"""Several consecutive DeBut factors as one pipeline stage on one multiplier.

Where a multiplier budget is smaller than the number of factors (a tiny board, or a long chain
such as a fixed butterfly), a stage per factor cannot be built: each needs a multiplier of its
own. A shared stage runs a whole run of factors in turn on a single multiplier, from a schedule
in a ROM, and keeps the vectors between them in a small memory (LUT RAM or block RAM as
synthesis chooses), so the flip-flops of the stage boundaries inside it go too.

Schedule: the products of every factor in turn, each in the factor's flat ``(nb, t, r, s)``
parameter order (an output's ``s`` products are consecutive), with ``HAZARD_BUBBLES`` idle steps
after each factor but the last, so that the next factor's first read comes after the last
write. One ROM word per step holds: the weight, the operand's address (in the input vector for
the first factor, else in the scratch memory), whether the step starts or ends an output, the
output's address, which requantiser to use and whether the output is the stage's own. A second
ROM holds each output's start value (its bias plus the rounding constant), read in turn.

Scratch memory: factor ``k`` (not the last) writes its outputs into region ``k mod 2``, which
factor ``k + 1`` reads; elements are kept as signed numbers wide enough for every
intermediate format. The first factor reads the input vector register, the last writes the
output vector register.

Pipeline (cycle 0 = input transfer, no stalls): steps issue in cycles ``1 .. T`` (``T`` steps);
a step's ROM word is read in its issue cycle and registered, its operand read and registered,
then the multiplier's input and product registers, the accumulator and, when the step ends an
output, the requantised value is written (``READ`` .. ``WRITE`` below). So ``latency = T +
WRITE + 1``. The stage holds one vector at a time
(from its input transfer to its output transfer): ``interval = latency + 1`` with no stalls.
``i.ready`` and ``o.valid`` are registers.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from amaranth import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from debut.fixed import Fixed
from hw.dsp import mult18x18d
from hw.factor_spec import FactorSpec, requantize, value_shape
from hw.memory_blocks import BLOCK_SHAPES, EBR_MIN_DEPTH, FAMILIES, blocks

__all__ = ["HAZARD_BUBBLES", "INTERVAL_OVERHEAD", "SharedStage"]

# The pipeline, in cycles after a step's issue (its ROM word is read in the issue cycle): the
# word is registered (2), addresses the input vector and the scratch memory (READ), the operand
# is registered (OPERAND), goes through the multiplier's input register to its product register
# (PRODUCT), where it is accumulated; a finished output is requantised and written in WRITE.
READ = 2
OPERAND = READ + 2
PRODUCT = OPERAND + 2
WRITE = PRODUCT + 1
# idle steps between consecutive factors: the next factor's first read address (cycle READ of
# its step) must come after the last write (cycle WRITE of the previous factor's last step)
HAZARD_BUBBLES = WRITE - READ
# cycles per vector past the steps: the pipeline after the last step (WRITE + 1, when the
# output is valid) and the output's transfer (1); see SharedStage.interval
INTERVAL_OVERHEAD = WRITE + 2


def _bits(n: int) -> int:
    """Bits of an index into ``n`` things (at least 1)."""
    return max(1, (n - 1).bit_length())


def _style(memory: tuple[int, int, str]) -> dict[str, str]:
    """Yosys's attribute for where a memory goes (``ram_style`` serves ROMs too)."""
    return {"ram_style": {"block": "block", "lutram": "distributed", "logic": "logic"}[memory[2]]}


def _signed_width(fmt: Fixed) -> int:
    """Bits of a signed number that holds every value of ``fmt``."""
    return fmt.width + (0 if fmt.signed else 1)


class SharedStage(wiring.Component):
    """The factors of ``specs`` in turn (``specs[k + 1]`` takes ``specs[k]``'s output) on one
    multiplier; see the module's documentation.

    Ports: ``i`` takes the first factor's whole input vector per transfer, ``o`` gives the last
    factor's whole output vector per transfer (as :class:`hw.factor_stage.FactorStage`).
    """

    def __init__(
        self, specs: Sequence[FactorSpec], *, dsp: str | None = None, family: str = "ecp5"
    ) -> None:
        from hw.factor_stage import DSP_PRIMITIVES

        specs = list(specs)
        if not specs or not all(isinstance(s, FactorSpec) for s in specs):
            raise ValueError(f"specs must be one or more FactorSpecs, not {specs!r}")
        for a, b in itertools.pairwise(specs):
            if a.factor.p != b.factor.q or a.out_format != b.in_format:
                raise ValueError(
                    f"a factor outputs {a.factor.p} x {a.out_format} but the next takes "
                    f"{b.factor.q} x {b.in_format}"
                )
        if dsp not in DSP_PRIMITIVES:
            raise ValueError(f"dsp must be one of {DSP_PRIMITIVES}, not {dsp!r}")
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
        self.specs = specs
        self._dsp = dsp
        self._family = family
        # the operand: the input format, or the scratch memory's signed elements
        self._scratch_width = max((_signed_width(s.out_format) for s in specs[:-1]), default=0)
        self._operand_width = max(_signed_width(specs[0].in_format), self._scratch_width)
        self._weight_width = max(s.weight_format.width for s in specs)
        if dsp is not None and max(self._operand_width, self._weight_width) > 18:
            raise ValueError(f"dsp {dsp!r} takes signed operands of at most 18 bits")
        self._acc_width = max(s.acc_width for s in specs)
        self._region = max((s.factor.p for s in specs[:-1]), default=0)
        # requantisers: one per distinct (shift, relu, format) of the intermediate factors
        self._groups = list(dict.fromkeys((s.shift, s.relu, s.out_format) for s in specs[:-1]))
        super().__init__(
            {
                "i": In(
                    stream.Signature(
                        data.ArrayLayout(value_shape(specs[0].in_format), specs[0].factor.q)
                    )
                ),
                "o": Out(
                    stream.Signature(
                        data.ArrayLayout(value_shape(specs[-1].out_format), specs[-1].factor.p)
                    )
                ),
            }
        )

    # ---- what the rest of the compiler asks of a stage --------------------------------------
    @property
    def in_length(self) -> int:
        return self.specs[0].factor.q

    @property
    def out_length(self) -> int:
        return self.specs[-1].factor.p

    @property
    def in_format(self) -> Fixed:
        return self.specs[0].in_format

    @property
    def out_format(self) -> Fixed:
        return self.specs[-1].out_format

    @property
    def dsp(self) -> str | None:
        return self._dsp

    @property
    def multipliers(self) -> int:
        return 1

    @property
    def steps(self) -> int:
        """Steps of the schedule (``T``): every product and the bubbles between factors."""
        return sum(s.products for s in self.specs) + HAZARD_BUBBLES * (len(self.specs) - 1)

    @property
    def ii(self) -> int:
        return self.steps

    @property
    def latency(self) -> int:
        return self.steps + WRITE + 1

    @property
    def interval(self) -> int:
        return self.steps + INTERVAL_OVERHEAD

    @property
    def queue_depth(self) -> int:
        return 1

    def _fields(self) -> list[tuple[str, int]]:
        depth = 2 * self._region if len(self.specs) > 2 else self._region
        return [
            ("weight", self._weight_width),
            ("src", _bits(max(self.specs[0].factor.q, depth))),
            ("first", 1),
            ("last", 1),
            ("end", 1),
            ("from_in", 1),
            ("to_out", 1),
            ("dst", _bits(max(self.specs[-1].factor.p, depth))),
            ("group", _bits(len(self._groups))),
        ]

    def inits(self) -> list[int]:
        """The accumulators' start values, one per output in schedule order (the init ROM)."""
        return [spec.init(row) for spec in self.specs for row in spec.rows[:: spec.factor.s]]

    def schedule(self) -> list[dict[str, int]]:
        """The ROM's words as fields (bubbles have every field 0)."""
        words = []
        last_factor = len(self.specs) - 1
        for k, spec in enumerate(self.specs):
            f = spec.factor
            key = (spec.shift, spec.relu, spec.out_format)
            group = self._groups.index(key) if k < last_factor else 0
            src_base = ((k - 1) % 2) * self._region if k else 0
            dst_base = (k % 2) * self._region if k < last_factor else 0
            weights = spec.weights.tolist()
            for n in range(spec.products):
                row, col = spec.rows[n], spec.cols[n]
                first = n % f.s == 0
                last = n % f.s == f.s - 1
                words.append(
                    {
                        "weight": weights[n],
                        "src": src_base + col,
                        "first": int(first),
                        "last": int(last),
                        "end": int(k == last_factor and n == spec.products - 1),
                        "from_in": int(k == 0),
                        "to_out": int(k == last_factor),
                        "dst": dst_base + row,
                        "group": group,
                    }
                )
            if k < last_factor:
                words += [{name: 0 for name, _ in self._fields()} for _ in range(HAZARD_BUBBLES)]
        return words

    def memories(self) -> dict[str, tuple[int, int, str]]:
        """The stage's memories: name -> (words, bits per word, where). ``where`` is chosen
        here and given to synthesis as an attribute, so the estimate knows it: ``block`` RAM
        from ``EBR_MIN_DEPTH`` words on, else ``logic`` for a ROM and ``lutram`` for the
        scratch memory (``block`` on the iCE40, which has no LUT RAM)."""
        rom_where = "block" if self.steps >= EBR_MIN_DEPTH else "logic"
        outputs = len(self.inits())
        found = {
            "rom": (self.steps, sum(width for _, width in self._fields()), rom_where),
            "init_rom": (
                outputs,
                self._acc_width,
                "block" if outputs >= EBR_MIN_DEPTH else "logic",
            ),
        }
        depth = 2 * self._region if len(self.specs) > 2 else self._region
        if depth:
            small = depth < EBR_MIN_DEPTH and self._family == "ecp5"
            found["scratch"] = (depth, self._scratch_width, "lutram" if small else "block")
        return found

    def resources(self, family: str | None = None) -> dict[str, int]:
        """Analytical cost (as :meth:`FactorStage.resources`; block RAMs of the stage's
        family): the input and output vector registers, the pipeline, the operand multiplexer,
        the requantisers and the memories where :meth:`memories` puts them."""
        if family is not None and family != self._family:
            raise ValueError(f"this stage is made for {self._family}, not {family}")
        first, last = self.specs[0], self.specs[-1]
        w_in, w_out = first.in_format.width, last.out_format.width
        q0, p_last = first.factor.q, last.factor.p
        word = sum(width for _, width in self._fields())
        outputs = len(self.inits())
        ff = (
            q0 * w_in  # input vector
            + p_last * w_out  # output vector
            + (WRITE - 1) * word  # the word's pipeline registers
            + self._operand_width
            + self._acc_width * 2  # accumulator and start value
            + _bits(self.steps)
            + _bits(outputs + 1)
            + 10  # control and valid bits
        )
        ff += self._operand_width + self._weight_width  # the operand registers
        if self._dsp is None:  # the multiplier's input and product registers in the fabric
            ff += 2 * (self._operand_width + self._weight_width)
        lut = (
            q0 * w_in * 0.67  # the operand multiplexer over the input vector (LUT4s and muxes)
            + p_last * w_out * 0.34  # the output rows' write enables
            + (len(self._groups) + 1) * (self._acc_width + w_out)  # requantisers
            + self._acc_width * 2.24  # accumulator
            + (_bits(self.steps) + _bits(outputs + 1)) * 2  # counters
        )
        ebr = 0
        for depth, width, where in self.memories().values():
            if where == "block":
                ebr += blocks(depth, width, self._family)
                # words from several blocks in depth: a multiplexer of their outputs
                deep = -(-depth // max(d for d, w in BLOCK_SHAPES[self._family] if w >= 16))
                lut += (deep - 1) * width
            elif where == "lutram":  # 16 words of 4 bits per DPR16X4 (six LUT4s' worth)
                lut += 6 * -(-depth // 16) * -(-width // 4) + width * (depth // 16)
            else:
                lut += width * -(-depth // 16) * 1.56
        return {"dsp": 1, "ff": round(ff), "lut": round(lut), "ebr": ebr}

    def elaborate(self, platform) -> Module:
        m = Module()
        specs = self.specs
        fields = self._fields()
        layout = data.StructLayout({name: unsigned(width) for name, width in fields})
        words = []
        for word in self.schedule():
            value, offset = 0, 0
            for name, width in fields:
                value |= (word[name] & ((1 << width) - 1)) << offset
                offset += width
            words.append(value)
        steps = len(words)

        # ---- control: one vector at a time ------------------------------------------------
        occupied = Signal()  # from the input transfer to the output transfer
        accept = self.i.valid & self.i.ready
        send = self.o.valid & self.o.ready
        occupied_next = Mux(accept, 1, Mux(send, 0, occupied))
        ready = Signal(init=0)  # a register: 0 in the cycle after reset
        m.d.sync += [occupied.eq(occupied_next), ready.eq(~occupied_next)]
        m.d.comb += self.i.ready.eq(ready)

        full = Signal()  # steps are being issued; step is the one issued this cycle
        step = Signal(range(max(2, steps)))
        at_end = step == steps - 1
        m.d.sync += [
            full.eq(accept | (full & ~at_end)),
            step.eq(Mux(full & ~at_end, step + 1, 0)),
        ]

        # ---- the input vector ----------------------------------------------------------------
        in_shape = value_shape(specs[0].in_format)
        x_buf = Signal(data.ArrayLayout(in_shape, specs[0].factor.q), reset_less=True)
        with m.If(accept):
            m.d.sync += x_buf.eq(self.i.payload)

        # ---- the schedule ROM, read in the issue cycle; the word is registered in the fabric
        # (no path starts at a block RAM's slow output) and follows its step down the pipeline:
        # w[n] is the word of the step issued n cycles ago ------------------------------------
        where = self.memories()
        m.submodules.rom = rom = Memory(
            shape=unsigned(layout.size), depth=steps, init=words, attrs=_style(where["rom"])
        )
        rom_rd = rom.read_port()
        m.d.comb += rom_rd.addr.eq(step)
        valid = [full] + [Signal(name=f"valid{n}") for n in range(1, WRITE + 1)]
        w = [None, data.View(layout, rom_rd.data)]
        for n in range(1, WRITE + 1):
            m.d.sync += valid[n].eq(valid[n - 1])
            if n >= 2:
                w.append(Signal(layout, name=f"w{n}", reset_less=True))
                m.d.sync += w[n].eq(w[n - 1])

        # ---- the operand: read from the input vector or the scratch memory in cycle READ,
        # registered with its weight in cycle OPERAND -----------------------------------------
        scratch_shape = signed(max(1, self._scratch_width))
        depth = 2 * self._region if len(specs) > 2 else self._region
        operand = signed(self._operand_width)
        x_sel = Signal(in_shape, name="x_sel", reset_less=True)
        m.d.sync += x_sel.eq(Array(x_buf[n] for n in range(specs[0].factor.q))[w[READ].src])
        if depth:
            m.submodules.scratch = scratch = Memory(
                shape=scratch_shape, depth=depth, init=[], attrs=_style(where["scratch"])
            )
            scratch_rd = scratch.read_port()
            scratch_wr = scratch.write_port()
            m.d.comb += scratch_rd.addr.eq(w[READ].src)
        a_op = Signal(operand, name="a_op", reset_less=True)
        b_op = Signal(signed(self._weight_width), name="b_op", reset_less=True)
        fetched = w[READ + 1]
        if depth:
            m.d.sync += a_op.eq(Mux(fetched.from_in, x_sel, scratch_rd.data))
        else:
            m.d.sync += a_op.eq(x_sel)
        m.d.sync += b_op.eq(fetched.weight.as_signed())

        # ---- the multiplier's input and product registers: the product in cycle PRODUCT -------
        product = Signal(signed(self._operand_width + self._weight_width), reset_less=True)
        if self._dsp == "MULT18X18D":
            m.submodules.dsp = mult18x18d(a_op, b_op, product)
        else:
            a_reg = Signal(operand, name="a", reset_less=True)
            b_reg = Signal(signed(self._weight_width), name="b", reset_less=True)
            m.d.sync += [a_reg.eq(a_op), b_reg.eq(b_op), product.eq(a_reg * b_reg)]

        # ---- start values: the init ROM, one word per output, addressed as an output's first
        # step passes cycle PRODUCT - 2 and registered for cycle PRODUCT --------------------------
        inits = self.inits()
        acc_shape = signed(self._acc_width)
        m.submodules.init_rom = init_rom = Memory(
            shape=acc_shape, depth=len(inits), init=inits, attrs=_style(where["init_rom"])
        )
        init_rd = init_rom.read_port()
        outputs = Signal(range(len(inits) + 1), name="outputs")  # outputs started so far
        with m.If(accept):
            m.d.sync += outputs.eq(0)
        with m.Elif(valid[PRODUCT - 2] & w[PRODUCT - 2].first):
            m.d.sync += outputs.eq(outputs + 1)
        m.d.comb += init_rd.addr.eq(outputs)
        init = Signal(acc_shape, name="init", reset_less=True)
        m.d.sync += init.eq(init_rd.data)

        # ---- the accumulator, in cycle PRODUCT -----------------------------------------------
        acc = Signal(acc_shape, name="acc", reset_less=True)
        with m.If(valid[PRODUCT]):
            m.d.sync += acc.eq(Mux(w[PRODUCT].first, init, acc) + product)

        # ---- requantise and write, in cycle WRITE ----------------------------------------------
        done = w[WRITE]
        finished = valid[WRITE] & done.last
        if depth:
            ys = [
                requantize(m, acc, shift=shift, relu=relu, fmt=fmt, name=f"y{n}")
                for n, (shift, relu, fmt) in enumerate(self._groups)
            ]
            y_scratch = Signal(scratch_shape, name="y_scratch")
            m.d.comb += y_scratch.eq(Array(ys)[done.group] if len(ys) > 1 else ys[0])
            m.d.comb += [
                scratch_wr.addr.eq(done.dst),
                scratch_wr.data.eq(y_scratch),
                scratch_wr.en.eq(finished & ~done.to_out),
            ]
        last = specs[-1]
        y_out = requantize(
            m, acc, shift=last.shift, relu=last.relu, fmt=last.out_format, name="y_out"
        )
        out_shape = value_shape(last.out_format)
        slot = Signal(data.ArrayLayout(out_shape, last.factor.p), reset_less=True)
        with m.If(finished & done.to_out), m.Switch(done.dst):
            for row in range(last.factor.p):
                with m.Case(row):
                    m.d.sync += slot[row].eq(y_out)
        out_valid = Signal()
        m.d.sync += out_valid.eq(Mux(valid[WRITE] & done.end, 1, Mux(send, 0, out_valid)))
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.eq(slot)]
        return m
