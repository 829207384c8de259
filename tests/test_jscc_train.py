"""JSCC training: data loading, schedule, a smoke run on real images, resume, CLI."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from jscc.data import CropSampler, MixedSampler, PhotoCropSampler, load_images
from jscc.export import load_checkpoint_model
from jscc.model import AdaptiveJSCC, JSCCConfig
from jscc.train import (
    EMA_DECAY,
    TrainConfig,
    Trainer,
    make_optimizer,
    make_sampler,
    recalibrate_batchnorm,
    resolve_precision,
    train,
)
from stream.cli import main

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def image_zip(samples, tmp_path_factory) -> Path:
    """A zip of the 16 real cronkite frames (256 x 256 gray PNG)."""
    path = tmp_path_factory.mktemp("data") / "cronkite.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for png in sorted((samples / "cronkite").glob("*.png")):
            zf.write(png, f"faces/{png.name}")
    return path


def tiny(**kw) -> TrainConfig:
    base = dict(model="edge", epochs=2, batch_size=4, crop=32, steps_per_epoch=2)
    return TrainConfig(**{**base, **kw})


def test_load_images_from_zip_folder_and_cache(image_zip, samples, tmp_path):
    stack = load_images(image_zip, cache_dir=tmp_path / "cache")
    assert stack.shape == (16, 256, 256, 3) and stack.dtype == np.uint8
    assert np.array_equal(stack[..., 0], stack[..., 2])  # gray decoded as RGB
    cached = list((tmp_path / "cache").glob("*.npy"))
    assert len(cached) == 1
    assert np.array_equal(load_images(image_zip, cache_dir=tmp_path / "cache"), stack)
    assert np.array_equal(load_images(samples / "cronkite"), stack)


def test_load_images_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_images(tmp_path / "nothing.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        load_images(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot decode image"):
        load_images(tmp_path / "bad")


def test_crop_sampler_batches_mixed_sizes():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in
              [(40, 50), (33, 32), (64, 64), (32, 90)]]
    sampler = CropSampler(images, 32)
    batches = list(sampler.batches(2, rng))
    assert len(batches) == sampler.steps_per_epoch(2) == 2
    assert batches[0].shape == (2, 3, 32, 32) and batches[0].dtype == np.float32
    assert 0 <= batches[0].min() and batches[0].max() <= 1
    with pytest.raises(ValueError, match="smaller than the crop size 48"):
        CropSampler(images, 48)


def test_schedule_follows_the_paper_proportions():
    cfg = TrainConfig(epochs=80)
    assert cfg.lr_at(29) == 5e-4 and cfg.lr_at(30) == 5e-5
    assert not cfg.frozen_at(59) and cfg.frozen_at(60)
    assert cfg.warmup_at(7) and not cfg.warmup_at(8)
    assert cfg.temperature_at(0) == 5.0
    # the whole run decays the temperature as much as the paper's 400 epochs do
    assert cfg.temperature_at(80) == pytest.approx(5.0 * math.exp(-0.015 * 400))


def test_smoke_run_resumes_and_keeps_the_epoch_count(image_zip, tmp_path):
    cfg = tiny(epochs=3)
    first = Trainer(cfg, tmp_path / "run")
    sampler = CropSampler(load_images(image_zip), cfg.crop)
    first.run_epoch(sampler, progress=False)  # then "the machine stops"
    assert (tmp_path / "run" / "last.pt").exists()
    assert not list((tmp_path / "run").glob("*.tmp"))

    trainer = train(cfg, image_zip, tmp_path / "run", cache_dir=None, progress=False)
    assert trainer.epoch == 3
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert [r["epoch"] for r in log["epochs"]] == [1, 2, 3]
    row = log["epochs"][-1]
    assert set(row) >= {"loss", "psnr", "rate", "lr", "temperature", "seconds", "frozen",
                        "warmup"}
    assert [r["warmup"] for r in log["epochs"]] == [False] * 3  # round(0.1 * 3) = 0
    assert 1 / 12 - 1e-6 <= row["rate"] <= 1 / 6 + 1e-6
    assert math.isfinite(row["loss"]) and row["steps"] == 2

    # a training checkpoint is not shipped weights: the loader says how to export it
    from jscc.model import load_weights

    with pytest.raises(ValueError, match="training checkpoint, export it first"):
        load_weights(tmp_path / "run" / "last.pt")

    # rerunning a finished run trains nothing more
    assert train(cfg, image_zip, tmp_path / "run", cache_dir=None, progress=False).epoch == 3
    # other settings refuse to resume
    with pytest.raises(ValueError, match="other settings"):
        train(tiny(epochs=3, lr=1e-3), image_zip, tmp_path / "run", cache_dir=None,
              progress=False)

    # a checkpoint written before a setting existed resumes with that setting's default
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    del ckpt["train_config"]["distortion"]
    torch.save(ckpt, tmp_path / "run" / "last.pt")
    assert train(cfg, image_zip, tmp_path / "run", cache_dir=None, progress=False).epoch == 3
    with pytest.raises(ValueError, match="other settings"):
        train(tiny(epochs=3, distortion="psnr"), image_zip, tmp_path / "run", cache_dir=None,
              progress=False)


def test_bf16_epochs_resume_an_fp32_run_and_the_log_says_which(image_zip, tmp_path):
    cfg = tiny(epochs=2)
    sampler = CropSampler(load_images(image_zip), cfg.crop)
    Trainer(cfg, tmp_path / "run", precision="fp32").run_epoch(sampler, progress=False)
    trainer = Trainer(cfg, tmp_path / "run", precision="bf16")
    assert trainer.resume()
    stats = trainer.run_epoch(sampler, progress=False)
    assert math.isfinite(stats.loss) and 5 < stats.psnr < 40
    log = json.loads((tmp_path / "run" / "log.json").read_text())["epochs"]
    assert [r["precision"] for r in log] == ["fp32", "bf16"]
    # the weights stay fp32 and load into a plain model
    model, _ = load_checkpoint_model(tmp_path / "run" / "last.pt")
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_bf16_forward_matches_fp32_closely(image_zip):
    torch.manual_seed(0)
    model = AdaptiveJSCC(JSCCConfig("small", (8, 16, 32))).eval()
    batch = torch.from_numpy(next(CropSampler(load_images(image_zip), 32).batches(
        8, np.random.default_rng(1))))
    gen = torch.Generator().manual_seed(3)
    full = model(batch, 10.0, level=4, generator=gen).x_hat
    gen.manual_seed(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = model(batch, 10.0, level=4, generator=gen).x_hat.float()
    assert (full - half).abs().max() < 0.02
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("auto", "cpu") in ("fp32", "bf16")
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp8", "cpu")


def test_frozen_phase_trains_only_the_decoder(image_zip, tmp_path):
    cfg = tiny(epochs=1, freeze_frac=0.0)
    trainer = Trainer(cfg, tmp_path / "frozen")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run_epoch(CropSampler(load_images(image_zip), cfg.crop), progress=False)
    after = dict(trainer.model.named_parameters())
    changed = {k.split(".")[0] for k in after if not torch.equal(before[k], after[k])}
    assert changed == {"from_latent", "channel_decoder", "source_decoder"}


def test_batchnorm_statistics_are_a_plain_average_over_the_recalibration_batches(image_zip):
    torch.manual_seed(0)
    model = AdaptiveJSCC(JSCCConfig("small", (8, 16, 32))).eval()
    batches = list(itertools.islice(CropSampler(load_images(image_zip), 32).batches(
        4, np.random.default_rng(2)), 4))

    def stats(order):
        used = recalibrate_batchnorm(model, [batches[i] for i in order], (0.0, 20.0),
                                     np.random.default_rng(5), torch.device("cpu"))
        assert used == 4
        return {k: v.clone() for k, v in model.state_dict().items() if "running" in k}

    first = stats([0, 1, 2, 3])
    bn = model.source_encoder[2]
    assert not model.training and bn.momentum == 0.1  # modes and momentum restored
    # a plain average does not depend on the order of the batches (a running one would);
    # the stem's statistics see the pixels only, not the SNR and level each batch draws
    again = stats([0, 1, 2, 3])
    assert all(torch.equal(first[k], again[k]) for k in first)
    stem_mean = first["source_encoder.2.running_mean"]
    swapped = stats([3, 2, 1, 0])["source_encoder.2.running_mean"]
    assert torch.allclose(stem_mean, swapped, atol=1e-6)  # before any SNR modulation


def test_loss_falls_on_real_images(image_zip):
    torch.manual_seed(0)
    model = AdaptiveJSCC(JSCCConfig("small", (8, 16, 32))).train()
    opt = make_optimizer(model, 3e-3)
    sampler = CropSampler(load_images(image_zip), 32)
    batch = torch.from_numpy(next(sampler.batches(8, np.random.default_rng(1))))
    losses = []
    for _ in range(15):
        out = model(batch, torch.full((8,), 10.0), temperature=5.0)
        loss = ((out.x_hat - batch) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])


def test_cli_train_and_export(image_zip, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["jscc", "train", "--data", str(image_zip), "--epochs", "1", "--batch-size",
                 "4", "--steps-per-epoch", "1", "--out", str(out), "--cache", "",
                 "--no-progress"])
    assert code == 0 and (out / "last.pt").exists()
    (out / "COMMAND.txt").write_text("# how\nsemstream jscc train --data x\n")
    weights = tmp_path / "w" / "edge.pt"
    assert main(["jscc", "export", "--checkpoint", str(out / "last.pt"), "--out",
                 str(weights)]) == 0
    card = (tmp_path / "w" / "MODEL_CARD-edge.md").read_text()
    assert "1 of 1 planned epochs" in card and "semstream jscc train --data x" in card
    assert "2-core CPU machine, no GPU" in card
    assert main(["jscc", "train", "--data", str(tmp_path / "none.zip"), "--out",
                 str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_warmup_trains_every_level_and_leaves_the_policy_alone(image_zip, tmp_path):
    cfg = tiny(epochs=1, warmup_frac=1.0)
    trainer = Trainer(cfg, tmp_path / "warm")
    before = [p.clone() for p in trainer.model.policy.parameters()]
    stats = trainer.run_epoch(CropSampler(load_images(image_zip), cfg.crop), progress=False)
    assert stats.warmup
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.policy.parameters(),
                                                 strict=True))


def test_photo_crops_mix_in_at_the_same_pixel_count(samples):
    rng = np.random.default_rng(0)
    photos = list(load_images(samples / "cronkite"))  # 256 x 256 real frames
    big = PhotoCropSampler(photos, pixels=16 * 32 * 32, sides=(64, 128), zoom=(0.5, 1.0))
    for _ in range(6):
        b = big.batch(rng)
        side = b.shape[-1]
        assert b.shape == (16 * 32 * 32 // side**2, 3, side, side) and side in (64, 128)
        assert b.dtype == np.float32 and 0 <= b.min() and b.max() <= 1
    small = CropSampler(photos, 32)
    mixed = MixedSampler(small, big, photo_share=0.5)
    assert mixed.steps_per_epoch(4) == 2 * small.steps_per_epoch(4)
    batches = mixed.batches(4, rng)
    sides = [next(batches).shape[-1] for _ in range(40)]
    assert 32 in sides and {64, 128} & set(sides)
    with pytest.raises(ValueError, match="smaller than the largest crop side"):
        PhotoCropSampler(photos, 1024, sides=(300,))
    with pytest.raises(ValueError, match=r"needs --photos"):
        make_sampler(tiny(photo_share=0.3), samples / "cronkite")


def test_photo_patches_share_every_batch(samples, image_zip):
    """--photo-patches replaces the same share of every small-image batch by crop-size
    photo patches: batches keep their shape, the last rows are photo content."""
    from dynbg.video import read_frames

    rng = np.random.default_rng(0)
    photos = [f.image for f in read_frames(samples / "carphone.mp4", max_frames=4)]  # colour
    patches = PhotoCropSampler(photos, pixels=8 * 32 * 32, sides=(32,), zoom=(0.25, 1.0))
    small = CropSampler(load_images(image_zip), 32)  # gray talking head: R = G = B
    mixed = MixedSampler(small, None, 0.0, patches, patch_share=0.25)
    for batch in itertools.islice(mixed.batches(8, rng), 3):
        assert batch.shape == (8, 3, 32, 32) and batch.dtype == np.float32
        gray = [bool(np.all(b[0] == b[1]) and np.all(b[1] == b[2])) for b in batch]
        assert gray == [True] * 6 + [False] * 2
    with pytest.raises(ValueError, match="patch share"):
        MixedSampler(small, None, 0.0, patches, patch_share=1.0)
    with pytest.raises(ValueError, match=r"needs --photos"):
        make_sampler(tiny(photo_patches=0.3), image_zip)


def test_cpu_budget_stops_an_equal_budget_run(image_zip, tmp_path):
    trainer = Trainer(tiny(epochs=50), tmp_path / "budget")
    sampler = CropSampler(load_images(image_zip), 32)
    trainer.fit(sampler, progress=False, cpu_budget_s=1e-9)
    assert trainer.epoch == 1 and trainer.log[0]["cpu_seconds"] > 0
    again = Trainer(tiny(epochs=50), tmp_path / "budget")
    again.resume()
    again.fit(sampler, progress=False, cpu_budget_s=1e-9)  # the resumed budget is spent
    assert again.epoch == 1


def test_torchrun_trains_data_parallel_on_two_cpu_processes(image_zip, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "stream.cli", "jscc", "train", "--data", str(image_zip), "--epochs", "2",
           "--batch-size", "4", "--steps-per-epoch", "4", "--threads", "1", "--cache", "",
           "--no-progress", "--out", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    log = json.loads((out / "log.json").read_text())
    assert log["world_size"] == 2
    # each of the two processes ran half of the epoch's 4 steps
    assert [r["steps"] for r in log["epochs"]] == [2, 2]
    model, _ = load_checkpoint_model(out / "last.pt")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_new_run_can_start_from_another_runs_weights(image_zip, tmp_path):
    first = train(tiny(epochs=1), image_zip, tmp_path / "a", cache_dir=None, progress=False)
    second = Trainer(tiny(epochs=1, init=str(tmp_path / "a" / "last.pt")), tmp_path / "b")
    second.start_from(second.cfg.init)
    # the moving average of the first run's weights is what it stands for
    for a, b in zip(first.ema.state_dict().values(), second.model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    other = Trainer(tiny(epochs=1, model="x8"), tmp_path / "c")
    with pytest.raises(ValueError, match="holds model"):
        other.start_from(tmp_path / "a" / "last.pt")


def test_the_checkpoint_keeps_a_moving_average_of_the_weights(image_zip, tmp_path):
    trainer = Trainer(tiny(epochs=1, steps_per_epoch=1, warmup_frac=1.0), tmp_path / "run")
    start = {k: v.clone() for k, v in trainer.model.named_parameters()}
    trainer.run_epoch(CropSampler(load_images(image_zip), 32), progress=False)
    trained = dict(trainer.model.named_parameters())
    averaged = dict(trainer.ema.named_parameters())
    moved = [k for k in start if not torch.equal(start[k], trained[k])]
    assert moved
    for k in moved:  # one step: average = start + (1 - decay) (trained - start)
        expected = torch.lerp(start[k], trained[k].detach(), 1 - EMA_DECAY)
        assert torch.allclose(averaged[k], expected, atol=1e-7)
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    model, _ = load_checkpoint_model(tmp_path / "run" / "last.pt")
    assert torch.equal(dict(model.named_parameters())[moved[0]], ckpt["ema"][moved[0]])
    assert json.loads((tmp_path / "run" / "log.json").read_text())["epochs"][0][
        "ema_decay"] == EMA_DECAY


def test_random_level_share_outside_unit_interval_is_refused():
    """--random-level-frac is a share of each batch: values outside 0..1 are refused."""
    assert tiny(random_level_frac=1.0).random_level_frac == 1.0
    with pytest.raises(ValueError, match="random-level share 1.5"):
        tiny(random_level_frac=1.5)


def test_psnr_distortion_weighs_every_image_alike():
    """--distortion psnr is minus the mean per-image PSNR (dB): halving any one image's MSE
    lowers it by the same 10 log10(2)/B, where the MSE loss barely notices a clean image."""
    from jscc.train import distortion

    mse = torch.tensor([1e-2, 1e-4])
    assert distortion(mse, "mse").item() == pytest.approx(0.00505)
    assert distortion(mse, "psnr").item() == pytest.approx(-30.0)
    for i in range(2):
        better = mse.clone()
        better[i] /= 2
        assert (distortion(better, "psnr") - distortion(mse, "psnr")).item() == \
            pytest.approx(-10 * math.log10(2) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="distortion 'ssim'"):
        tiny(distortion="ssim")
