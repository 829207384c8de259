"""The digital background link: budget, codec choice, the JSCC fallback below the MCS cliff,
and the decoder's refusal of malformed or hostile payloads."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from jscc.channel import ChannelConfig
from jscc.digital import background_link as bl
from jscc.digital.budget import MCS_MARGIN_DB, bit_budget
from jscc.digital.mcs import spectral_efficiency
from jscc.metrics import psnr


@pytest.fixture(scope="module")
def frame(samples) -> np.ndarray:
    import cv2

    from dynbg.video import read_frames

    image = next(iter(read_frames(samples / "asl-again.mkv", max_frames=1))).image
    return cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA)


def test_background_fits_its_budget_and_round_trips(frame):
    uses = frame.size // 12
    coded = bl.code_background(frame, 10.0, uses, ("jpeg", "webp"))
    assert coded is not None and coded.codec in ("jpeg", "webp")
    # the one margin rule of every digital link: MCS picked 1 dB below the SNR
    assert 8 * len(coded.data) <= bit_budget(uses, 10.0, "mcs") \
        == math.floor(uses * spectral_efficiency(10.0 - MCS_MARGIN_DB))
    assert 0 < coded.channel_uses <= uses
    data = bl.pack(coded)
    assert bl.channel_uses(data) == coded.channel_uses
    decoded = bl.decode(data, *frame.shape[:2])
    assert np.array_equal(decoded, coded.image)
    assert psnr(frame, decoded) > 30  # far above what JSCC gives a frame at 10 dB


def test_more_snr_buys_more_quality_and_rayleigh_works(frame):
    uses = frame.size // 12
    low, high = (bl.code_background(frame, s, uses, ("jpeg", "webp")) for s in (5.0, 20.0))
    assert psnr(frame, high.image) > psnr(frame, low.image) + 3
    faded = bl.code_background(frame, 10.0, uses, ("jpeg",), channel=ChannelConfig("rayleigh"),
                               rng=np.random.default_rng(1))
    assert faded is not None and faded.channel_uses <= uses


def test_below_the_mcs_cliff_nothing_is_sent(frame):
    assert bl.code_background(frame, -8.0, frame.size // 12) is None


def test_unknown_codec_is_refused(frame):
    with pytest.raises(ValueError, match="unknown background codec"):
        bl.code_background(frame, 10.0, 1000, ("gif",))


def _payload(stream: bytes, codec_id: int = 0) -> bytes:
    return bl._HEAD.pack(codec_id, 100) + stream


def _jpeg(width: int, height: int) -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00", "shorter than its header"),
    (_payload(b"junk", codec_id=9), "unknown codec id"),
    (_payload(b"\xff\xd8 not a jpeg at all"), "not a readable image"),
    (_payload(_jpeg(64, 48)), "expected 32x24"),
    (_payload(_jpeg(32, 24), codec_id=1), "is a JPEG"),
    (_payload(_jpeg(32, 24)[:-400]), "does not decode"),
    (_payload(b"\x00\x00\x01" * 50, codec_id=2), "hevc"),
])
def test_malformed_payloads_raise_one_line_errors(data, message):
    with pytest.raises(ValueError, match=message) as err:
        bl.decode(data, 24, 32)
    assert "\n" not in str(err.value)


@settings(max_examples=150, deadline=None)
@given(codec_id=st.integers(0, 3), body=st.binary(max_size=600))
def test_fuzzed_payloads_raise_value_error_or_decode_to_the_stated_size(codec_id, body):
    try:
        image = bl.decode(_payload(body, codec_id), 24, 32)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert image.shape == (24, 32, 3)


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(1, 400), flips=st.lists(st.integers(0, 10_000), max_size=8))
def test_damaged_real_streams_never_crash_the_decoder(cut, flips):
    data = bytearray(_payload(_jpeg(32, 24)))
    for i in flips:
        data[i % len(data)] ^= 0x5A
    try:
        image = bl.decode(bytes(data[:-cut]), 24, 32)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert image.shape == (24, 32, 3)
