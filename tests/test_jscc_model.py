"""The adaptive-rate JSCC model: shapes, rates, power, masking, policy gradients, weight files."""

from __future__ import annotations

import copy

import pytest
import torch

from jscc.channel import ChannelConfig
from jscc.layers import fold_batchnorm, thermometer
from jscc.model import (
    CONFIGS,
    AdaptiveJSCC,
    JSCCConfig,
    get_config,
    load_weights,
    save_weights,
)

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def model() -> AdaptiveJSCC:
    torch.manual_seed(0)
    return AdaptiveJSCC(get_config("edge")).eval()


def test_presets_have_the_documented_shape():
    assert CONFIGS["paper"].widths == (64, 128, 256)
    assert (CONFIGS["paper"].latent_channels, CONFIGS["paper"].downsample) == (16, 4)
    for cfg in CONFIGS.values():
        assert (cfg.groups, cfg.always_on_groups, cfg.levels) == (8, 4, 5)
        # every preset spans 1/12 .. 1/6 channel uses per source value
        assert cfg.latent_channels == 16 * (cfg.downsample // 4) ** 2
    with pytest.raises(ValueError, match="unknown JSCC config"):
        get_config("huge")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_preset_sends_1_12_to_1_6_and_keeps_the_size(name):
    torch.manual_seed(0)
    m = AdaptiveJSCC(get_config(name)).eval()
    x = torch.rand(2, 3, 37, 45)
    with torch.no_grad():
        low, high = m(x, 10.0, level=0), m(x, 10.0, level=4)
    assert low.x_hat.shape == x.shape
    d = m.cfg.downsample
    cells = -(-37 // d) * -(-45 // d)
    planes = m.cfg.latent_channels // 2
    torch.testing.assert_close(low.rate, torch.full((2,), planes / 2 * cells / (3 * 37 * 45)))
    torch.testing.assert_close(high.rate, 2 * low.rate)
    z, level, mask = m.encode(x, 10.0, level=2)
    sent = m.cfg.planes_sent(2)
    assert (z[:, sent:] == 0).all() and (z[:, :sent] != 0).any()
    energy = (z[:, :sent].abs() ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(energy, torch.ones(2), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("h,w", [(33, 47), (5, 3), (32, 32), (18, 64)])
def test_any_size_comes_back_at_its_size(model, h, w):
    x = torch.rand(2, 3, h, w)
    with torch.no_grad():
        out = model(x, torch.tensor([3.0, 17.0]))
    assert out.x_hat.shape == x.shape
    assert out.x_hat.min() >= 0 and out.x_hat.max() <= 1
    assert out.level.dtype == torch.long and out.level.shape == (2,)
    ch, cw = -(-h // 4), -(-w // 4)
    expected = (4 + out.level.float()) * ch * cw / (3 * h * w)
    torch.testing.assert_close(out.rate, expected)


def test_rate_runs_from_1_12_to_1_6_at_32x32(model):
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        low = model(x, 10.0, level=0).rate
        high = model(x, 10.0, level=4).rate
        chosen = model(x, torch.linspace(0, 20, 4)).rate
    torch.testing.assert_close(low, torch.full((4,), 1 / 12))
    torch.testing.assert_close(high, torch.full((4,), 1 / 6))
    assert ((chosen >= 1 / 12 - 1e-6) & (chosen <= 1 / 6 + 1e-6)).all()


def test_forced_levels_per_item(model):
    levels = torch.tensor([0, 1, 2, 3, 4])
    with torch.no_grad():
        out = model(torch.rand(5, 3, 32, 32), 5.0, level=levels)
    assert out.level.tolist() == levels.tolist()
    torch.testing.assert_close(out.rate, (4 + levels.float()) * 64 / 3072)
    assert out.group_mask.sum(1).tolist() == (4 + levels).tolist()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        policy = model(x, 5.0).level
        mixed = model(x, 5.0, level=torch.tensor([-1, (policy[1].item() + 1) % 5])).level
    assert mixed[0] == policy[0] and mixed[1] == (policy[1] + 1) % 5
    with pytest.raises(ValueError, match="level must be in 0..4"):
        model(torch.rand(1, 3, 8, 8), 5.0, level=5)


def test_sent_symbols_have_unit_power_and_unsent_groups_are_zero(model):
    with torch.no_grad():
        z, level, mask = model.encode(torch.rand(5, 3, 20, 28), 7.0, level=torch.arange(5))
    assert z.dtype == torch.complex64 and z.shape == (5, 8, 5, 7)
    assert level.tolist() == [0, 1, 2, 3, 4]
    energy = z.real**2 + z.imag**2
    for b in range(5):
        sent = int(mask[b].sum())
        assert sent == 4 + b
        assert energy[b, :sent].mean().item() == pytest.approx(1.0, abs=1e-5)
        assert energy[b, sent:].abs().sum() == 0


def test_unsent_groups_do_not_reach_the_decoder(model):
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        z, level, mask = model.encode(x, 10.0, level=1)
        clean = model.decode(z, 10.0, level)
        junk = z.clone()
        junk[:, 5:] = torch.randn_like(junk[:, 5:]) * 10
        assert torch.equal(model.decode(junk, 10.0, level), clean)
        # the sent groups do matter
        junk[:, :5] += 1.0
        assert not torch.allclose(model.decode(junk, 10.0, level), clean)


def test_noise_lowers_quality_and_rayleigh_runs(model):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        z, level, _ = model.encode(x, 20.0, level=4)
        clean = model.decode(z, 20.0, level)
        noisy = model(x, 20.0, ChannelConfig("rayleigh", block_size=8), level=4, generator=g)
    assert noisy.x_hat.shape == clean.shape
    assert not torch.allclose(noisy.x_hat, clean)


def test_policy_learns_through_straight_through_gumbel():
    torch.manual_seed(0)
    m = AdaptiveJSCC(JSCCConfig("tiny", (8, 8, 16))).train()
    out = m(torch.rand(8, 3, 16, 16), torch.rand(8) * 20, temperature=2.0)
    loss = out.group_mask.mean()  # the rate term alone
    loss.backward()
    grads = [p.grad for p in m.policy.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_thermometer_turns_on_the_first_k_groups():
    one_hot = torch.eye(5)
    assert thermometer(one_hot).tolist() == [
        [0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]


def test_folded_batchnorm_computes_the_same():
    torch.manual_seed(0)
    m = AdaptiveJSCC(get_config("edge")).train()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        for _ in range(3):
            m(torch.rand(4, 3, 24, 24) * 2, 10.0)
    m.eval()
    folded = fold_batchnorm(copy.deepcopy(m))
    assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in folded.modules())
    x = torch.rand(2, 3, 21, 30)
    with torch.no_grad():
        z, lv, _ = m.encode(x, 5.0)
        z2, lv2, _ = folded.encode(x, 5.0)
        torch.testing.assert_close(z2, z, atol=1e-4, rtol=1e-4)
        assert torch.equal(lv2, lv)
        torch.testing.assert_close(folded.decode(z, 5.0, lv, size=(21, 30)),
                                   m.decode(z, 5.0, lv, size=(21, 30)), atol=1e-4, rtol=1e-4)


def test_weights_round_trip_and_refusals(tmp_path):
    torch.manual_seed(0)
    m = AdaptiveJSCC(get_config("edge")).eval()
    path = save_weights(m, tmp_path / "edge.pt", meta={"epoch": 3})
    loaded, meta = load_weights(path, expect="edge")
    assert meta == {"epoch": 3}
    for k, v in m.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v.half().to(v.dtype), atol=0, rtol=0)

    with pytest.raises(ValueError, match="holds config 'edge'.*expected 'paper'"):
        load_weights(path, expect="paper")

    blob = torch.load(path, weights_only=True)
    key = "to_latent.weight"
    blob["state_dict"][key] = torch.zeros(12, 64, 3, 3)
    torch.save(blob, tmp_path / "bad-shape.pt")
    with pytest.raises(ValueError, match=r"to_latent.weight has shape \(12, 64, 3, 3\)"):
        load_weights(tmp_path / "bad-shape.pt")

    blob["config"]["widths"] = [8, 8, 8]
    torch.save(blob, tmp_path / "bad-config.pt")
    with pytest.raises(ValueError, match="this code's 'edge' preset"):
        load_weights(tmp_path / "bad-config.pt")

    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot read JSCC weights"):
        load_weights(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="semstream jscc export"):
        load_weights(tmp_path / "missing.pt")
