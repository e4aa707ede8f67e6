"""Tests of compiler/fixed.py against exact references written here with integers and
``fractions.Fraction`` (docs/fixed-point.md): round half up (towards +infinity on exact halves),
saturation at both ends with counts, exact left shifts for negative shifts, formats of 2 to 16 bits,
the most-fractional-bits format for a range and the smallest width for an integer range."""

import dataclasses
import math
import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debut.fixed import MAX_WIDTH, MIN_WIDTH, Fixed, bits_for_range, requantize

HALF = Fraction(1, 2)
WIDTHS = range(MIN_WIDTH, MAX_WIDTH + 1)


# ---- exact references ----------------------------------------------------------------------------


def ref_round_half_up(q: Fraction) -> int:
    """The integer nearest to ``q``, exact halves going towards +infinity."""
    return math.floor(q + HALF)


def ref_limits(width: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(2 ** (width - 1)), 2 ** (width - 1) - 1
    return 0, 2**width - 1


def ref_saturate(n: int, width: int, signed: bool) -> tuple[int, bool]:
    """``n`` clamped to the format's integers, and whether it had to be."""
    low, high = ref_limits(width, signed)
    return min(max(n, low), high), not low <= n <= high


def ref_quantize(x: float, fmt: Fixed) -> tuple[int, bool]:
    return ref_saturate(
        ref_round_half_up(Fraction(x) * Fraction(2) ** fmt.frac), fmt.width, fmt.signed
    )


def ref_requantize(acc: int, shift: int, fmt: Fixed) -> tuple[int, bool]:
    # acc / 2**shift is an integer when shift <= 0, so rounding leaves the left shift exact
    return ref_saturate(
        ref_round_half_up(Fraction(acc) / Fraction(2) ** shift), fmt.width, fmt.signed
    )


def ref_holds(width: int, low: int, high: int) -> bool:
    """Whether a ``width``-bit two's-complement integer holds every value in ``[low, high]``."""
    return -(2 ** (width - 1)) <= low and high <= 2 ** (width - 1) - 1


def ref_signed_bits(v: int) -> int:
    """Bits of the smallest two's-complement integer holding ``v``: magnitude bits plus sign."""
    return (v if v >= 0 else -v - 1).bit_length() + 1


def check_quantize(fmt: Fixed, xs: list[float]) -> None:
    expected = [ref_quantize(x, fmt) for x in xs]
    got = fmt.quantize(np.array(xs, dtype=np.float64))
    assert got.dtype == np.int64
    assert got.tolist() == [n for n, _ in expected]
    assert fmt.saturations(np.array(xs, dtype=np.float64)) == sum(s for _, s in expected)


def check_requantize(accs: list[int], shift: int, fmt: Fixed) -> None:
    expected = [ref_requantize(a, shift, fmt) for a in accs]
    got, saturated = requantize(np.array(accs, dtype=np.int64), shift, fmt)
    assert got.dtype == np.int64
    assert got.tolist() == [n for n, _ in expected]
    assert saturated == sum(s for _, s in expected)
    assert isinstance(saturated, int)


# ---- the format itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [True, False])
def test_limits_and_values_are_exact(signed):
    for width in WIDTHS:
        low, high = ref_limits(width, signed)
        for frac in (-9, -1, 0, 1, width - 1, width, 30):
            fmt = Fixed(width, frac, signed)
            assert (fmt.min_int, fmt.max_int) == (low, high)
            lsb = Fraction(2) ** -frac
            assert Fraction(fmt.lsb) == lsb
            assert Fraction(fmt.max_value) == high * lsb
            assert Fraction(fmt.min_value) == low * lsb


def test_unsigned_formats_start_at_zero():
    assert (Fixed(2, 0, False).min_int, Fixed(2, 0, False).max_int) == (0, 3)
    assert (Fixed(16, 5, False).min_int, Fixed(16, 5, False).max_int) == (0, 65535)
    assert Fixed(8, 3, False).min_value == 0.0


@pytest.mark.parametrize("signed", [True, False])
def test_every_integer_survives_to_float_and_back(signed):
    for width in WIDTHS:
        for frac in (-3, 0, width // 2, width + 2):
            fmt = Fixed(width, frac, signed)
            ints = np.arange(fmt.min_int, fmt.max_int + 1, dtype=np.int64)
            floats = fmt.to_float(ints)
            assert floats.dtype == np.float64
            for n in (fmt.min_int, -1, 0, 1, fmt.max_int):
                if fmt.min_int <= n <= fmt.max_int:
                    assert Fraction(floats[n - fmt.min_int]) == n * Fraction(2) ** -frac
            np.testing.assert_array_equal(fmt.quantize(floats), ints)
            assert fmt.saturations(floats) == 0


def test_str_and_list_round_trip():
    assert str(Fixed(8, 4)) == "s8.4"
    assert str(Fixed(16, -3, False)) == "u16.-3"
    assert Fixed(2, 9).to_list() == [2, 9, True]
    for fmt in (Fixed(8, 4), Fixed(16, -3, False), Fixed(2, 0)):
        assert Fixed.from_list(fmt.to_list()) == fmt
    restored = Fixed.from_list([np.int64(12), np.int64(-2), np.bool_(False)])
    assert restored == Fixed(12, -2, False)
    assert type(restored.width) is int and type(restored.frac) is int
    assert type(restored.signed) is bool


def test_formats_are_frozen_and_hashable():
    fmt = Fixed(8, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fmt.frac = 3
    assert {fmt, Fixed(8, 4), Fixed(8, 4, False)} == {Fixed(8, 4), Fixed(8, 4, False)}
    assert dataclasses.replace(fmt, frac=-1) == Fixed(8, -1)


@pytest.mark.parametrize(
    "width, message",
    [
        (0, "width must be an int in 1..64, not 0"),
        (65, "width must be an int in 1..64, not 65"),
        (8.0, "width must be an int in 1..64, not 8.0"),
        ("8", "width must be an int in 1..64, not '8'"),
    ],
)
def test_bad_width_is_rejected(width, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Fixed(width, 0)


def test_bad_frac_is_rejected():
    with pytest.raises(ValueError, match=f"^{re.escape('frac must be an int, not 1.5')}$"):
        Fixed(8, 1.5)


# ---- quantising floats ---------------------------------------------------------------------------


def test_quantize_rounds_exact_halves_up():
    fmt = Fixed(8, 0)
    xs = [-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5]
    assert fmt.quantize(np.array(xs)).tolist() == [-3, -2, -1, 0, 1, 2, 3, 4]
    xs = [-2.6, -2.4, -0.4, -0.6, 0.4, 0.6, 2.4, 2.6]
    assert fmt.quantize(np.array(xs)).tolist() == [-3, -2, 0, -1, 0, 1, 2, 3]
    check_quantize(fmt, xs)


@pytest.mark.parametrize("frac", [-4, -1, 3, 12])
def test_quantize_rounds_halves_up_at_any_scale(frac):
    fmt = Fixed(12, frac)
    lsb = 2.0**-frac
    xs = [-2.5 * lsb, 2.5 * lsb, -0.5 * lsb, 0.5 * lsb, -7.5 * lsb, 7.5 * lsb]
    assert fmt.quantize(np.array(xs)).tolist() == [-2, 3, 0, 1, -7, 8]
    check_quantize(fmt, xs)


def test_quantize_just_below_a_half_rounds_down():
    # 0.5 - 2**-54 + 0.5 rounds to 1.0 in binary64, so floor(x + 0.5) would give 1
    below_half = math.nextafter(0.5, 0.0)
    for frac in (-3, 0, 5):
        fmt = Fixed(8, frac)
        xs = [math.ldexp(below_half, -frac), math.ldexp(-math.nextafter(0.5, 1.0), -frac)]
        assert fmt.quantize(np.array(xs)).tolist() == [0, -1]
        check_quantize(fmt, xs)


def test_quantize_saturates_at_both_ends_and_counts():
    fmt = Fixed(8, 0)
    xs = [
        math.nextafter(127.5, 0.0),  # rounds to 127: fits
        127.5,  # rounds to 128: saturates
        -128.5,  # rounds up to -128: fits
        math.nextafter(-128.5, -math.inf),  # rounds to -129: saturates
        1e9,
        -1e9,
        math.inf,
        -math.inf,
    ]
    assert fmt.quantize(np.array(xs)).tolist() == [127, 127, -128, -128, 127, -128, 127, -128]
    assert fmt.saturations(np.array(xs)) == 6
    check_quantize(fmt, xs[:6])


def test_quantize_unsigned_saturates_negatives_to_zero():
    fmt = Fixed(4, 0, False)
    xs = [-0.5, math.nextafter(-0.5, -1.0), -3.0, 0.0, 15.0, math.nextafter(15.5, 0.0), 15.5]
    assert fmt.quantize(np.array(xs)).tolist() == [0, 0, 0, 0, 15, 15, 15]
    assert fmt.saturations(np.array(xs)) == 3
    check_quantize(fmt, xs)


@pytest.mark.parametrize("signed", [True, False])
def test_quantize_2_bit_formats_on_a_quarter_lsb_grid(signed):
    for frac in (-2, 0, 1, 3):
        xs = [math.ldexp(k, -frac - 2) for k in range(-24, 25)]  # -6..6 LSB in quarter steps
        check_quantize(Fixed(2, frac, signed), xs)


@pytest.mark.parametrize("signed", [True, False])
def test_quantize_16_bit_formats_near_both_ends(signed):
    fmt = Fixed(16, 7, signed)
    xs = []
    for end in (fmt.min_int, fmt.max_int, 0):
        xs += [math.ldexp(4 * end + k, -fmt.frac - 2) for k in range(-6, 7)]
    check_quantize(fmt, xs)


def test_quantize_keeps_shape():
    fmt = Fixed(6, 2)
    xs = np.linspace(-10.0, 10.0, 24).reshape(2, 3, 4)
    got = fmt.quantize(xs)
    assert got.shape == (2, 3, 4) and got.dtype == np.int64
    assert got.ravel().tolist() == [ref_quantize(float(x), fmt)[0] for x in xs.ravel()]


fracs = st.integers(-8, 20)
widths = st.integers(MIN_WIDTH, MAX_WIDTH)


@settings(max_examples=100, deadline=None)
@given(widths, fracs, st.booleans(), st.data())
def test_quantize_matches_exact_reference(width, frac, signed, data):
    fmt = Fixed(width, frac, signed)
    span = 4 << width  # quarter LSBs covering the range and as much again beyond each end
    on_grid = st.integers(-span, span).map(lambda k: math.ldexp(k, -frac - 2))
    anywhere = st.floats(-1e30, 1e30, allow_nan=False)
    near_half = st.integers(-span, span).map(
        lambda k: math.ldexp(math.nextafter(k + 0.5, 0.0), -frac)
    )
    xs = data.draw(st.lists(st.one_of(on_grid, anywhere, near_half), min_size=1, max_size=12))
    check_quantize(fmt, xs)


# ---- requantising accumulators -------------------------------------------------------------------


def test_requantize_rounds_exact_halves_up():
    fmt = Fixed(8, 0)
    accs = [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5]
    got, saturated = requantize(np.array(accs), 1, fmt)
    assert got.tolist() == [-2, -2, -1, -1, 0, 0, 1, 1, 2, 2, 3]
    assert saturated == 0
    accs = [-11, -10, -9, -6, -2, 2, 6, 9, 10, 11]  # quarters: -2.75 -2.5 -2.25 -1.5 -0.5 ...
    got, saturated = requantize(np.array(accs), 2, fmt)
    assert got.tolist() == [-3, -2, -2, -1, 0, 1, 2, 2, 3, 3]
    assert saturated == 0
    check_requantize(accs, 2, fmt)


def test_requantize_shift_zero_only_saturates():
    fmt = Fixed(8, 0)
    got, saturated = requantize(np.array([-200, -129, -128, 0, 127, 128, 200]), 0, fmt)
    assert got.tolist() == [-128, -128, -128, 0, 127, 127, 127]
    assert saturated == 4


def test_requantize_negative_shift_is_an_exact_left_shift():
    fmt = Fixed(16, 0)
    got, saturated = requantize(np.array([-3, -1, 0, 1, 3, 1023]), -3, fmt)
    assert got.tolist() == [-24, -8, 0, 8, 24, 8184]
    assert saturated == 0
    fmt = Fixed(8, 0)
    got, saturated = requantize(np.array([40, 31, 32, -32, -33, -40]), -2, fmt)
    assert got.tolist() == [127, 124, 127, -128, -128, -128]
    assert saturated == 4  # 160, 128, -132 and -160 leave [-128, 127]; 124 and -128 fit
    check_requantize([40, 31, 32, -32, -33, -40], -2, fmt)


@pytest.mark.parametrize("shift", [1, 2, 7, 20])
def test_requantize_saturates_at_both_ends_and_counts(shift):
    fmt = Fixed(8, 3)
    half = 1 << (shift - 1)
    accs = [
        255 * half - 1,  # 127.5 - tiny: 127, fits
        255 * half,  # 127.5: 128, saturates
        -257 * half,  # -128.5: rounds up to -128, fits
        -257 * half - 1,  # -128.5 - tiny: -129, saturates
        2**40,
        -(2**40),
    ]
    got, saturated = requantize(np.array(accs), shift, fmt)
    assert got.tolist() == [127, 127, -128, -128, 127, -128]
    assert saturated == 4
    check_requantize(accs, shift, fmt)


def test_requantize_unsigned_saturates_negatives_to_zero():
    fmt = Fixed(4, 0, False)
    accs = [-3, -2, -1, 0, 61, 62, 63, 64]  # / 4: -0.75 -0.5 -0.25 0 15.25 15.5 15.75 16
    got, saturated = requantize(np.array(accs), 2, fmt)
    assert got.tolist() == [0, 0, 0, 0, 15, 15, 15, 15]
    assert saturated == 4  # -0.75 rounds to -1, 15.5 and up to 16
    check_requantize(accs, 2, fmt)
    got, saturated = requantize(np.array([-1, 0, 3, 4]), -2, fmt)
    assert got.tolist() == [0, 0, 12, 15]
    assert saturated == 2


@pytest.mark.parametrize("signed", [True, False])
def test_requantize_2_bit_formats_exhaustively(signed):
    fmt = Fixed(2, 0, signed)
    for shift in range(-3, 6):
        check_requantize(list(range(-40, 41)), shift, fmt)


@pytest.mark.parametrize("signed", [True, False])
def test_requantize_16_bit_formats_near_both_ends(signed):
    fmt = Fixed(16, 0, signed)
    for shift in (-2, 0, 1, 5):
        accs = []
        for end in (fmt.min_int, fmt.max_int, 0):
            centre = end << shift if shift >= 0 else end >> -shift
            accs += range(centre - 70, centre + 71)
        check_requantize(accs, shift, fmt)


def test_requantize_keeps_shape_and_input():
    acc = np.arange(-12, 12, dtype=np.int64).reshape(2, 3, 4) * 37
    before = acc.copy()
    got, _ = requantize(acc, 3, Fixed(5, 0))
    np.testing.assert_array_equal(acc, before)
    assert got.shape == (2, 3, 4) and got.dtype == np.int64
    expected = [ref_requantize(int(a), 3, Fixed(5, 0))[0] for a in acc.ravel()]
    assert got.ravel().tolist() == expected
    got, _ = requantize([5, -5, 6], 1, Fixed(8, 0))  # plain lists are accepted
    assert got.tolist() == [3, -2, 3]


accumulator = st.one_of(
    st.integers(-(2**40), 2**40),
    st.integers(-(2**12), 2**12),
    st.sampled_from([-(2**40), -1, 0, 1, 2**40]),
)


@settings(max_examples=150, deadline=None)
@given(widths, st.integers(-8, 20), st.booleans(), st.lists(accumulator, min_size=1, max_size=16))
def test_requantize_matches_exact_reference(width, shift, signed, accs):
    check_requantize(accs, shift, Fixed(width, 0, signed))


@settings(max_examples=60, deadline=None)
@given(widths, st.integers(1, 20), st.booleans(), st.data())
def test_requantize_at_the_saturation_edges(width, shift, signed, data):
    fmt = Fixed(width, 0, signed)
    # accumulators within a few LSBs (of the input scale) of each end's rounding boundary
    edges = [(2 * fmt.max_int + 1) << (shift - 1), (2 * fmt.min_int - 1) << (shift - 1)]
    accs = data.draw(
        st.lists(
            st.tuples(st.sampled_from(edges), st.integers(-3, 3)).map(sum),
            min_size=1,
            max_size=8,
        )
    )
    check_requantize(accs, shift, fmt)


# ---- choosing a format for a range ---------------------------------------------------------------


def check_for_range(width: int, max_abs: float, signed: bool) -> Fixed:
    """``Fixed.for_range`` keeps ``max_abs`` unsaturated and one more fractional bit would not."""
    fmt = Fixed.for_range(width, max_abs, signed)
    assert (fmt.width, fmt.signed) == (width, signed)
    assert not ref_quantize(max_abs, fmt)[1]
    if signed:
        assert not ref_quantize(-max_abs, fmt)[1]
    finer = Fixed(width, fmt.frac + 1, signed)
    assert ref_quantize(max_abs, finer)[1]
    values = np.array([max_abs, -max_abs] if signed else [max_abs])
    assert fmt.saturations(values) == 0
    assert finer.saturations(values) >= 1
    return fmt


@pytest.mark.parametrize("signed", [True, False])
def test_for_range_at_powers_of_two(signed):
    for width in WIDTHS:
        for k in (-30, -3, 0, 1, 5, 30):
            fmt = check_for_range(width, 2.0**k, signed)
            # 2**k needs 2**(frac+k) <= max_int, the largest power of two below the top
            assert fmt.frac == (width - 2 if signed else width - 1) - k


def test_for_range_examples():
    assert Fixed.for_range(8, 1.0, True) == Fixed(8, 6)
    assert Fixed.for_range(8, 1.0, False) == Fixed(8, 7, False)
    assert Fixed.for_range(8, 127 / 128, True) == Fixed(8, 7)
    assert Fixed.for_range(8, 127.5 / 128, True) == Fixed(8, 6)  # would round to 128
    assert Fixed.for_range(8, math.nextafter(127.5, 0.0) / 128, True) == Fixed(8, 7)
    assert Fixed.for_range(8, 3.0, True) == Fixed(8, 5)  # 3 * 32 = 96; 3 * 64 = 192 > 127
    assert Fixed.for_range(2, 1.0, True) == Fixed(2, 0)
    assert Fixed.for_range(2, 1.5, True) == Fixed(2, -1)  # 1.5 / 2 = 0.75 rounds to 1
    assert Fixed.for_range(2, 3.0, False) == Fixed(2, 0, False)
    assert Fixed.for_range(16, 1000.0, True) == Fixed(16, 5)  # 32000 <= 32767 < 64000


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize(
    "max_abs",
    [
        1e-300,
        2.0**-900,
        1e-30,
        3e-7,
        0.1,
        1 / 3,
        1e6,
        2.0**40 + 1,
        1e30,
        1e300,
        1.7976931348623157e308,
    ],
)
def test_for_range_tiny_and_huge(max_abs, signed):
    for width in (MIN_WIDTH, 8, MAX_WIDTH):
        fmt = check_for_range(width, max_abs, signed)
        if max_abs > 2.0**width:
            assert fmt.frac < 0


@pytest.mark.parametrize("signed", [True, False])
def test_for_range_of_zero_holds_zero(signed):
    for width in WIDTHS:
        fmt = Fixed.for_range(width, 0.0, signed)
        assert (fmt.width, fmt.signed) == (width, signed)
        assert fmt.quantize(np.zeros(3)).tolist() == [0, 0, 0]
        assert fmt.saturations(np.zeros(3)) == 0


@pytest.mark.parametrize("max_abs", [-1.0, -1e-300, -math.inf, math.inf, math.nan])
def test_for_range_rejects_bad_ranges(max_abs):
    message = f"max_abs must be finite and non-negative, not {max_abs!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Fixed.for_range(8, max_abs, True)


@settings(max_examples=100, deadline=None)
@given(
    widths,
    st.booleans(),
    st.one_of(
        st.floats(1e-250, 1e250),
        # multiples of half a power of two: exact halves at every candidate scale
        st.tuples(st.integers(1, 2**18), st.integers(-60, 60)).map(lambda t: math.ldexp(*t) / 2),
    ),
)
def test_for_range_is_the_finest_format_that_fits(width, signed, max_abs):
    check_for_range(width, max_abs, signed)


# ---- integer ranges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "low, high, width",
    [
        (0, 0, 1),
        (-1, 0, 1),
        (-1, -1, 1),
        (0, 1, 2),
        (-2, 1, 2),
        (-128, 127, 8),
        (-129, 127, 9),
        (0, 128, 9),
        (-128, 0, 8),
        (0, 127, 8),
        (5, 5, 4),
        (-(2**40), 2**40, 42),
        (-(2**63), 2**63 - 1, 64),
        (-(2**70), 0, 71),
    ],
)
def test_bits_for_range_examples(low, high, width):
    assert bits_for_range(low, high) == width
    assert ref_holds(width, low, high)
    assert width == 1 or not ref_holds(width - 1, low, high)


def test_bits_for_range_rejects_empty_ranges():
    with pytest.raises(ValueError, match=f"^{re.escape('low must be <= high, not 3 > 2')}$"):
        bits_for_range(3, 2)


def test_bits_for_range_of_every_format_is_its_width():
    for width in WIDTHS:
        signed = Fixed(width, 0, True)
        assert bits_for_range(signed.min_int, signed.max_int) == width
        unsigned = Fixed(width, 0, False)
        assert bits_for_range(unsigned.min_int, unsigned.max_int) == width + 1


bound = st.one_of(st.integers(-(2**70), 2**70), st.integers(-300, 300))


@settings(max_examples=100, deadline=None)
@given(bound, bound)
def test_bits_for_range_is_minimal(a, b):
    low, high = min(a, b), max(a, b)
    width = bits_for_range(low, high)
    assert width == max(ref_signed_bits(low), ref_signed_bits(high))
    assert ref_holds(width, low, high)
    assert width == 1 or not ref_holds(width - 1, low, high)
