"""The pipeline's JSCC API: Transmission, batching, resolution check, shipped weights."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from jscc.channel import ChannelConfig
from jscc.codec import JSCCCodec, Transmission, resolution_check, restore_resolution
from jscc.export import default_weights_path
from jscc.metrics import psnr
from jscc.model import AdaptiveJSCC, get_config

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def frames(samples) -> list[np.ndarray]:
    """Three real RGB frames: 640x480 signer, 176x144 car phone, 768x432 street."""
    out = []
    for name, index in [("asl-again.mkv", 20), ("carphone.mp4", 30),
                        ("one-by-one-person.mp4", 200)]:
        with av.open(str(samples / name)) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i == index:
                    out.append(f.to_ndarray(format="rgb24"))
                    break
    return out


@pytest.fixture(scope="module")
def codec() -> JSCCCodec:
    return JSCCCodec.load("edge")


@pytest.fixture(scope="module")
def random_codec() -> JSCCCodec:
    torch.manual_seed(0)
    return JSCCCodec(AdaptiveJSCC(get_config("edge")))


def test_shipped_weights_exist_with_a_model_card():
    path = default_weights_path("edge")
    assert path.is_file() and path.stat().st_size < 8_000_000
    card = (path.parent / "MODEL_CARD-edge.md").read_text()
    assert "CIFAR-10" in card and "semstream jscc train" in card


def test_transmission_holds_exactly_the_sent_symbols(codec, frames):
    image = frames[0][100:165, 200:283]  # 65 x 83, not a multiple of 4
    tx = codec.encode(image, snr_db=10.0)
    assert isinstance(tx, Transmission)
    assert tx.symbols.dtype == np.complex64 and tx.symbols.ndim == 1
    assert tx.latent_hw == (17, 21) and tx.planes_sent == 4 + tx.level
    assert tx.channel_uses == tx.planes_sent * 17 * 21 == tx.symbols.size
    assert tx.source_values == 3 * 65 * 83
    assert tx.rate == pytest.approx(tx.channel_uses / tx.source_values)
    assert np.mean(np.abs(tx.symbols) ** 2) == pytest.approx(1.0, abs=1e-4)
    assert codec.decode(tx).shape == image.shape


def test_forced_level_sets_the_rate(codec, frames):
    image = frames[1][:64, :64]
    sizes = [codec.encode(image, 10.0, level=k).channel_uses for k in range(5)]
    assert sizes == [(4 + k) * 16 * 16 for k in range(5)]


def test_round_trip_at_30db_beats_random_weights(codec, random_codec, frames):
    gen = torch.Generator().manual_seed(0)
    for image in frames:
        crop = image[: min(image.shape[0], 160), : min(image.shape[1], 200)]
        decoded, tx = codec.transmit(crop, 30.0, ChannelConfig(), generator=gen)
        baseline, _ = random_codec.transmit(crop, 30.0, ChannelConfig(), generator=gen)
        assert decoded.shape == crop.shape and decoded.dtype == np.uint8
        assert psnr(crop, decoded) > 22.0, f"{crop.shape}: {psnr(crop, decoded):.1f} dB"
        assert psnr(crop, decoded) > psnr(crop, baseline) + 8.0


def test_noise_costs_quality_and_rayleigh_works(codec, frames):
    crop = frames[0][80:208, 240:368]
    gen = torch.Generator().manual_seed(0)
    clean = psnr(crop, codec.decode(codec.encode(crop, 0.0, level=4)))
    noisy = psnr(crop, codec.transmit(crop, 0.0, ChannelConfig(), level=4, generator=gen)[0])
    faded, _ = codec.transmit(crop, 10.0, ChannelConfig("rayleigh", block_size=32),
                              generator=gen)
    assert noisy < clean - 1.0
    assert faded.shape == crop.shape


def test_batch_matches_single_encodes(codec, frames):
    crops = [frames[0][:50, :70], frames[1][:48, :68], frames[2][100:201, 300:350],
             frames[0][200:232, 100:132]]
    snrs = [0.0, 5.0, 20.0, 12.0]
    batch = codec.encode_batch(crops, snrs)
    for crop, snr, tx in zip(crops, snrs, batch, strict=True):
        one = codec.encode(crop, snr)
        assert (tx.level, tx.size, tx.snr_db) == (one.level, one.size, snr)
        np.testing.assert_allclose(tx.symbols, one.symbols, atol=1e-4)
    decoded = codec.decode_batch(batch + batch[:1])
    for tx, image in zip(batch, decoded, strict=False):
        assert np.abs(image.astype(int) - codec.decode(tx).astype(int)).max() <= 1


def test_resolution_check_and_restore(codec, frames):
    image = frames[0]  # 480 x 640
    small, scale = resolution_check(image, 100_000)
    h, w = small.shape[:2]
    assert h * w <= 100_000 and h * w > 0.99 * 100_000
    assert abs(w / h - 640 / 480) < 0.01
    assert scale == pytest.approx(h / 480, abs=0.01)
    assert resolution_check(image, 10**6) == (image, 1.0)
    assert restore_resolution(small, (480, 640)).shape == image.shape

    decoded, tx = codec.transmit(image, 20.0, max_pixels=20_000)
    assert tx.original_size == (480, 640) and tx.size[0] * tx.size[1] <= 20_000
    assert tx.scale < 1 and decoded.shape == image.shape
    assert codec.decode(tx, restore=False).shape[:2] == tx.size


def test_bad_input_is_refused_clearly(codec, frames, tmp_path):
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        codec.encode(frames[0][..., 0], 10.0)
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        codec.encode(frames[0].astype(np.float32), 10.0)
    tx = codec.encode(frames[1], 10.0)
    with pytest.raises(ValueError, match="the transmission sent"):
        codec.decode(tx, tx.symbols[:-1])
    with pytest.raises(ValueError, match="at least one image"):
        codec.encode_batch([], 10.0)
    with pytest.raises(FileNotFoundError, match="not found"):
        JSCCCodec.load("edge", path=tmp_path / "none.pt")
    with pytest.raises(FileNotFoundError, match=r"named 'tiny' \(shipped: edge, wide\)"):
        JSCCCodec.load("tiny")
