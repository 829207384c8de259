import math

import av
import numpy as np
import pytest

from jscc.channel import ChannelConfig
from jscc.digital.budget import MCS_MARGIN_DB, bit_budget, bits_per_use, decodes, fading_gains
from jscc.digital.image_codecs import CODECS, GREY, HEVC, JPEG, WEBP, RateSearch, hevc_coded_shape
from jscc.digital.mcs import LTE_CQI, spectral_efficiency
from jscc.digital.separation import SeparationConfig, separation_baseline
from jscc.metrics import psnr


@pytest.fixture(scope="module")
def frame(samples) -> np.ndarray:
    """Frame 30 of carphone.mp4 (144 x 176 x 3 RGB): a real talking head."""
    with av.open(str(samples / "carphone.mp4")) as container:
        for i, f in enumerate(container.decode(video=0)):
            if i == 30:
                return f.to_ndarray(format="rgb24")
    raise AssertionError("carphone.mp4 has fewer than 31 frames")


@pytest.fixture(scope="module")
def tiles(frame) -> list[np.ndarray]:
    """Four 32 x 32 crops (CIFAR-sized)."""
    return [np.ascontiguousarray(frame[y:y + 32, x:x + 32]) for y, x in
            ((20, 40), (60, 80), (100, 20), (40, 130))]


def test_capacity_budget_formula():
    assert bit_budget(512, 10.0) == math.floor(512 * math.log2(11))
    assert bit_budget(512, 0.0) == 512  # log2(1 + 1) = 1 bit per use
    assert bit_budget(0, 20.0) == 0
    with pytest.raises(ValueError, match="channel uses"):
        bit_budget(-1, 10.0)


def test_mcs_budget_has_a_cliff_and_stays_below_capacity():
    lowest = LTE_CQI[0].min_snr_db
    assert bit_budget(1000, lowest + MCS_MARGIN_DB - 0.1, "mcs") == 0
    assert spectral_efficiency(lowest) == pytest.approx(LTE_CQI[0].efficiency)
    snrs = np.linspace(-10, 30, 81)
    eff = spectral_efficiency(snrs)
    assert np.all(np.diff(eff) >= 0)
    assert np.all(eff < np.log2(1 + 10 ** (snrs / 10)))
    for snr in (0, 5, 10, 15, 20):
        assert bit_budget(512, snr, "mcs") < bit_budget(512, snr, "capacity")


def test_one_margin_rule_for_every_digital_link():
    """Every digital link picks its MCS MCS_MARGIN_DB below the SNR it expects, and a block
    is lost when the SNR the channel realises falls below the threshold of that scheme."""
    for entry in LTE_CQI[:-1]:
        at = entry.min_snr_db + MCS_MARGIN_DB + 1e-9
        assert bits_per_use(at, "mcs") == pytest.approx(entry.efficiency)
        assert bits_per_use(at - 0.05, "mcs") < entry.efficiency
        assert decodes(entry.efficiency, entry.min_snr_db, "mcs")
        assert not decodes(entry.efficiency, entry.min_snr_db - 0.05, "mcs")
    assert decodes(1.0, 0.0, "capacity") and not decodes(1.01, 0.0, "capacity")
    assert not decodes(0.0, 30.0, "mcs")  # nothing sent, nothing arrives


def test_rayleigh_budget_uses_the_realised_gains():
    rng = np.random.default_rng(1)
    assert fading_gains(100, ChannelConfig(), rng) is None
    gains = fading_gains(100, ChannelConfig("rayleigh", block_size=30), rng)
    assert gains.shape == (100,) and len(np.unique(gains)) == 4  # 30+30+30+10
    assert bit_budget(100, 10.0, gains=np.ones(100)) == bit_budget(100, 10.0)
    expected = np.floor(np.log2(1 + 10.0 * gains).sum())
    assert bit_budget(100, 10.0, gains=gains) == expected


