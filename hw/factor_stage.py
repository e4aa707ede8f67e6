"""One DeBut factor as a streaming pipeline stage with a configurable number of multipliers.

Schedule: the ``p*s`` products of a vector are taken in the flat ``(nb, t, r, s)`` parameter order
(each output's ``s`` products are consecutive) and cut into ``M`` contiguous chunks of ``II =
ceil(p*s / M)`` products: multiplier ``m`` computes product ``m*II + j`` in step ``j`` (idle past
``p*s``). A multiplier therefore works through whole runs of one output at a time and owns one
accumulator.

Operands: the ``s`` products of an output read the ``s`` inputs of its group (block, diagonal) in
order, and all ``r`` outputs of a group read the same ones. The input buffer keeps each group's
inputs together and rotates them by one element per step, so multiplier ``m`` always reads position
``(m*II) mod s`` of a group: its only input selection is among the few groups its chunk touches.
Each step's weights and group indices come from one ROM word (EBR or LUTs, as Yosys sees fit), read
two steps ahead into a register. An output split across two chunks is finished by the earlier
chunk's multiplier, starting from the later chunk's sum (a carry register) when that is ready in
time (``II >= s + 2``); otherwise from one partial sum per chunk, added up at the end. The first
run of an output loads its accumulator with ``bias + round`` (the round-half-up constant, which
commutes with ReLU), so each requantiser is only shift, ReLU and saturation. Every decode of the
step is made early into a register: finished runs a cycle ahead, an accumulator's start and
initial value two cycles ahead (a flag per distinct value, then the OR of the flagged values).

Control: the multipliers are grouped into clusters of at most ``CLUSTER_MULTIPLIERS``, and each
cluster has its own sequencer: a copy of the issue state, the valid and step pipelines, the queue
pointers and a ROM with its multipliers' words. Each sequencer loads a share of the input buffer
and selects a share of the output rows. So no control net fans out to a whole wide stage (at 50
multipliers, single nets reached over 1,000 loads spread over the device).

Pipeline (cycle 0 = input transfer, no stalls):

- cycle 0: the vector is registered into the input buffer;
- cycles 1..II: issue steps 0..II-1 (operand registers loaded); the next vector is accepted in the
  last issue cycle, so vectors stream at one per II cycles;
- +1: product registers; with ``dsp="MULT18X18D"`` (the ECP5's DSP, whose own register that is)
  the products are registered again, in flip-flops that placement can put between the DSP and
  its accumulator (DSPs sit in fixed rows, often far from the logic they feed), and every later
  step comes a cycle later; where synthesis infers the multipliers it does not (iCE40's DSP
  inference in Yosys 0.70 took that second register for the DSP's output register and tied the
  product to 0); +2: accumulators; +3: a finished run is requantised straight into the vector's
  slot of the output queue, a small ring of registers (or kept as a partial sum); +4: the
  partial sums are added; +5: their sum is requantised into the slot, and the slot is presented
  one cycle later.

So ``latency = II + 6``, ``II + 7`` with ``dsp="MULT18X18D"``. From ``SINGLE_SLOT_MIN_II`` steps
on the queue has one slot, and the next vector is accepted once the last one has left: one per
``latency + 1`` cycles. Backpressure never stalls the pipeline: a vector is only accepted when the
output queue is sure to have room for it (a credit counter of vectors accepted and not yet sent),
and ``i.ready`` and ``o.valid`` are registers
(computed from the next state).
"""

from __future__ import annotations

import functools
import math
import operator

import numpy as np
from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from debut.chain import Factor
from debut.fixed import Fixed
from hw.dsp import mult18x18d
from hw.factor_spec import FactorSpec, requantize, value_shape
from hw.memory_blocks import EBR_MIN_DEPTH, blocks

__all__ = ["CLUSTER_MULTIPLIERS", "DSP_PRIMITIVES", "SINGLE_SLOT_MIN_II", "FactorStage"]

# dsp=: None lets synthesis infer the multipliers from `*`; "MULT18X18D" instantiates the ECP5's
# DSP with its own input and output registers as the operand and product registers
DSP_PRIMITIVES = (None, "MULT18X18D")

