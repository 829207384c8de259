"""RIFE interpolator on uint8 RGB frames: padding, batching, several instants per pair.

One IFNet pass per frame pair gives the middle-frame flow; every requested instant t is then
a cheap warp and blend (see ``ifnet.blend``), so skip factor k costs one network pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from interp.frames import check_pair, check_times, skip_times, to_uint8
from interp.ifnet import IFNet, blend, check_scale, load_ifnet
from jscc.device import autocast_children, autocast_dtype, resolve_device

DEFAULT_THREADS = 2


class Rife:
    """RIFE HDv3 frame interpolator (CPU or GPU, no grad, eval mode).

    weights: path of flownet.pkl, default the fetched registry file (jscc.zoo "rife-hdv3").
    device: a ``--device`` value (auto | cpu | cuda | cuda:N).
    threads: torch intra-op threads on CPU (None keeps torch's setting).
    precision: auto | fp32 | fp16 | bf16 of the IFBlocks (``jscc.device``; the CPU runs
    fp32 unless bf16 is asked for); the flow sums, warping and blending stay fp32.
    """

    def __init__(self, weights: Path | str | None = None, device: str = "cpu",
                 threads: int | None = DEFAULT_THREADS, precision: str = "auto") -> None:
        if weights is None:
            from jscc import zoo

            weights = zoo.require("rife-hdv3")
        self.device = resolve_device(str(device))
        if threads is not None and self.device.type == "cpu":
            torch.set_num_threads(threads)
        self.net: IFNet = load_ifnet(weights).to(self.device)
        self.autocast = autocast_dtype(self.device, precision)
        autocast_children(self.net, ("block0", "block1", "block2"), self.autocast,
                          self.device.type)

    def _tensor(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """N x 3 x H x W float in [0, 1] from N H x W x 3 uint8 frames."""
        batch = torch.from_numpy(np.stack(frames)).to(self.device)
        return batch.permute(0, 3, 1, 2).float().div_(255.0)

    @torch.inference_mode()
    def interpolate_batch(self, frames0: Sequence[np.ndarray], frames1: Sequence[np.ndarray],
                          times: Sequence[float] = (0.5,), scale: float = 1.0
                          ) -> list[list[np.ndarray]]:
        """Intermediate frames for a batch of pairs of equal size.

        frames0[i], frames1[i]: H x W x 3 uint8 RGB. Returns out[i][j], the frame of pair i at
        times[j] (H x W x 3 uint8). scale: flow resolution knob (0.25, 0.5, 1 or 2).
        """
        if len(frames0) != len(frames1) or not frames0:
            raise ValueError(f"need equal, non-empty lists of frames, got {len(frames0)} and "
                             f"{len(frames1)}")
        for f0, f1 in zip(frames0, frames1, strict=True):
            check_pair(f0, f1)
            check_pair(f0, frames0[0])
        check_times(list(times))
        check_scale(scale)
        h, w = frames0[0].shape[:2]
        m = self.net.pad_multiple(scale)
        pad = (0, (-w) % m, 0, (-h) % m)
        img0 = F.pad(self._tensor(frames0), pad, mode="replicate")
        img1 = F.pad(self._tensor(frames1), pad, mode="replicate")
        flow, mask = self.net.flow(img0, img1, scale)
        outs = [blend(img0, img1, flow, mask, t)[:, :, :h, :w] for t in times]
        arrays = [to_uint8(o.mul(255.0).permute(0, 2, 3, 1).cpu().numpy()) for o in outs]
        return [[a[i] for a in arrays] for i in range(len(frames0))]

    def interpolate(self, frame0: np.ndarray, frame1: np.ndarray, t: float = 0.5,
                    scale: float = 1.0) -> np.ndarray:
        """Frame at time t in (0, 1) between frame0 and frame1 (H x W x 3 uint8 RGB)."""
        return self.interpolate_batch([frame0], [frame1], (t,), scale)[0][0]

    def interpolate_many(self, frame0: np.ndarray, frame1: np.ndarray, k: int,
                         scale: float = 1.0) -> list[np.ndarray]:
        """The k-1 frames at t = i/k between frame0 and frame1 (skip factor k), one net pass."""
        return self.interpolate_batch([frame0], [frame1], skip_times(k), scale)[0]
