"""The host protocol: CRCs against independent references, frames, the streaming decoder,
vector encodings and reply payloads."""

import binascii
import random
import zlib

import numpy as np
import pytest

from boards.link.protocol import (
    ERROR_REPLY,
    IDENTITY_SIZE,
    SYNC,
    Command,
    DeviceError,
    ErrorCode,
    ErrorReply,
    Frame,
    FrameDecoder,
    FrameError,
    Identity,
    ProtocolError,
    SelftestResult,
    crc16,
    decode_frames,
    element_bytes,
    encode_frame,
    infer_request,
    pack_vector,
    parse_infer_reply,
    parse_ping_reply,
    parse_selftest_reply,
    ping_request,
    selftest_checksum,
    selftest_request,
    unpack_vector,
)
from debut.fixed import Fixed


def test_crc16_known_answers():
    assert crc16(b"123456789") == 0x29B1  # the catalogue check value of CRC-16/CCITT-FALSE
    assert crc16(b"") == 0xFFFF
    rng = random.Random(0)
    for n in range(40):
        data = rng.randbytes(n)
        # binascii.crc_hqx is the same polynomial, unreflected, with a given initial value
        assert crc16(data) == binascii.crc_hqx(data, 0xFFFF)
        assert crc16(data[n // 2 :], crc16(data[: n // 2])) == crc16(data)


def test_selftest_checksum_is_crc32_of_the_reply_bytes():
    outputs = np.array([[0x31, 0x32, 0x33], [0x34, 0x35, 0x36], [0x37, 0x38, 0x39]])
    assert selftest_checksum(outputs, Fixed(8, 0, False)) == 0xCBF43926  # CRC-32 check value
    wide = np.array([[-2, 1000], [5, -2048]])
    expected = zlib.crc32(bytes([0xFE, 0xFF, 0xE8, 0x03, 0x05, 0x00, 0x00, 0xF8]))
    assert selftest_checksum(wide, Fixed(12, 3, True)) == expected


def test_encode_frame_layout():
    frame = encode_frame(0x02, b"\x10\x20\x30")
    body = b"\x02\x03\x00\x10\x20\x30"
    assert frame == b"\xa5\x5a" + body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "little")
    assert ping_request() == b"\xa5\x5a\x01\x00\x00" + crc16(b"\x01\x00\x00").to_bytes(2, "little")
    with pytest.raises(ValueError, match=r"^command must be a byte, not 256$"):
        encode_frame(256)
    with pytest.raises(ValueError, match=r"^payload must be at most 65535 bytes, not 65536$"):
        encode_frame(1, bytes(65536))


def random_frames(rng, count):
    frames = []
    for _ in range(count):
        size = rng.choice([0, 1, 2, 7, 40, 300])
        frames.append(Frame(rng.randrange(256), rng.randbytes(size)))
    return frames


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_decoder_round_trip_in_chunks(chunk):
    rng = random.Random(chunk)
    frames = random_frames(rng, 30)
    # payloads that contain SYNC, the SYNC bytes and the CRC of a frame inside another
    frames.append(Frame(0x02, SYNC * 4 + encode_frame(0x01)))
    stream = b"".join(encode_frame(f.command, f.payload) for f in frames)
    decoder = FrameDecoder()
    got = []
    for start in range(0, len(stream), chunk):
        got += decoder.feed(stream[start : start + chunk])
    assert decoder.pending == 0
    got += decoder.flush()
    assert got == frames
    assert decoder.skipped == 0


def test_garbage_before_and_between_frames_is_skipped():
    good = encode_frame(Command.INFER, b"\x01\x02\x03")
    garbage = b"\x00\xa5\xa5\x13\xa5\x5a"  # ends in a SYNC whose frame is nonsense
    decoder = FrameDecoder(max_payload=16)
    results = decoder.feed(b"\xff\x5a\xa5" + good + garbage[:5]) + decoder.feed(garbage[5:])
    # the decoder waits for the frame the trailing SYNC starts
    assert results == [Frame(Command.INFER, b"\x01\x02\x03")]
    results = decoder.feed(b"\x01\xff\xff" + good) + decoder.flush()
    # the SYNC before it announced 65535 bytes, which exceeds max_payload
    assert results == [FrameError(ErrorCode.OVERSIZED, 0x01, 0xFFFF), Frame(0x02, b"\x01\x02\x03")]
    assert decoder.skipped == 3 + len(garbage) + 3


def test_every_single_bit_error_is_caught_and_the_next_frame_survives():
    first, second = encode_frame(0x03, b"abcdefgh"), encode_frame(0x01, b"xyz")
    for position in range(len(first)):
        for bit in range(8):
            bad = bytearray(first)
            bad[position] ^= 1 << bit
            results = decode_frames(bytes(bad) + second, max_payload=64)
            assert results[-1] == Frame(0x01, b"xyz")
            assert Frame(0x03, b"abcdefgh") not in results
            if position >= 2:
                # past SYNC the frame is found and rejected; a corrupted length may swallow the
                # next frame (then BAD_CRC, or TRUNCATED at the end of the stream) or exceed
                # max_payload, and the rescan still finds the next frame
                kinds = {r.kind for r in results if isinstance(r, FrameError)}
                assert kinds and kinds <= {
                    ErrorCode.BAD_CRC,
                    ErrorCode.OVERSIZED,
                    ErrorCode.TRUNCATED,
                }


def test_truncated_frame():
    frame = encode_frame(0x02, b"0123456789")
    for cut in range(1, len(frame)):
        results = decode_frames(frame[:cut])
        if cut >= 2:
            command = frame[2] if cut > 2 else None
            length = 10 if cut >= 5 else None
            assert results == [FrameError(ErrorCode.TRUNCATED, command, length)]
        else:
            assert results == []
    # a truncated frame followed by a good one: the good one is read as the rest of the
    # truncated frame, rejected by the CRC, then found by the rescan
    good = encode_frame(0x01, b"ok")
    results = decode_frames(frame[:9] + good)
    assert results == [FrameError(ErrorCode.BAD_CRC, 0x02, 10), Frame(0x01, b"ok")]


def test_oversized_frame():
    decoder = FrameDecoder(max_payload=8)
    results = decoder.feed(encode_frame(0x02, bytes(9)) + encode_frame(0x02, bytes(8)))
    assert results == [FrameError(ErrorCode.OVERSIZED, 0x02, 9), Frame(0x02, bytes(8))]
    with pytest.raises(ValueError, match=r"^max_payload must be in 0\.\.65535, not -1$"):
        FrameDecoder(-1)


FORMATS = [Fixed(8, 4), Fixed(8, 0, False), Fixed(3, 1), Fixed(12, 6), Fixed(16, 0, False)]


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_vector_round_trip(fmt):
    rng = np.random.default_rng(fmt.width)
    values = rng.integers(fmt.min_int, fmt.max_int + 1, size=50)
    values[:2] = [fmt.min_int, fmt.max_int]
    data = pack_vector(values, fmt, 50)
    assert len(data) == 50 * element_bytes(fmt)
    np.testing.assert_array_equal(unpack_vector(data, fmt, 50), values)


def test_vector_encoding_bytes():
    assert element_bytes(Fixed(8, 0)) == 1 and element_bytes(Fixed(9, 0)) == 2
    assert pack_vector([-2, 1, -2048], Fixed(12, 0), 3) == bytes.fromhex("feff0100 00f8")
    assert pack_vector([-1, 3], Fixed(3, 0), 2) == b"\xff\x03"
    assert pack_vector([255], Fixed(8, 0, False), 1) == b"\xff"


def test_vector_errors():
    fmt = Fixed(4, 0)
    with pytest.raises(ValueError, match=r"^vector must have 3 elements, not shape \(2,\)$"):
        pack_vector([1, 2], fmt, 3)
    with pytest.raises(ValueError, match=r"^element 1 must lie in -8\.\.7 \(s4\.0\), not 8$"):
        pack_vector([1, 8], fmt, 2)
    with pytest.raises(ValueError, match=r"^vector must hold integers, not float64$"):
        pack_vector([1.0, 2.0], fmt, 2)
    with pytest.raises(ProtocolError, match=r"^a vector of 2 x s4\.0 must take 2 bytes, not 3$"):
        unpack_vector(b"\x00\x01\x02", fmt, 2)
    with pytest.raises(ProtocolError, match=r"^element 0 must lie in -8\.\.7 \(s4\.0\), not 127$"):
        unpack_vector(b"\x7f\x00", fmt, 2)


def test_identity_round_trip_and_checks():
    identity = Identity(64, Fixed(8, 4), 10, Fixed(12, -3, False), 32, 0xDEADBEEF)
    payload = identity.encode()
    assert len(payload) == IDENTITY_SIZE == 21
    assert payload[:5] == b"DBUT\x01"
    assert Identity.decode(payload) == identity
    frame = Frame(Command.PING.reply, payload)
    assert parse_ping_reply(frame) == identity
    with pytest.raises(ProtocolError, match=r"^a PING reply must start with b'DBUT', not b'XBUT'$"):
        Identity.decode(b"X" + payload[1:])
    with pytest.raises(ProtocolError, match="protocol version 2; this host speaks 1"):
        Identity.decode(payload[:4] + b"\x02" + payload[5:])
    with pytest.raises(ProtocolError, match=r"^a PING reply must hold 21 bytes, not 20$"):
        Identity.decode(payload[:-1])
    with pytest.raises(ValueError, match=r"^in_format\.frac must be in -128\.\.127, not 200$"):
        Identity(1, Fixed(8, 200), 1, Fixed(8, 0), 1).encode()


def test_replies():
    fmt = Fixed(8, 2)
    request = infer_request([1, -2, 3], fmt, 3)
    assert decode_frames(request) == [Frame(Command.INFER, b"\x01\xfe\x03")]
    reply = Frame(Command.INFER.reply, b"\x05\xfb")
    np.testing.assert_array_equal(parse_infer_reply(reply, fmt, 2), [5, -5])
    result = SelftestResult(0x12345678, 1000)
    assert result.encode() == bytes.fromhex("78563412 e8030000")
    assert parse_selftest_reply(Frame(Command.SELFTEST.reply, result.encode())) == result
    error = Frame(ERROR_REPLY, ErrorReply(ErrorCode.BAD_LENGTH, Command.PING).encode())
    with pytest.raises(DeviceError, match=r"command 0x01: BAD_LENGTH$") as info:
        parse_ping_reply(error)
    assert (info.value.code, info.value.command) == (ErrorCode.BAD_LENGTH, Command.PING)
    with pytest.raises(
        ProtocolError, match=r"^the reply to INFER must have command 0x82, not 0x81$"
    ):
        parse_infer_reply(Frame(0x81, b""), fmt, 2)
    with pytest.raises(ProtocolError, match=r"^the reply to SELFTEST was rejected: TRUNCATED$"):
        parse_selftest_reply(FrameError(ErrorCode.TRUNCATED, None, None))


def test_the_examples_in_the_documentation():
    assert ping_request() == bytes.fromhex("a55a010000acfb")
    assert selftest_request() == bytes.fromhex("a55a030000cc95")
    assert infer_request([1, -2, 3], Fixed(8, 4), 3) == bytes.fromhex("a55a02030001fe031f5c")