# LUT4s per unit of each structure (see FactorStage.resources): fitted to Yosys 0.70 synthesis
LUT_WEIGHTS = {
    "accumulate": 2.24,  # per accumulator and output bit of each multiplier
    "group_mux": 0.0,  # per input bit and extra group a multiplier selects among (too few
    # groups per multiplier in the fitted stages to tell apart from the rest)
    "outputs": 0.34,  # per output bit (the slots' write enables)
    "queue": 1.05,  # per output bit per extra queue slot
    "rom_in_luts": 1.56,  # per ROM bit per 16 steps, when the ROM is logic
    "rotate": 0.95,  # per bit of the rotating input buffer
    "run_decode": 0.18,  # per step bit decoded for each run's end
    # per step bit of each sequencer past the first (counter, last-step compare, ROM address,
    # ready): counted from the logic, not fitted
    "sequencers": 4.0,
    "split_sum": 1.99,  # per accumulator and output bit of an output summed from partial sums
}
SINGLE_SLOT_MIN_II = 128  # from this II on, the output queue holds one vector (<= 5.5% slower)
# multipliers per sequencer: each cluster of up to this many multipliers has its own copy of the
# issue control, step ROM and pipeline flags, so no control net fans out to the whole stage
CLUSTER_MULTIPLIERS = 8


