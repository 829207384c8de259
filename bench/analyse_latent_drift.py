"""Why temporal coding (issue 15) still sends most latent cells: how much a JSCC latent cell
changes from one frame to the next, and what makes it change. JSON out.

For each clip (first ``--frames`` frames, the whole frame cut to a multiple of the model's
cell side), the shipped model's latent before power normalisation is computed per frame at
``--snr`` and scaled per plane to unit average energy two ways:

- ``as_coded``: as the codec does it, each frame on its own: the SNR modules' context (the
  per-channel means over the whole picture) and the plane energies are the frame's own, so
  a change anywhere reaches every cell;
- ``frozen``: that context and those energies taken from the first frame and kept, so a
  cell changes only through the pixels in its receptive field.

Reported per clip and way: the share of (cell, frame) pairs whose mean squared change per
symbol against the previous frame exceeds the channel noise variance N0 at 0, 10 and 20 dB,
and the share the temporal sender's rule would send on drift alone (``drift_weight`` x
change > ``threshold`` x N0, ``stream.core.config.TemporalConfig`` defaults); the same for
the last frame against the first (``last_vs_first_frame``: what a cell kept all along
would have drifted by); and, for scale, the share of cells whose pixels changed by a mean
squared error above 1e-4 and 1e-3 (pixel values in [0, 1]).

    .venv/bin/python bench/analyse_latent_drift.py --json docs/results/stream/latent-drift.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from jsonreport import emit  # noqa: E402

from dynbg.video import read_frames  # noqa: E402
from jscc.channel import real_to_complex  # noqa: E402
from jscc.export import default_weights_path  # noqa: E402
from jscc.layers import SNR_UNIT_DB, SNRModulation  # noqa: E402
from jscc.model import AdaptiveJSCC, load_weights  # noqa: E402
from stream.core.config import TemporalConfig  # noqa: E402

CLIPS = ("asl-again.mkv", "asl-help.mkv", "asl-please.mkv", "asl-walk.mkv", "asl-yes.mkv",
         "carphone.mp4")
NOISE_SNRS_DB = (0.0, 10.0, 20.0)


class FrozenContext:
    """While active, every SNR module of ``model`` keeps the context (channel means, SNR)
    of the first picture it sees instead of its current picture's."""

    def __init__(self, model: AdaptiveJSCC) -> None:
        self.modules = [m for m in model.modules() if isinstance(m, SNRModulation)]
        self.saved: dict[int, torch.Tensor] = {}

    def __enter__(self) -> FrozenContext:
        for module in self.modules:
            module.forward = self._forward(module)
        return self

    def __exit__(self, *exc) -> None:
        for module in self.modules:
            del module.forward

    def _forward(self, module: SNRModulation):
        def forward(x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
            ctx = self.saved.setdefault(id(module), torch.cat(
                [x.mean(dim=(2, 3)), snr_db[:, None] / SNR_UNIT_DB], dim=1))
            scale = torch.sigmoid(module.factor(ctx))[:, :, None, None]
            return x * scale + module.shift(ctx)[:, :, None, None]
        return forward


@torch.no_grad()
def raw_latent(model: AdaptiveJSCC, image: np.ndarray, snr_db: float) -> np.ndarray:
    """The complex latent before power normalisation, P x h x w, of an H x W x 3 uint8
    image whose sides are multiples of the cell side."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    snr = torch.tensor([snr_db])
    feats = model.source_encoder(x)
    return real_to_complex(model.to_latent(model.channel_encoder(feats, snr)))[0].numpy()


def shares(changes: np.ndarray, temporal: TemporalConfig) -> dict:
    """Shares of cells over N0 and over the sender's drift rule, per noise SNR."""
    out = {}
    for snr in NOISE_SNRS_DB:
        n0 = 10 ** (-snr / 10)
        out[f"{snr:g}dB"] = {
            "over_n0": round(float((changes > n0).mean()), 4),
            "sent_by_drift_rule": round(float(
                (temporal.drift_weight * changes > temporal.threshold * n0).mean()), 4)}
    return out


def analyse(model: AdaptiveJSCC, frames: list[np.ndarray], snr_db: float,
            temporal: TemporalConfig) -> dict:
    """The report of one clip (see the module docstring)."""
    d = model.cfg.downsample
    h, w = (s // d * d for s in frames[0].shape[:2])
    frames = [np.ascontiguousarray(f[:h, :w]) for f in frames]
    report = {"frames": len(frames), "size": [h, w]}
    for way in ("as_coded", "frozen"):
        if way == "frozen":
            with FrozenContext(model):
                latents = [raw_latent(model, f, snr_db) for f in frames]
        else:
            latents = [raw_latent(model, f, snr_db) for f in frames]
        energy = [np.sqrt((np.abs(z) ** 2).mean(axis=(1, 2), keepdims=True)) for z in latents]
        if way == "frozen":
            energy = [energy[0]] * len(latents)
        z = [a / e for a, e in zip(latents, energy, strict=True)]
        changes = np.stack([(np.abs(z[t] - z[t - 1]) ** 2).mean(axis=0)
                            for t in range(1, len(z))])
        since_first = (np.abs(z[-1] - z[0]) ** 2).mean(axis=0)
        report[way] = {"median_change_per_symbol": float(np.median(changes)),
                       **shares(changes, temporal),
                       "last_vs_first_frame": {
                           "median_change_per_symbol": float(np.median(since_first)),
                           **shares(since_first, temporal)}}
    pix = np.stack([((frames[t].astype(np.float32) - frames[t - 1]) / 255.0) ** 2
                    for t in range(1, len(frames))]).mean(axis=-1)
    cells = pix.reshape(len(frames) - 1, h // d, d, w // d, d).mean(axis=(2, 4))
    report["pixels"] = {"cells_over_1e-4": round(float((cells > 1e-4).mean()), 4),
                        "cells_over_1e-3": round(float((cells > 1e-3).mean()), 4)}
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--snr", type=float, default=10.0, help="SNR the encoder is told, dB")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    model = load_weights(default_weights_path("edge"), expect="edge")[0]
    temporal = TemporalConfig()
    samples = Path(__file__).resolve().parents[1] / "samples"
    clips = {}
    for name in CLIPS:
        frames = [f.image for f in read_frames(samples / name, max_frames=args.frames)]
        clips[name] = analyse(model, frames, args.snr, temporal)
    emit({"command": "bench/analyse_latent_drift.py" + (f" --json {args.json}" if args.json
                                                         else ""),
          "model": "edge", "encoder_snr_db": args.snr,
          "temporal_config": {"threshold": temporal.threshold,
                              "drift_weight": temporal.drift_weight},
          "clips": clips}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
