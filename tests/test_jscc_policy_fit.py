"""Refitting the rate policy alone: exact per-level costs, only the policy moves, the
policy follows the cost, and the CLI's refit exports with its card line."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from jscc.data import MixedSampler
from jscc.model import AdaptiveJSCC, get_config, load_weights
from jscc.policy_fit import PolicyFitConfig, fit_policy, level_costs
from jscc.train import TrainConfig, make_sampler
from stream.cli import main

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def faces(samples) -> MixedSampler:
    """Endless batches of 32x32 crops of the 16 real cronkite frames."""
    return make_sampler(TrainConfig(batch_size=8), samples / "cronkite", cache_dir=None)


def _batch(faces: MixedSampler, n: int = 8) -> torch.Tensor:
    return torch.from_numpy(next(faces.batches(n, np.random.default_rng(1))))


@pytest.mark.parametrize("price", ["flat", "capacity"])
def test_each_levels_cost_is_what_sending_at_that_level_costs(faces, price):
    torch.manual_seed(0)
    model = AdaptiveJSCC(get_config("edge")).eval()
    x, snr = _batch(faces), torch.linspace(-5, 20, 8)
    _, cost = level_costs(model, x, snr, 0.5, "psnr", torch.Generator().manual_seed(3),
                          rate_price=price)
    weight = 0.5 * (torch.log2(1 + 10 ** (snr / 10)) if price == "capacity" else 1.0)
    for k in range(model.cfg.levels):
        with torch.no_grad():  # the same noise draws: AWGN does not depend on the symbols
            out = model(x, snr, level=k, generator=torch.Generator().manual_seed(3))
        mse = ((out.x_hat - x) ** 2).mean(dim=(1, 2, 3))
        torch.testing.assert_close(cost[:, k], 10 * torch.log10(mse)
                                   + weight * k / (model.cfg.levels - 1))


@pytest.mark.parametrize(("weight", "level"), [(1.0, 0), (-1.0, 4)])
def test_the_refit_policy_follows_the_cost_and_nothing_else_moves(faces, weight, level):
    torch.manual_seed(0)
    model = AdaptiveJSCC(get_config("edge")).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = PolicyFitConfig(rate_weight=weight, epochs=3, steps_per_epoch=50, batch_size=8,
                          lr=3e-2)
    log = fit_policy(model, cfg, faces, progress=False)
    assert [r["epoch"] for r in log] == [1, 2, 3] and log[-1]["lr"] == pytest.approx(3e-3)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("policy.") for k in changed)
    x, snr = _batch(faces), torch.linspace(-5, 20, 8)
    with torch.no_grad():
        chosen = model.encode(x, snr)[1]
    assert (chosen == level).all()


def test_cli_refits_a_checkpoint_and_the_export_says_so(samples, tmp_path, capsys):
    data = tmp_path / "faces.zip"
    with zipfile.ZipFile(data, "w") as zf:
        for png in sorted((samples / "cronkite").glob("*.png")):
            zf.write(png, png.name)
    run = tmp_path / "run"
    assert main(["jscc", "train", "--data", str(data), "--epochs", "1", "--batch-size", "4",
                 "--steps-per-epoch", "1", "--out", str(run), "--cache", "",
                 "--no-progress"]) == 0
    refit = tmp_path / "refit"
    assert main(["jscc", "fit-policy", "--checkpoint", str(run / "last.pt"), "--data",
                 str(data), "--out", str(refit), "--epochs", "1", "--steps-per-epoch", "2",
                 "--batch-size", "4", "--cache", "", "--no-progress"]) == 0
    weights = tmp_path / "w" / "edge.pt"
    assert main(["jscc", "export", "--checkpoint", str(refit / "last.pt"), "--out",
                 str(weights)]) == 0
    card = (tmp_path / "w" / "MODEL_CARD-edge.md").read_text()
    assert "Rate policy refitted afterwards" in card and "1 of 1 planned epochs" in card
    assert load_weights(weights, "edge")[0].cfg.name == "edge"  # as the pipeline loads them
    assert main(["jscc", "fit-policy", "--checkpoint", str(tmp_path / "none.pt"), "--data",
                 str(data), "--out", str(refit)]) == 2
    assert "not found" in capsys.readouterr().err


def test_frozen_batchnorm_keeps_the_policys_running_statistics(faces):
    torch.manual_seed(0)
    model = AdaptiveJSCC(get_config("edge")).eval()
    stats = {k: v.clone() for k, v in model.policy.state_dict().items() if "running" in k}
    cfg = PolicyFitConfig(rate_weight=1.0, epochs=3, steps_per_epoch=50, batch_size=8,
                          lr=3e-2, batchnorm="frozen")
    fit_policy(model, cfg, faces, progress=False)
    after = model.policy.state_dict()
    assert stats and all(torch.equal(after[k], v) for k, v in stats.items())
    with torch.no_grad():
        chosen = model.encode(_batch(faces), torch.linspace(-5, 20, 8))[1]
    assert (chosen == 0).all()