class FactorStage(wiring.Component):
    """``y = sat(act(B x + bias) >> shift)`` for one DeBut factor ``B``, bit-exact with
    :func:`compiler.golden.apply_factor` followed by the bias, the activation and
    :func:`debut.fixed.requantize`.

    Ports
    -----
    i : ``In(stream.Signature(ArrayLayout(in_format, q)))``
        One whole input vector per transfer.
    o : ``Out(stream.Signature(ArrayLayout(out_format, p)))``
        One whole output vector per transfer.

    Timing: accepts one vector every :attr:`interval` cycles when the output is not stalled; the
    output becomes valid :attr:`latency` cycles after the input transfer.
    """

    def __init__(
        self,
        factor: Factor,
        weights: np.ndarray,
        *,
        in_format: Fixed,
        weight_format: Fixed,
        out_format: Fixed,
        shift: int,
        acc_width: int,
        multipliers: int,
        bias: np.ndarray | None = None,
        relu: bool = False,
        dsp: str | None = None,
    ) -> None:
        spec = FactorSpec(
            factor,
            weights,
            in_format=in_format,
            weight_format=weight_format,
            out_format=out_format,
            shift=shift,
            acc_width=acc_width,
            bias=bias,
            relu=relu,
        )
        products = factor.p * factor.s
        if (
            not isinstance(multipliers, int)
            or isinstance(multipliers, bool)
            or not 1 <= multipliers <= products
        ):
            raise ValueError(f"multipliers must be in 1..{products}, not {multipliers!r}")
        if dsp not in DSP_PRIMITIVES:
            raise ValueError(f"dsp must be one of {DSP_PRIMITIVES}, not {dsp!r}")
        if dsp is not None and max(in_format.width, weight_format.width) > 17:
            raise ValueError(f"dsp {dsp!r} takes operands of at most 17 bits")

        self.spec = spec
        self._factor = factor
        self._weights = spec.weights.tolist()
        self._bias = spec.bias.tolist()
        self._in_format = in_format
        self._out_format = out_format
        self._weight_format = weight_format
        self._shift = shift
        self._relu = relu
        self._multipliers = multipliers
        self._dsp = dsp
        self._staged = dsp == "MULT18X18D"  # the products registered again (see above)
        self._round = spec.round
        self._rows = list(spec.rows)
        self._cols = list(spec.cols)
        self._acc_width = acc_width

        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(value_shape(in_format), factor.q))),
                "o": Out(stream.Signature(data.ArrayLayout(value_shape(out_format), factor.p))),
            }
        )

    @classmethod
    def from_spec(
        cls, spec: FactorSpec, *, multipliers: int, dsp: str | None = None
    ) -> FactorStage:
        """The stage for ``spec`` with ``multipliers`` multipliers."""
        return cls(
            spec.factor,
            spec.weights,
            in_format=spec.in_format,
            weight_format=spec.weight_format,
            out_format=spec.out_format,
            shift=spec.shift,
            acc_width=spec.acc_width,
            multipliers=multipliers,
            bias=spec.bias,
            relu=spec.relu,
            dsp=dsp,
        )

    @property
    def factor(self) -> Factor:
        return self._factor

    @property
    def in_length(self) -> int:
        """Elements of an input vector."""
        return self._factor.q

    @property
    def out_length(self) -> int:
        """Elements of an output vector."""
        return self._factor.p

    @property
    def in_format(self) -> Fixed:
        return self._in_format

    @property
    def out_format(self) -> Fixed:
        return self._out_format

    @property
    def dsp(self) -> str | None:
        """The DSP cell instantiated for each multiplier, or None (inferred by synthesis)."""
        return self._dsp

    @property
    def multipliers(self) -> int:
        """Multipliers instantiated (M)."""
        return self._multipliers

    @property
    def ii(self) -> int:
        """Cycles between accepted vectors when the output is not stalled: ``ceil(p*s / M)``."""
        return math.ceil(self._factor.p * self._factor.s / self._multipliers)

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output vector being valid (no stalls)."""
        return self.ii + 6 + self._staged

    @property
    def queue_depth(self) -> int:
        """Output vectors the output queue holds: enough for one vector per II when not stalled,
        except from ``SINGLE_SLOT_MIN_II`` steps on, where one slot (a whole vector of
        registers less) costs at most a few percent of throughput (see :attr:`interval`)."""
        if self.ii >= SINGLE_SLOT_MIN_II:
            return 1
        return self.latency // self.ii + 1

    @property
    def interval(self) -> int:
        """Cycles between accepted vectors when the output is not stalled: :attr:`ii`, or with a
        one-slot queue ``latency + 1`` (the next vector waits until the last one has left)."""
        return self.latency + 1 if self.queue_depth == 1 else self.ii

    @property
    def clusters(self) -> int:
        """Sequencers: clusters of at most ``CLUSTER_MULTIPLIERS`` multipliers, each with its
        own copy of the issue control and its own step ROM."""
        return -(-self._multipliers // CLUSTER_MULTIPLIERS)

    def _cluster_of(self) -> list[int]:
        """Per multiplier, its cluster: contiguous runs of multipliers, near-equal in size."""
        return [mu * self.clusters // self._multipliers for mu in range(self._multipliers)]

    def runs(self) -> list[list[tuple[int, int, int]]]:
        """Per multiplier, its runs ``(output, first step, last step)`` in step order."""
        ii, products = self.ii, self._factor.p * self._factor.s
        runs = []
        for mu in range(self._multipliers):
            mine: list[tuple[int, int, int]] = []
            for j in range(ii):
                k = mu * ii + j
                if k >= products:
                    break
                row = self._rows[k]
                if mine and mine[-1][0] == row:
                    mine[-1] = (row, mine[-1][1], j)
                else:
                    mine.append((row, j, j))
            runs.append(mine)
        return runs

    def _operand_plans(self) -> list[tuple[list[int], int, list[tuple[int, int]], int]]:
        """Per multiplier: the groups its chunk touches, its tap position in every group, per
        step its weight and the index of its group (0 past the last product), and the bits
        of that index (0 when it touches one group)."""
        f, ii = self._factor, self.ii
        products = f.p * f.s
        plans = []
        for mu in range(self._multipliers):
            ks = [mu * ii + j for j in range(ii) if mu * ii + j < products]
            groups = sorted({k // (f.r * f.s) for k in ks}) or [0]  # [0]: an idle multiplier
            index = {g: n for n, g in enumerate(groups)}
            steps_of = [(self._weights[k], index[k // (f.r * f.s)]) for k in ks]
            steps_of += [(0, 0)] * (ii - len(steps_of))
            plans.append((groups, (mu * ii) % f.s, steps_of, (len(groups) - 1).bit_length()))
        return plans

    def lut_features(self) -> dict[str, int]:
        """The sizes of the structures the LUT estimate weighs (keys of ``LUT_WEIGHTS``)."""
        ii, mults, f = self.ii, self._multipliers, self._factor
        w_in, w_w = self._in_format.width, self._weight_format.width
        w_out, w_acc = self._out_format.width, self._acc_width
        split = sum(1 for mine in self._chunks().values() if len(mine) > 1)
        plans = self._operand_plans()
        rom_width = sum(w_w + idx_bits for *_, idx_bits in plans)
        return {
            "group_mux": sum(w_in * (len(groups) - 1) for groups, *_ in plans),
            "rotate": f.q * w_in if ii > 1 else 0,
            "rom_in_luts": rom_width * -(-ii // 16) if 1 < ii < EBR_MIN_DEPTH else 0,
            "accumulate": mults * (w_acc + w_out),
            "run_decode": sum(len(mine) for mine in self.runs()) * (ii - 1).bit_length(),
            "split_sum": 0 if self._carried() else split * (w_acc + w_out),
            "outputs": f.p * w_out,
            "queue": f.p * w_out * (self.queue_depth - 1),
            "sequencers": (self.clusters - 1) * (ii - 1).bit_length(),
        }

    def _chunks(self) -> dict[int, list[tuple[int, int, int]]]:
        """Per output, its runs as ``(multiplier, first step, last step)`` in multiplier order."""
        chunks: dict[int, list[tuple[int, int, int]]] = {}
        for mu, mine in enumerate(self.runs()):
            for row, j0, j1 in mine:
                chunks.setdefault(row, []).append((mu, j0, j1))
        return chunks

    def _carried(self) -> bool:
        """Whether outputs split across two chunks are finished through a carry register (the
        tail's sum is ready before the head starts; see elaborate)."""
        return self.ii >= self._factor.s + 2

    def resources(self, family: str = "ecp5") -> dict[str, int]:
        """Analytical cost on an ECP5: ``dsp`` (MULT18X18D), ``ff``, ``lut`` (LUT4s, a carry
        cell counting as two) and ``ebr`` (block RAMs of ``family`` for the step ROM).

        Registers are counted one by one (with ``dsp``, the operand and product registers are the
        DSP cell's own, not flip-flops). LUTs are a weighted sum of the structures this stage
        builds (:meth:`lut_features`), with weights (``LUT_WEIGHTS``) fitted to Yosys 0.70
        ``synth_ecp5`` of the 24 stages of the shipped digits DeBut and dense models at 156, 28
        and 8 DSPs (``bench/stage_resources.py``), where each estimate came within 0.68 to 1.16
        of the synthesised count. The ROM goes to block RAM from ``EBR_MIN_DEPTH`` steps
        on (as Yosys chose there), else into LUTs.
        """
        ii, mults, f = self.ii, self._multipliers, self._factor
        w_in, w_w = self._in_format.width, self._weight_format.width
        w_out, w_acc = self._out_format.width, self._acc_width
        product = (Signal(value_shape(self._in_format)) * Signal(signed(w_w))).shape().width
        split = [len(mine) for mine in self._chunks().values() if len(mine) > 1]
        plans = self._operand_plans()
        features = self.lut_features()
        lut = round(sum(LUT_WEIGHTS[k] * v for k, v in features.items()))
        ebr = 0
        if ii >= EBR_MIN_DEPTH:  # one ROM per sequencer
            for c in range(self.clusters):
                width = sum(
                    w_w + plans[mu][3] for mu, cm in enumerate(self._cluster_of()) if cm == c
                )
                ebr += blocks(ii, width, family)
        step_bits = (ii - 1).bit_length()
        depth_bits = self.queue_depth.bit_length()
        ff = (
            f.q * w_in  # input buffer
            + mults * w_acc
            # operand and product registers, unless they are the DSP cell's own
            + (0 if self._dsp else mults * (w_in + (w_w if ii > 1 else 0) + product))
            + self._staged * mults * product  # the products again, before the accumulator
            # split outputs: a carry register each, or partial sums and their total
            + (len(split) if self._carried() else sum(split) + len(split)) * w_acc
            + self.queue_depth * f.p * w_out  # output queue slots
            # start and init registers, their decoded flags, finished-run flags
            + (mults * (2 + w_acc) + 2 * sum(len(m) for m in self.runs()) if ii > 1 else 0)
            + (6 + self._staged) * step_bits  # step, its pipeline copies and the ROM address
            + (sum(w_w + idx_bits for *_, idx_bits in plans) if ii > 1 else 0)  # ROM words
            + 9
            + 5 * depth_bits  # control, queue pointers and the decoded step flags
            # every further sequencer: issue state, valid and step pipelines, queue pointers
            + (self.clusters - 1)
            * (
                (5 + self._staged) * step_bits
                + 6
                + self._staged
                + 2 * (self.queue_depth - 1).bit_length()
            )
        )
        return {"dsp": mults, "ff": ff, "lut": lut, "ebr": ebr}

    def _requantize(self, m: Module, value, name: str):
        return requantize(
            m, value, shift=self._shift, relu=self._relu, fmt=self._out_format, name=name
        )

    def elaborate(self, platform):
        m = Module()
        f = self._factor
        ii, mults = self.ii, self._multipliers
        in_shape = value_shape(self._in_format)
        w_shape = signed(self._weight_format.width)
        acc_shape = signed(self._acc_width)
        out_shape = value_shape(self._out_format)
        depth = self.queue_depth
        clusters = self.clusters
        cluster_of = self._cluster_of()

        # ---- issue control, one sequencer per cluster -----------------------------------------
        # Every cluster of multipliers has its own copy of the issue state (full, step, ready),
        # of the pipelined valid bits and steps, and of the queue pointers. The copies hold the
        # same values (same initial state, same inputs) but each is computed from its own
        # registers, so synthesis keeps them apart and no control net fans out to the whole
        # stage (at 50 or more multipliers such nets spanned the device). i.ready is cluster 0's.
        # Datapath registers have no reset (only the control does): a reset net reaching every
        # flip-flop would be the largest net of the design and constrain packing.
        credits = Signal(range(depth + 1))  # accepted and not yet sent
        credits_next = Signal(range(depth + 1))
        room_next = Signal()  # the queue can take one more vector next cycle
        out_valid = Signal()  # o.valid, a register computed from the next state
        send = self.o.valid & self.o.ready

        later = int(self._staged)  # cycles the products' second register adds
        seqs = [
            _Sequencer(m, c, ii, depth, self.i.valid, room_next, later) for c in range(clusters)
        ]
        m.d.comb += [
            self.i.ready.eq(seqs[0].ready),
            credits_next.eq(credits + seqs[0].accept - send),
            room_next.eq(credits_next < depth),
        ]
        m.d.sync += credits.eq(credits_next)

        # ---- input buffer ---------------------------------------------------------------------
        # The inputs are kept by group: group g = (block b, diagonal d) holds the s inputs that
        # all of its outputs read, in the order they read them (see Factor.rows_cols), and
        # rotates them by one element per issue step. Product k = mu*II + j of multiplier mu
        # reads element (k mod s) of group k // (r*s), which after j rotations sits at the
        # fixed position (mu*II) mod s: every multiplier taps one position of each group its
        # chunk touches, and selects among those few groups (by an index from the step ROM).
        # Each sequencer loads its share of the buffer's positions.
        x_buf = Signal(data.ArrayLayout(in_shape, f.q), reset_less=True)

        def position(g: int, c: int) -> int:
            return g * f.s + c

        def column(g: int, c: int) -> int:
            b, d = divmod(g, f.t)
            return b * f.s * f.t + c * f.t + d

        # (each built as one concatenation: element-wise assignments of a wide signal make
        # event-driven simulators like Icarus many times slower)
        groups = range(f.nb * f.t)
        w_in = in_shape.width
        loaded = Cat(self.i.payload[column(g, c)] for g in groups for c in range(f.s))
        rotated = Cat(x_buf[position(g, (c + 1) % f.s)] for g in groups for c in range(f.s))
        flat = x_buf.as_value()
        for seq, (lo, hi) in zip(seqs, _shares(f.q, clusters), strict=True):
            part = slice(lo * w_in, hi * w_in)
            if ii > 1:
                m.d.sync += flat[part].eq(Mux(seq.accept, loaded[part], rotated[part]))
            else:
                with m.If(seq.accept):
                    m.d.sync += flat[part].eq(loaded[part])

        def step_table(m, seq, signal, n, values: dict[int, int], registers=None):
            """``signal = values[seq.steps[n]]`` (a constant table over the steps, 0 at steps it
            does not list; for the steps in ``registers`` that register's value), in two
            registered stages so that no wide decode sits in one cycle: a flag per distinct
            value, decoded from ``seq.steps[n - 2]``, then the OR of the flagged values (the
            flags exclude each other)."""
            registers = registers or {}
            if ii == 1:
                m.d.comb += signal.eq(values.get(0, 0))
                return
            by_value: dict[int, list[int]] = {}
            for j, v in values.items():
                if v != 0:
                    by_value.setdefault(v, []).append(j)
            cases = [(js, Const(v, signal.shape())) for v, js in by_value.items()]
            cases += [([j], register) for j, register in registers.items()]
            terms = []
            for k, (js, value) in enumerate(cases):
                flag = Signal(name=f"{signal.name}_at{k}", reset_less=True)
                m.d.sync += flag.eq(seq.steps[n - 2].matches(*js))
                terms.append(Mux(flag, value, 0))
            m.d.sync += signal.eq(functools.reduce(operator.or_, terms, Const(0, signal.shape())))

        def step_flag(seq, n: int, js, name: str):
            """A register that is 1 in the cycles where ``seq.valid[n]`` holds and
            ``seq.steps[n]`` is in ``js``, decoded a cycle early. It only enables data writes
            (every one of which is repeated for each vector before that vector counts as done),
            so it needs no reset."""
            flag = Signal(name=name, reset_less=True)
            if ii == 1:
                m.d.comb += flag.eq(seq.valid[n])
            else:
                m.d.sync += flag.eq(seq.valid[n - 1] & seq.steps[n - 1].matches(*js))
            return flag

        runs = self.runs()
        chunks = self._chunks()

        # An output split across two chunks (its head at the end of chunk mu, its tail at the
        # start of chunk mu + 1) is finished by multiplier mu alone when the tail's sum is ready
        # before mu starts the head: the tail's multiplier leaves its sum in a carry register
        # and mu's accumulator starts from it instead of from a constant. The tail ends by
        # step s - 1 - a and the head starts at step II - a (a: the head's products), so with
        # the three pipeline cycles between them this holds for every split output once
        # II >= s + 2 (an output then never spans three chunks). Otherwise split outputs are
        # summed from partial sums after the last step.
        carry = {}
        if self._carried():
            for row, mine in chunks.items():
                if len(mine) > 1:
                    carry[row] = Signal(acc_shape, name=f"carry{row}", reset_less=True)

        # ---- operands: multiplier mu takes product mu*II + j in step j ----------------------
        # Folded stages read a ROM word per step (one ROM per sequencer) holding, for every
        # multiplier, its weight and the index of its group among the groups its chunk
        # touches; each word is read two cycles ahead into a register (see _Sequencer), so the
        # ROM adds no latency and no path runs from a block RAM's output to the operands. A
        # fully parallel stage (II = 1) is plain wiring to constants.
        # a_in/b_in: the operands of the step being issued, registered every cycle in the
        # operand registers (the DSP's own input registers with dsp="MULT18X18D"); products
        # of cycles with nothing issued are never accumulated, so no enable is needed
        a_in = [Signal(in_shape, name=f"a_in{mu}") for mu in range(mults)]
        b_in = [Signal(w_shape, name=f"b_in{mu}") for mu in range(mults)]
        plans = self._operand_plans()
        if ii == 1:
            for mu, (groups_mu, tap, steps_of, _) in enumerate(plans):
                m.d.comb += [
                    a_in[mu].eq(x_buf[position(groups_mu[0], tap)]),
                    b_in[mu].eq(steps_of[0][0]),
                ]
        else:
            w_bits = self._weight_format.width
            for seq in seqs:
                members = [mu for mu in range(mults) if cluster_of[mu] == seq.index]
                fields = [w_bits + plans[mu][3] for mu in members]
                words = []
                for j in range(ii):
                    word, shift = 0, 0
                    for mu, width in zip(members, fields, strict=True):
                        weight, idx = plans[mu][2][j]
                        word |= ((weight & ((1 << w_bits) - 1)) | (idx << w_bits)) << shift
                        shift += width
                    words.append(word)
                # placed by attribute where the estimate counts it and the address path below
                # expects it (Yosys left a narrow 160-step ROM in logic by itself)
                in_block = ii >= EBR_MIN_DEPTH
                rom = Memory(
                    shape=unsigned(sum(fields)),
                    depth=ii,
                    init=words,
                    attrs={"ram_style": "block" if in_block else "logic"},
                )
                m.submodules[f"rom{seq.index}"] = rom
                rd = rom.read_port()
                word = Signal(unsigned(sum(fields)), name=f"word{seq.index}", reset_less=True)
                if in_block:
                    # a block RAM: the input transfer selects the address at its pins
                    m.d.comb += rd.addr.eq(seq.address)
                    m.d.sync += word.eq(rd.data)
                else:
                    # a ROM in logic, whose lookup is levels of LUTs: its address comes from
                    # registers only, and the word of the next vector's step 1 (the one the
                    # transfer would select, a constant) is chosen after the read
                    m.d.comb += rd.addr.eq(seq.held)
                    m.d.sync += word.eq(Mux(seq.accepted, words[1 % ii], rd.data))
                offset = 0
                for mu, width in zip(members, fields, strict=True):
                    groups_mu, tap = plans[mu][0], plans[mu][1]
                    weight = word[offset : offset + w_bits].as_signed()
                    idx = word[offset + w_bits : offset + width]
                    offset += width
                    taps = [x_buf[position(g, tap)] for g in groups_mu]
                    m.d.comb += [b_in[mu].eq(weight), a_in[mu].eq(taps[0])]
                    if len(taps) > 1:
                        m.d.comb += a_in[mu].eq(Array(taps)[idx])

        # ---- products and accumulators ------------------------------------------------------
        acc = [Signal(acc_shape, name=f"acc{mu}", reset_less=True) for mu in range(mults)]
        product_shape = (Signal(in_shape) * Signal(w_shape)).shape()
        for mu in range(mults):
            seq = seqs[cluster_of[mu]]
            product = Signal(product_shape, name=f"p{mu}", reset_less=True)
            if self._dsp == "MULT18X18D":
                m.submodules[f"dsp{mu}"] = mult18x18d(a_in[mu], b_in[mu], product)
            else:
                a_reg = Signal(in_shape, name=f"a{mu}", reset_less=True)
                b_reg = Signal(w_shape, name=f"b{mu}", reset_less=True)
                m.d.sync += [a_reg.eq(a_in[mu]), b_reg.eq(b_in[mu]), product.eq(a_reg * b_reg)]
            starts, inits, carried_in = {}, {}, {}
            for row, j0, _ in runs[mu]:
                starts[j0] = 1
                if row in carry and mu == chunks[row][0][0]:
                    carried_in[j0] = carry[row]  # the later chunk's part, added from the start
                else:
                    primary = chunks[row][-1 if row in carry else 0][0] == mu
                    inits[j0] = self._bias[row] + self._round if primary else 0
            start = Signal(name=f"start{mu}", reset_less=True)  # only read while valid
            init = Signal(acc_shape, name=f"init{mu}", reset_less=True)
            if self._staged:
                staged = Signal(product_shape, name=f"staged{mu}", reset_less=True)
                m.d.sync += staged.eq(product)
                product = staged
            step_table(m, seq, start, 2 + later, starts)
            step_table(m, seq, init, 2 + later, inits, carried_in)
            with m.If(seq.valid[2 + later]):
                m.d.sync += acc[mu].eq(Mux(start, init, acc[mu]) + product)

        # ---- finished runs go straight into their slot of the output queue ------------------
        # The queue is a ring of whole-vector registers (no memory, so no LUT RAM). Vector n is
        # written into slot w_ptr while its runs finish; w_ptr moves on after its last step
        # (every sequencer keeps its own copy for its multipliers' writes). An output split
        # across chunks keeps one partial sum per chunk; after the last step the sums are
        # added (a registered tree) and requantised into the vector's slot, which then counts
        # as full. The credit counter guarantees the slot is free (see above).
        slots = [
            Signal(data.ArrayLayout(out_shape, f.p), name=f"slot{n}", reset_less=True)
            for n in range(depth)
        ]
        for seq in seqs:
            with m.If(seq.last_acc):
                m.d.sync += seq.w_ptr.eq(Mux(seq.w_ptr == depth - 1, 0, seq.w_ptr + 1))
        done = [Signal(name="done1"), Signal(name="done2")]
        done_ptr = [Signal(range(depth), name=f"done_ptr{n}", reset_less=True) for n in (1, 2)]
        m.d.sync += [done[0].eq(seqs[0].last_acc), done[1].eq(done[0]), done_ptr[1].eq(done_ptr[0])]
        with m.If(seqs[0].last_acc):
            m.d.sync += done_ptr[0].eq(seqs[0].w_ptr)

        def write(row: int, value, pointer, when) -> None:
            with m.If(when), m.Switch(pointer):
                for n in range(depth):
                    with m.Case(n):
                        m.d.sync += slots[n][row].eq(value)

        partials: dict[int, list] = {}
        for mu in range(mults):
            seq = seqs[cluster_of[mu]]
            y_mu = self._requantize(m, acc[mu], f"y_acc{mu}")
            for row, _, j1 in runs[mu]:
                finished = step_flag(seq, 3 + later, [j1], f"finished{row}_{mu}")
                if row in carry and mu != chunks[row][0][0]:
                    with m.If(finished):
                        m.d.sync += carry[row].eq(acc[mu])
                elif len(chunks[row]) == 1 or row in carry:
                    write(row, y_mu, seq.w_ptr, finished)
                else:
                    part = Signal(acc_shape, name=f"part{row}_{mu}", reset_less=True)
                    with m.If(finished):
                        m.d.sync += part.eq(acc[mu])
                    partials.setdefault(row, []).append(part)
        for row, parts in partials.items():
            while len(parts) > 1:  # a balanced adder tree, one level of logic per pair
                parts = [sum(parts[k : k + 2]) for k in range(0, len(parts), 2)]
            total = Signal(acc_shape, name=f"total{row}", reset_less=True)
            with m.If(done[0]):
                m.d.sync += total.eq(parts[0])
            write(row, self._requantize(m, total, f"y{row}"), done_ptr[1], done[1])

        # the output: every sequencer's copy of the read pointer selects its share of the rows
        count = Signal(range(depth + 1))
        count_next = Signal.like(count)
        m.d.comb += count_next.eq(count + done[1] - send)
        m.d.sync += [count.eq(count_next), out_valid.eq(count_next != 0)]
        m.d.comb += self.o.valid.eq(out_valid)
        w_out = out_shape.width
        shares = []
        for seq, (lo, hi) in zip(seqs, _shares(f.p, clusters), strict=True):
            with m.If(send):
                m.d.sync += seq.r_ptr.eq(Mux(seq.r_ptr == depth - 1, 0, seq.r_ptr + 1))
            part = slice(lo * w_out, hi * w_out)
            shares.append(Array(slot.as_value()[part] for slot in slots)[seq.r_ptr])
        m.d.comb += self.o.payload.eq(Cat(shares))
        return m


def _shares(n: int, parts: int) -> list[tuple[int, int]]:
    """``range(n)`` cut into ``parts`` contiguous, near-equal ``(lo, hi)`` shares."""
    return [(k * n // parts, (k + 1) * n // parts) for k in range(parts)]


class _Sequencer:
    """One cluster's copy of a factor stage's issue control (see FactorStage.elaborate).

    ``accept`` is an input transfer seen by this copy; ``full`` means steps are left to issue
    and ``step`` is the step being issued; ``valid[n]``/``steps[n]`` are ``full``/``step``
    ``n`` cycles later; ``last_acc`` is the last step leaving the accumulators; ``w_ptr`` and
    ``r_ptr`` are this copy's output queue pointers (advanced by the stage)."""

    def __init__(
        self, m: Module, index: int, ii: int, depth: int, in_valid, room_next, later: int
    ) -> None:
        self.index = index
        name = f"c{index}"
        # a register, from the next state; 0 in the cycle after reset, when the ROM's
        # two-cycle read has not yet brought step 0's word
        self.ready = Signal(init=0, name=f"ready_{name}")
        self.accept = in_valid & self.ready
        self.full = Signal(name=f"full_{name}")
        self.step = Signal(range(ii), name=f"step_{name}")
        last_step = self.step == ii - 1
        going = self.full & ~last_step
        # The next state, with the input transfer (which arrives from the previous stage, often
        # from across the device) entering each function at its last level of logic only:
        # everything else is computed from this sequencer's own registers.
        m.d.sync += [
            self.full.eq(self.accept | going),
            self.step.eq(Mux(self.accept, 0, Mux(going, self.step + 1, 0))),
            # ready again in the cycle after the last step is issued (the next vector is
            # taken in the last issue cycle) and once the queue has room
            self.ready.eq(Mux(self.accept, ii == 1, ~going | (self.step == ii - 2)) & room_next),
        ]
        # The ROM address. A step's word is read two cycles ahead of its issue (the ROM's own
        # read register, then a register of the word in fabric, so no path starts at the slow
        # output of a block RAM): in the cycle that issues step j the address is that of step
        # j + 2 (mod II), so the last step but one addresses the next vector's step 0 and an
        # idle stage keeps step 0's word ready. Only in the cycle of the last step (or an idle
        # one) is the next vector's step 1 not yet known to be wanted: the input transfer then
        # selects it, at the last level of logic before the ROM's address lines.
        self.address = Signal(range(ii), name=f"rom_addr_{name}")
        self.held = held = Signal(range(ii), name=f"rom_held_{name}")
        # (going and not at step II - 2, the step is at most II - 3: its step + 3 wraps to 0
        # only from II - 3; compared, not divided, so no modulo circuit is built)
        after_next = Mux(self.step == ii - 3, 0, self.step + 3)
        m.d.sync += held.eq(
            Mux(self.accept, 2 % ii, Mux(going & (self.step != ii - 2), after_next, 0))
        )
        m.d.comb += self.address.eq(Mux(self.accept, 1 % ii, held))
        # (held is 0 in every cycle that can accept: the address the transfer replaces is
        # step 0's, so a ROM can also be read at held and its word replaced after the read)
        self.accepted = Signal(name=f"accepted_{name}")  # accept, a cycle later
        m.d.sync += self.accepted.eq(self.accept)

        last = 4 + later  # the pipeline's last stage: a finished run's write
        self.valid = [self.full] + [Signal(name=f"v{n}_{name}") for n in range(1, last)]
        self.steps = [self.step] + [
            Signal(range(ii), name=f"step{n}_{name}", reset_less=True) for n in range(1, last)
        ]
        for n in range(1, last):
            m.d.sync += [self.valid[n].eq(self.valid[n - 1]), self.steps[n].eq(self.steps[n - 1])]
        self.last_acc = Signal(name=f"last_acc_{name}")
        if ii == 1:
            m.d.comb += self.last_acc.eq(self.valid[3 + later])
        else:
            m.d.sync += self.last_acc.eq(self.valid[2 + later] & (self.steps[2 + later] == ii - 1))
        self.w_ptr = Signal(range(depth), name=f"w_ptr_{name}")
        self.r_ptr = Signal(range(depth), name=f"r_ptr_{name}")
