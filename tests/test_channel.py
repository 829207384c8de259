import math

import numpy as np
import pytest
import torch

from jscc import channel as ch


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _symbols(b=4, k=20_000, seed=1):
    g = _gen(seed)
    z = torch.complex(torch.randn(b, k, generator=g), torch.randn(b, k, generator=g))
    return ch.normalize_power(z)


def test_normalize_power_unit_energy_per_item():
    z = _symbols() * torch.tensor([[1.0], [3.0], [0.1], [10.0]])
    e = (ch.normalize_power(z).abs() ** 2).mean(dim=1)
    assert torch.allclose(e, torch.ones(4), atol=1e-5)


def test_normalize_power_with_mask_zeroes_unsent_and_averages_sent_only():
    z = _symbols(b=2, k=100)
    mask = torch.zeros(2, 100)
    mask[:, :40] = 1
    out = ch.normalize_power(z * 5, mask)
    assert torch.all(out[:, 40:] == 0)
    assert torch.allclose((out[:, :40].abs() ** 2).mean(dim=1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 20.0])
def test_awgn_measured_snr_matches_request(snr_db):
    z = _symbols()
    y = ch.awgn(z, snr_db, generator=_gen(2))
    noise_power = ((y - z).abs() ** 2).mean().item()
    measured = 10 * math.log10(1.0 / noise_power)
    # 80,000 complex samples: the noise power estimate has relative std ~ 1/sqrt(80k) ~ 0.35%
    assert abs(measured - snr_db) < 0.05


def test_awgn_noise_split_evenly_between_real_and_imaginary():
    z = _symbols()
    n = ch.awgn(z, 0.0, generator=_gen(3)) - z
    assert n.real.var().item() == pytest.approx(0.5, rel=0.02)
    assert n.imag.var().item() == pytest.approx(0.5, rel=0.02)


def test_awgn_per_item_snr():
    z = _symbols(b=2)
    y = ch.awgn(z, torch.tensor([0.0, 20.0]), generator=_gen(4))
    p = ((y - z).abs() ** 2).mean(dim=1)
    assert p[0].item() == pytest.approx(1.0, rel=0.03)
    assert p[1].item() == pytest.approx(0.01, rel=0.03)


def test_rayleigh_blocks_share_one_gain():
    z = torch.ones(1, 256, dtype=torch.complex64)
    y = ch.rayleigh_block(z, 200.0, block_size=64, csi=False, generator=_gen(5))
    blocks = y.reshape(4, 64)
    assert torch.allclose(blocks, blocks[:, :1].expand(-1, 64), atol=1e-6)
    assert not torch.allclose(blocks[0, 0], blocks[1, 0])


def test_rayleigh_without_csi_is_worse_than_with():
    z = _symbols(b=8, k=4096)
    with_csi = ch.rayleigh_block(z, 10.0, 64, csi=True, generator=_gen(6))
    without = ch.rayleigh_block(z, 10.0, 64, csi=False, generator=_gen(6))
    mse_csi = ((with_csi - z).abs() ** 2).mean().item()
    mse_raw = ((without - z).abs() ** 2).mean().item()
    assert mse_raw > 5 * mse_csi


def test_channel_config_dispatch_and_validation():
    z = _symbols(b=1, k=1000)
    assert ch.ChannelConfig("awgn")(z, 30.0).shape == z.shape
    assert ch.ChannelConfig("rayleigh", block_size=10)(z, 30.0).shape == z.shape
    with pytest.raises(ValueError, match="unknown channel"):
        ch.ChannelConfig("bsc")


def test_real_complex_round_trip():
    x = torch.randn(2, 16, 5, 7)
    z = ch.real_to_complex(x)
    assert z.shape == (2, 8, 5, 7) and z.dtype == torch.complex64
    assert torch.equal(z[:, 0].real, x[:, 0]) and torch.equal(z[:, 0].imag, x[:, 1])
    assert torch.equal(ch.complex_to_real(z), x)


def test_capacity_and_bandwidth_helpers():
    assert ch.capacity(0.0) == pytest.approx(1.0)
    assert ch.capacity(10 * math.log10(3)) == pytest.approx(2.0)
    assert torch.allclose(ch.capacity(torch.tensor([0.0])), torch.tensor([1.0]))
    n = ch.source_values(32, 32)
    assert n == 3072
    assert ch.channel_uses(n, 1 / 6) == 512
    assert ch.bandwidth_ratio(256, n) == pytest.approx(1 / 12)
    assert ch.side_info_channel_uses(33) == 33
    assert ch.side_info_channel_uses(33, bits_per_use=2) == 17


def test_per_frame_fading_processes():
    from scipy.special import j0

    rng = np.random.default_rng(0)
    iid = ch.rayleigh_per_frame(50_000, rng)
    assert np.mean(np.abs(iid) ** 2) == pytest.approx(1.0, rel=0.03)
    assert abs(np.mean(iid[1:] * iid[:-1].conj())) < 0.02  # independent frame to frame
    first = ch.rayleigh_per_frame(5, np.random.default_rng(3))
    assert np.array_equal(first, ch.rayleigh_per_frame(9, np.random.default_rng(3))[:5])
    # Jakes: E|h|^2 = 1 and lag-1 correlation J0(2 pi f_D / fps), over many realisations
    fps, fd = 30.0, ch.PEDESTRIAN_DOPPLER_HZ
    runs = np.stack([ch.jakes_per_frame(40, fps, rng) for _ in range(400)])
    assert np.mean(np.abs(runs) ** 2) == pytest.approx(1.0, rel=0.05)
    lag1 = np.mean(runs[:, 1:] * runs[:, :-1].conj()).real
    assert lag1 == pytest.approx(j0(2 * np.pi * fd / fps), abs=0.05)
    with pytest.raises(ValueError, match="fps"):
        ch.jakes_per_frame(3, 0.0, rng)


def test_frame_channel_applies_the_frame_gain_and_its_own_snr():
    g = torch.Generator().manual_seed(0)
    z = torch.polar(torch.ones(1, 100_000), torch.rand(1, 100_000, generator=g) * 6.2832)
    link = ch.FrameChannel(np.ones(3), snr_db=10.0)  # all-ones gains: AWGN at 10 dB
    y = link(z, 30.0, g)  # the sender's belief (30 dB) does not change the noise
    assert float(((y - z).abs() ** 2).mean()) == pytest.approx(0.1 / 1.1, rel=0.03)
    fade = ch.FrameChannel(np.array([1.0, 0.1j]), snr_db=10.0)
    fade.frame = 1
    assert fade.power_gain == pytest.approx(0.01)
    y = fade(z, 10.0, g)  # deep fade: MMSE output shrinks towards 0, error near 1/(1+0.1)
    assert float((y.abs() ** 2).mean()) < 0.2
    assert float(((y - z).abs() ** 2).mean()) == pytest.approx(1 / 1.1, rel=0.05)
