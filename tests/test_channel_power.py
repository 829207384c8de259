"""Unit average energy per channel use: the symbols every message actually puts on the
channel (direct frames, key-information crops, fg-latent cells, JSCC backgrounds, and each
channel kind's input) are measured where they enter the real channel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jscc.channel import ChannelConfig
from stream.core.config import SenderConfig
from stream.core.sender import SenderCore
from tests.test_stream_core import asl, codec  # noqa: F401 (fixtures)


class PowerProbe:
    """The sender's real channel, recording the mean |z|^2 of each transmission it gets."""

    def __init__(self, channel) -> None:
        self.channel, self.kind, self.powers = channel, channel.kind, []

    def __call__(self, z: torch.Tensor, snr_db, generator=None) -> torch.Tensor:
        self.powers.append(float((z.abs() ** 2).mean()))
        return self.channel(z, snr_db, generator)


@pytest.mark.parametrize("settings", [
    {"mode": "direct"},
    {"mode": "proposed"},
    {"mode": "proposed", "fg_latent": True},
    {"mode": "proposed", "fg_latent": True, "snr_db": 0.0},
], ids=["direct", "key", "fg-latent", "fg-latent-0dB"])
def test_every_message_is_sent_at_unit_average_energy(asl, codec, settings):  # noqa: F811
    """Backgrounds go through JSCC here (``background="jscc"``) so that they are measured
    too; the first frame of a proposed run always carries one."""
    cfg = SenderConfig(**{"snr_db": 10.0, "max_pixels": None, "background": "jscc",
                          **settings})
    sender = SenderCore(cfg, codec, keep_mask=True)
    probe = sender.channel = PowerProbe(sender.channel)
    try:
        messages = sum(len(sender.encode(sender.analyse(f)).messages) for f in asl[:6])
    finally:
        sender.close()
    assert len(probe.powers) == messages  # every message with symbols went through it
    assert probe.powers == pytest.approx([1.0] * len(probe.powers), abs=2e-3)


def test_fg_latent_cells_carry_more_than_average_energy_before_normalisation(asl, codec):  # noqa: F811
    """Why the test above matters: the foreground cells of a crop's latent carry more
    energy than the latent's average, so sending them as the codec normalised them would
    put more than unit power on the channel."""
    from stream.core.sender import expand_mask, latent_mask

    sender = SenderCore(SenderConfig(snr_db=10.0, max_pixels=None), codec, keep_mask=True)
    try:
        a = [sender.analyse(f) for f in asl[:3]][-1]
    finally:
        sender.close()
    tx = codec.encode(a.key.crop, 10.0)
    cells = expand_mask(latent_mask(a.key.mask, tx.latent_hw, codec.cfg.downsample),
                        tx.latent_hw)
    planes = tx.symbols.reshape(tx.planes_sent, *tx.latent_hw)
    assert np.mean(np.abs(planes) ** 2) == pytest.approx(1.0, abs=2e-3)
    assert np.mean(np.abs(planes[:, cells]) ** 2) > 1.02


@pytest.mark.parametrize("channel", [ChannelConfig("awgn"), ChannelConfig("rayleigh")])
def test_channel_output_noise_matches_the_snr_convention(channel):
    """Unit-energy input at 10 dB: the AWGN output's error has variance 0.1 per symbol."""
    g = torch.Generator().manual_seed(0)
    z = torch.polar(torch.ones(1, 200_000), torch.rand(1, 200_000, generator=g) * 6.2832)
    y = channel(z, 10.0, g)
    if channel.kind == "awgn":
        assert float(((y - z).abs() ** 2).mean()) == pytest.approx(0.1, rel=0.02)
    else:  # MMSE equalised: error below the noise variance of the unfaded link plus fades
        assert 0.05 < float(((y - z).abs() ** 2).mean()) < 0.2


def test_rayleigh_mmse_output_follows_its_formula_on_known_gains_and_noise():
    """rayleigh_block draws h (one per block) then the noise from the generator: drawn
    again from the same seed, they give y = h z + n and the MMSE output
    conj(h) y / (|h|^2 + sigma^2) exactly, per item at its own SNR."""
    from jscc.channel import complex_noise, rayleigh_block

    z = torch.polar(torch.ones(2, 3, 7), torch.rand(2, 3, 7) * 6.2832)
    snr = torch.tensor([0.0, 10.0])
    var = (10.0 ** (-snr / 10.0)).view(2, 1)
    got = rayleigh_block(z, snr, 4, csi=True, generator=torch.Generator().manual_seed(5))
    raw = rayleigh_block(z, snr, 4, csi=False, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    h = complex_noise((2, 6), 1.0, generator=g).repeat_interleave(4, dim=1)[:, :21]
    y = h * z.reshape(2, -1) + complex_noise((2, 21), var, generator=g)
    assert torch.allclose(raw.reshape(2, -1), y, atol=1e-6)
    expected = h.conj() * y / (h.abs() ** 2 + var)
    assert torch.allclose(got.reshape(2, -1), expected, atol=1e-6)
    assert torch.equal(h[:, 0], h[:, 3]) and not torch.equal(h[:, 3], h[:, 4])  # blocks of 4
