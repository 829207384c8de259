"""Wire format: round trips, chunking, strict rejection with reason codes, and fuzzing."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core import wire
from stream.core.wire import (
    Background,
    BackgroundKind,
    Bye,
    Control,
    ControlTopic,
    FrameMsg,
    Hello,
    Mode,
    Packer,
    SessionParams,
    Unpacker,
    WireError,
)

RNG = np.random.default_rng(7)


def _symbols(n: int) -> np.ndarray:
    raw = RNG.standard_normal(n) + 1j * RNG.standard_normal(n)
    return wire.quantize_symbols(raw)


def _frame(index: int, n: int = 1000, mask: bool = True) -> FrameMsg:
    return FrameMsg(index=index, pts=index / 30, captured=1.7e9 + index / 30, mode=Mode.KEY,
                    segment_id=3, background_id=9, box=(10, 20, 330, 460), crop_shape=(220, 160),
                    latent_shape=(16, 55, 40), scale=0.5, rate_level=2, snr_db=10.0,
                    symbols=_symbols(n),
                    mask=RNG.random((55, 40)) > 0.5 if mask else None)


def _messages() -> list[wire.Message]:
    return [
        Hello(wire.token_proof("secret", b"nonce"),
              SessionParams(640, 480, 30.0, 2, "rayleigh", 5.0, "jscc-narrow", "selfie")),
        Background(3, 9, BackgroundKind.PNG, 480, 640, bytes(range(256)) * 300),
        _frame(0, n=153_600),  # a 640x480 direct-mode latent: many chunks
        _frame(1, n=0, mask=False),
        FrameMsg(2, 0.1, 1.7e9, Mode.DIRECT, symbols=wire.quantize_symbols(
            _symbols(300), wire.SymbolFormat.INT8), symbol_format=wire.SymbolFormat.INT8),
        Control(ControlTopic.INTERP, {"on": True}),
        Control(ControlTopic.HEARTBEAT),
        Bye(frames_read=90, frames_sent=88, dropped={"backpressure": 1, "queue_full": 1}),
    ]


def _roundtrip(messages: list[wire.Message]) -> list[wire.Message]:
    packer, unpacker = Packer(), Unpacker()
    out = []
    for msg in messages:
        for packet in packer.pack(msg):
            assert len(packet) <= wire.PACKET_SIZE
            got = unpacker.feed(packet)
            if got is not None:
                out.append(got)
    return out


def test_round_trip_every_type() -> None:
    messages = _messages()
    assert _roundtrip(messages) == messages
    assert len(Packer().pack(messages[2])) == -(-(4 * 153_600 + 100) // wire.CHUNK_PAYLOAD)


def test_symbols_are_float16_with_count() -> None:
    raw = RNG.standard_normal(50) + 1j * RNG.standard_normal(50)
    frame = _frame(0)
    frame = FrameMsg(**{**frame.__dict__, "symbols": raw})
    (got,) = _roundtrip([frame])
    assert got.symbols.dtype == np.complex64 and got.symbols.size == 50
    assert np.abs(got.symbols - raw).max() < 4e-3  # float16 rounding only
    assert np.array_equal(got.symbols, wire.quantize_symbols(raw))


def test_int8_symbols_take_half_the_bytes() -> None:
    raw = (RNG.standard_normal(4000) + 1j * RNG.standard_normal(4000)) / np.sqrt(2)
    half = FrameMsg(0, 0.0, 0.0, Mode.DIRECT, symbols=raw)
    eight = FrameMsg(0, 0.0, 0.0, Mode.DIRECT, symbols=raw, symbol_format=wire.SymbolFormat.INT8)
    size16, size8 = (len(wire.encode_body(m)[1]) for m in (half, eight))
    assert size16 - size8 == 2 * raw.size
    (got,) = _roundtrip([eight])
    step = np.abs(np.stack([raw.real, raw.imag])).max() / 127
    assert np.abs(got.symbols.real - raw.real).max() <= step / 2 + 1e-6
    assert np.abs(got.symbols.imag - raw.imag).max() <= step / 2 + 1e-6
    assert np.array_equal(got.symbols, wire.quantize_symbols(raw, wire.SymbolFormat.INT8))


def _error(packets: list[bytes], unpacker: Unpacker | None = None) -> str:
    unpacker = unpacker or Unpacker()
    with pytest.raises(WireError) as info:
        for packet in packets:
            unpacker.feed(packet)
    return info.value.reason


def _header(packet: bytes, **changes: int) -> bytes:
    names = ("magic", "version", "kind", "index", "count", "seq", "length")
    fields = dict(zip(names, wire.HEADER.unpack_from(packet), strict=True))
    fields.update(changes)
    return wire.HEADER.pack(*fields.values()) + packet[wire.HEADER.size:]


def test_rejections_have_reason_codes() -> None:
    big = Packer().pack(_frame(0, n=20_000))
    one = Packer().pack(Control(ControlTopic.STATS, {"fps": 30}))[0]
    assert _error([one[:10]]) == "truncated"
    assert _error([one[:-1]]) == "truncated"
    assert _error([one + b"x"]) == "trailing"
    assert _error([b"XXXX" + one[4:]]) == "bad_magic"
    assert _error([_header(one, version=wire.VERSION + 1)]) == "bad_version"
    assert _error([_header(one, kind=99)]) == "unknown_type"
    assert _error([_header(one, count=60_000)]) == "oversized"
    assert _error([big[0], big[2]]) == "chunk_order"
    assert _error([big[0], big[1], big[1]]) == "chunk_order"
    assert _error([one, one]) == "duplicate"
    frames = Packer()
    assert _error(frames.pack(_frame(5, n=10)) + frames.pack(_frame(5, n=10))) == "frame_order"
    not_json = struct.pack("!BI", ControlTopic.STATS, 5) + b"{nope"
    assert _error([_packet(wire.MsgType.CONTROL, not_json)]) == "bad_json"
    body = bytearray(wire.encode_body(_frame(0, n=4))[1])
    box_at = struct.calcsize("!IddBII")
    body[box_at:box_at + 8] = struct.pack("!4H", 50, 0, 10, 5)  # x1 > x2
    assert _error([_packet(wire.MsgType.FRAME, bytes(body))]) == "bad_field"


def _packet(kind: wire.MsgType, body: bytes) -> bytes:
    return wire.HEADER.pack(wire.MAGIC, wire.VERSION, kind, 0, 1, 0, len(body)) + body


def test_stream_recovers_after_a_bad_message() -> None:
    packer, unpacker = Packer(), Unpacker()
    first = packer.pack(_frame(0, n=20_000))
    second = packer.pack(_frame(1, n=10))
    assert unpacker.feed(first[0]) is None
    with pytest.raises(WireError):
        unpacker.feed(first[0][:-5])
    # the remaining chunks of the broken message are skipped without a second count
    assert all(unpacker.feed(p) is None for p in first[1:])
    got = unpacker.feed(second[0])
    assert isinstance(got, FrameMsg) and got.index == 1


def test_encoder_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="finite"):
        Packer().pack(FrameMsg(0, 0.0, 0.0, Mode.KEY, symbols=np.array([1e6 + 0j])))
    with pytest.raises(ValueError, match="out of range"):
        Packer().pack(FrameMsg(-1, 0.0, 0.0, Mode.KEY))
    with pytest.raises(ValueError, match="longer than"):
        Packer().pack(Bye(1, 1, {"x" * 100: 1}))


VALID = [p for msg in _messages()[:2] + _messages()[3:] for p in Packer().pack(msg)]


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), max_size=5))
def test_fuzz_random_bytes(packets: list[bytes]) -> None:
    unpacker = Unpacker()
    for packet in packets:
        try:
            unpacker.feed(wire.MAGIC + bytes([wire.VERSION]) + packet)
            unpacker.feed(packet)
        except WireError as exc:
            assert exc.reason in wire.REASONS


@settings(max_examples=600, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(VALID))), st.lists(
    st.tuples(st.integers(0, 20_000), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 40), st.booleans())
def test_fuzz_mutated_packets(which: int, flips: list[tuple[int, int]], cut: int,
                              prefix_valid: bool) -> None:
    packet = bytearray(VALID[which])
    for pos, value in flips:
        packet[pos % len(packet)] = value
    packet = bytes(packet[:len(packet) - cut])
    unpacker = Unpacker()
    try:
        if prefix_valid:
            unpacker.feed(VALID[0])
        unpacker.feed(packet)
    except WireError as exc:
        assert exc.reason in wire.REASONS


def test_bye_runs_round_trip_and_are_bounded() -> None:
    bye = Bye(9, 5, {"backpressure": 3, "late:encode": 1},
              {"backpressure": ((1, 2), (6, 1))})
    assert _roundtrip([bye]) == [bye]
    with pytest.raises(ValueError, match="does not count"):
        Packer().pack(Bye(1, 0, {}, {"x": ((0, 1),)}))
    with pytest.raises(ValueError, match="runs"):
        Packer().pack(Bye(1, 0, {"x": 1}, {"x": ((0, 1),) * (wire.MAX_DROP_RUNS + 1)}))
    more = struct.pack("!IIB", 9, 5, 1) + bytes([1]) + b"x" + struct.pack("!IHII", 1, 1, 0, 5)
    assert _error([_packet(wire.MsgType.BYE, more)]) == "bad_field"  # 5 listed, 1 counted