@pytest.mark.parametrize("codec", [JPEG, WEBP, HEVC], ids=lambda c: c.name)
def test_search_picks_the_largest_quality_that_fits(codec, tiles):
    search = RateSearch(codec, tiles[0])
    budget = (search.bits(0) + search.bits(len(codec.settings) - 1)) // 2
    fit = search.fit(budget)
    i = codec.settings.index(fit.setting)
    assert fit.bits == 8 * len(codec.encode(tiles[0], fit.setting)) <= budget
    assert i + 1 < len(codec.settings) and search.bits(i + 1) > budget
    assert fit.image.shape == tiles[0].shape and psnr(tiles[0], fit.image) > 20
    assert search.fit(budget + 8 * 10_000).setting == codec.settings[-1]


def test_zero_budget_loses_the_image(tiles):
    fit = RateSearch(WEBP, tiles[1]).fit(0)
    assert fit.lost and fit.bits == 0 and fit.setting is None
    assert fit.image.shape == tiles[1].shape and np.all(fit.image == GREY)


@pytest.mark.parametrize("shape", [(32, 32), (21, 37), (8, 60)])
def test_hevc_intra_round_trip_on_a_real_crop(frame, shape):
    crop = np.ascontiguousarray(frame[30:30 + shape[0], 50:50 + shape[1]])
    data = HEVC.encode(crop, 22)
    padded = hevc_coded_shape(shape) != shape
    assert data[:4 if padded else 0] == (shape[0].to_bytes(2, "big") + shape[1].to_bytes(2, "big")
                                         if padded else b"")
    assert b"x265" not in data  # no encoder-version SEI is sent
    out = HEVC.decode(data, shape)
    assert out.shape == crop.shape and psnr(crop, out) > 30
    assert len(HEVC.encode(crop, 40)) < len(data)


def test_codecs_refuse_bad_images():
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        JPEG.encode(np.zeros((8, 8), np.uint8), 50)
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        RateSearch(HEVC, np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="does not decode"):
        WEBP.decode(b"not an image", (8, 8))


def test_baseline_summary_per_snr(tiles):
    snrs = (-5.0, 10.0, 30.0)
    uses = [[512] * len(tiles)] * len(snrs)
    res = separation_baseline(tiles, snrs, uses, SeparationConfig())
    assert [r["snr"] for r in res] == list(snrs)
    assert set(res[0]["codecs"]) == set(CODECS)
    low, mid, high = res
    assert low["best"]["lost"] == 1.0 and low["best"]["bits"] == 0
    assert high["best"]["lost"] == 0.0 and high["best"]["psnr"] > mid["best"]["psnr"] > 20
    for r in res:
        assert r["best"]["psnr"] >= max(c["psnr"] for c in r["codecs"].values()) - 1e-9
        assert all(c["bits"] <= r["budget_bits"] for c in r["codecs"].values())
    assert sum(high["best"]["wins"].values()) == len(tiles)
    with pytest.raises(ValueError, match="unknown codecs"):
        SeparationConfig(codecs=("jpeg2000",))
    with pytest.raises(ValueError, match="one count per image"):
        separation_baseline(tiles, snrs, uses[:2])


@pytest.mark.parametrize("name", ["jpeg", "webp", "hevc", "hevc444"])
def test_payload_counting_leaves_out_only_session_headers(name, tiles):
    codec = CODECS[name]
    image = tiles[0][:32, :32]
    data = codec.encode(image, codec.settings[len(codec.settings) // 2])
    payload = codec.payload_bytes(data)
    # headers are real but a minor part; the image data itself is always charged
    assert 0.4 * len(data) < payload < len(data)
    every, per_image = RateSearch(codec, image), RateSearch(codec, image, "payload")
    assert per_image.bits(5) == 8 * codec.payload_bytes(every.data(5)) < every.bits(5)
    # a budget between the two sizes fits only when counting the payload
    budget = (per_image.bits(5) + every.bits(5)) // 2
    assert per_image.largest_fitting(budget) >= 5 > (every.largest_fitting(budget) or -1)
    with pytest.raises(ValueError, match="unknown counting"):
        RateSearch(codec, image, "some")
