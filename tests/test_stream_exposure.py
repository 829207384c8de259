"""Exposure gain on the wire: round trip, hostile values refused, counted, applied."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dynbg.exposure import Gain, apply_gain, decode_gain, encode_gain
from stream.core import validate, wire
from stream.core.accounting import frame_side_bits
from stream.core.config import ReceiverConfig
from stream.core.receiver import ReceiverCore

GAIN = encode_gain(Gain(np.array([1.25, 1.0, 0.8], np.float32),
                        np.array([4.0, 0.0, -4.0], np.float32)))


def _packets(msg: wire.Message) -> list[bytes]:
    return wire.Packer().pack(msg)


def _feed(packets: list[bytes]) -> wire.Message:
    unpacker = wire.Unpacker()
    out = [unpacker.feed(p) for p in packets]
    return out[-1]


def test_gain_round_trips_and_old_bodies_still_decode() -> None:
    msg = wire.FrameMsg(3, 0.1, 1.7e9, wire.Mode.KEY, 1, 2, gain=GAIN)
    assert _feed(_packets(msg)) == msg
    plain = wire.FrameMsg(3, 0.1, 1.7e9, wire.Mode.KEY, 1, 2)
    got = _feed(_packets(plain))
    assert got.gain == b"" and got == plain
    assert len(wire.encode_body(msg)[1]) == len(wire.encode_body(plain)[1]) + 1 + len(GAIN)
    assert frame_side_bits(msg) == frame_side_bits(plain) + 8 * len(GAIN)


def test_hostile_gains_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="6 bytes"):
        wire.encode_body(wire.FrameMsg(3, 0.1, 1.7e9, wire.Mode.KEY, gain=b"\x01\x02"))
    kind, body = wire.encode_body(wire.FrameMsg(3, 0.1, 1.7e9, wire.Mode.KEY, gain=GAIN))
    bad = body[:-(len(GAIN) + 1)] + bytes([3]) + b"\x00\x00\x00"
    with pytest.raises(wire.WireError) as err:
        wire.decode_body(kind, bad)
    assert err.value.reason == "bad_field"
    direct = wire.FrameMsg(3, 0.1, 1.7e9, wire.Mode.DIRECT, gain=GAIN)
    with pytest.raises(validate.Invalid) as inv:
        validate.check_frame(direct, 64, 48, None)
    assert inv.value.reason == "bad-gain"


def test_receiver_shows_the_background_at_the_frame_exposure() -> None:
    receiver = ReceiverCore(ReceiverConfig(interp="off"))
    receiver.start(wire.SessionParams(64, 48, 30.0))
    bg = np.random.default_rng(0).integers(40, 200, (48, 64, 3), dtype=np.uint8)
    png = cv2.imencode(".png", cv2.cvtColor(bg, cv2.COLOR_RGB2BGR))[1].tobytes()
    receiver.decode(wire.Background(0, 1, wire.BackgroundKind.PNG, 48, 64, png))
    frame = wire.FrameMsg(0, 0.0, 1.7e9, wire.Mode.KEY, 0, 1, gain=GAIN)
    out = receiver.compose(receiver.decode(frame))
    assert np.array_equal(out[0].image, apply_gain(bg, decode_gain(GAIN)))
