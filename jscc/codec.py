"""Inference API of the JSCC model for the pipeline: numpy images in, complex symbols out.

Images are H x W x 3 uint8 RGB. ``JSCCCodec.encode`` gives a :class:`Transmission`
holding exactly the sent complex64 symbols (unit average energy) and everything the
receiver needs; ``decode`` turns the received symbols back into an image. The codec
runs the model in eval mode without gradients, BatchNorm folded into the convolutions,
with a small fixed number of torch threads (this project targets a 2-core machine).
On a GPU the convolution stages run under autocast (fp16 by default, see
``jscc.device.autocast_dtype``); the policy, the power normalisation and everything on
the symbols stay fp32. On a CPU that computes bf16 in hardware (AMX, AVX512-BF16) "auto"
runs them in bf16 (1.3-1.7x faster, -0.02..0.00 dB, ``jscc.device.jscc_precision``), on
other CPUs fp32.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jscc import DEFAULT_MODEL
from jscc.channel import ChannelConfig
from jscc.device import autocast_children, autocast_dtype, jscc_precision, resolve_device
from jscc.layers import fold_batchnorm
from jscc.model import AdaptiveJSCC, load_weights


@dataclass
class Transmission:
    """One encoded image.

    symbols: complex64 1-D array of the sent symbols (unit average energy), plane-major:
    the first ``planes_sent`` complex latent planes of shape ``latent_hw`` each. level: rate level
    chosen (0..levels-1). snr_db: SNR the encoder was told. size: (H, W) of the image the
    model coded (after the resolution check). original_size: (H, W) before it; scale:
    the resolution-check factor (1.0 when not scaled).
    """

    symbols: np.ndarray
    level: int
    snr_db: float
    size: tuple[int, int]
    latent_hw: tuple[int, int]
    planes_sent: int
    original_size: tuple[int, int]
    scale: float = 1.0

    @property
    def channel_uses(self) -> int:
        """Complex symbols sent."""
        return int(self.symbols.size)

    @property
    def source_values(self) -> int:
        """Real values of the coded image: 3 x H x W (after the resolution check)."""
        return 3 * self.size[0] * self.size[1]

    @property
    def rate(self) -> float:
        """Channel uses per source value."""
        return self.channel_uses / self.source_values


def resolution_check(image: np.ndarray, max_pixels: int | None) -> tuple[np.ndarray, float]:
    """Paper II.D: shrink ``image`` (H x W x 3) so that H x W <= ``max_pixels``.

    Both sides are scaled by the same factor s = sqrt(max_pixels / (H x W)) rounded down
    to whole pixels (area interpolation). Returns (image, s); s = 1.0 and the image
    unchanged when it is already small enough or ``max_pixels`` is None.
    """
    h, w = image.shape[:2]
    if max_pixels is None or h * w <= max_pixels:
        return image, 1.0
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be at least 1, got {max_pixels}")
    import cv2

    s = math.sqrt(max_pixels / (h * w))
    nh, nw = max(1, math.floor(h * s)), max(1, math.floor(w * s))
    return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA), s


def restore_resolution(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Receiver side of the resolution check: resize H' x W' x 3 back to ``size`` (H, W)."""
    if image.shape[:2] == tuple(size):
        return image
    import cv2

    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"expected an H x W x 3 uint8 RGB image, got shape {shape} {dtype}")


def _padded(image: np.ndarray, multiple: int) -> np.ndarray:
    """Edge-replicate H x W x 3 to multiples of ``multiple``, as the model pads internally."""
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else image


# the convolution stages of AdaptiveJSCC that run under autocast on a GPU
AUTOCAST_STAGES = ("source_encoder", "channel_encoder", "to_latent", "from_latent",
                   "channel_decoder", "source_decoder")


class JSCCCodec:
    """A loaded JSCC model wrapped for numpy images (no grad, eval mode)."""

    def __init__(self, model: AdaptiveJSCC, device: str = "cpu", threads: int | None = 2,
                 precision: str = "auto"):
        """device: a ``--device`` value (auto | cpu | cuda | cuda:N). threads: torch
        intra-op threads to set for the process; None keeps the current setting (e.g. a
        worker of a process pool that already chose one). precision: auto | fp32 | fp16 |
        bf16 for the convolutions (``jscc.device.jscc_precision``)."""
        if threads is not None:
            torch.set_num_threads(max(1, threads))
        self.device = resolve_device(str(device))
        # folded BatchNorm and channels-last layout: about 1.5x faster convolutions on CPU
        model = fold_batchnorm(copy.deepcopy(model).to(self.device).eval())
        self.model = model.to(memory_format=torch.channels_last)
        self.cfg = model.cfg
        self.precision = jscc_precision(self.device, precision)
        self.autocast = autocast_dtype(self.device, self.precision)
        autocast_children(self.model, AUTOCAST_STAGES, self.autocast, self.device.type)

    @classmethod
    def load(cls, name: str = DEFAULT_MODEL, path: str | Path | None = None, device: str = "cpu",
             threads: int | None = 2, precision: str = "auto") -> JSCCCodec:
        """Codec from shipped weights jscc/weights/<name>.pt, or from ``path``."""
        from jscc.export import WEIGHTS_DIR, default_weights_path

        if path is None and not default_weights_path(name).is_file():
            shipped = ", ".join(sorted(f.stem for f in WEIGHTS_DIR.glob("*.pt"))) or "none"
            raise FileNotFoundError(f"no shipped JSCC weights named {name!r} (shipped: "
                                    f"{shipped}): choose one with --model, or give --weights FILE")
        device = str(resolve_device(str(device)))
        model, _ = load_weights(path or default_weights_path(name),
                                expect=None if path else name, device=device)
        return cls(model, device, threads, precision)

    # --- encoding ----------------------------------------------------------------------------

    @torch.inference_mode()
    def _encode_same_shape(self, images: list[np.ndarray], snrs: list[float],
                           level: int | None) -> list[tuple[np.ndarray, int, tuple[int, int]]]:
        """Encode images of one padded shape in one batch: (symbols, level, latent hw)."""
        x = torch.from_numpy(np.stack(images)).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0).contiguous(memory_format=torch.channels_last)
        snr = torch.tensor(snrs, dtype=torch.float32, device=self.device)
        z, lv, _ = self.model.encode(x, snr, level)
        hw = tuple(z.shape[-2:])
        out = []
        for b in range(z.shape[0]):
            k = int(lv[b])
            sent = z[b, : self.cfg.planes_sent(k)].reshape(-1)
            out.append((sent.cpu().numpy().astype(np.complex64), k, hw))
        return out

    def encode_batch(self, images: Sequence[np.ndarray], snr_db: float | Sequence[float],
                     level: int | None = None,
                     max_pixels: int | None = None) -> list[Transmission]:
        """Encode several images (any sizes) at ``snr_db`` (one value or one per image).

        Images are grouped by their size rounded up to a multiple of the model's
        downsampling factor and each group runs
        as one batch (the edge padding matches what the model does for a single image).
        level: force a rate level; None lets the policy choose. max_pixels: apply the
        resolution check first.
        """
        if len(images) == 0:
            raise ValueError("encode_batch needs at least one image")
        snrs = [float(snr_db)] * len(images) if np.isscalar(snr_db) else [float(s) for s in snr_db]
        if len(snrs) != len(images):
            raise ValueError(f"got {len(snrs)} SNR values for {len(images)} images")
        checked = []
        for im in images:
            _check_image(im)
            small, scale = resolution_check(im, max_pixels)
            checked.append((small, scale, im.shape[:2]))
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (small, _, _) in enumerate(checked):
            groups.setdefault(_padded(small, self.cfg.downsample).shape[:2], []).append(i)
        result: list[Transmission | None] = [None] * len(images)
        for idx in groups.values():
            coded = self._encode_same_shape([_padded(checked[i][0], self.cfg.downsample)
                                             for i in idx],
                                            [snrs[i] for i in idx], level)
            for i, (symbols, k, hw) in zip(idx, coded, strict=True):
                small, scale, orig = checked[i]
                result[i] = Transmission(
                    symbols=symbols, level=k, snr_db=snrs[i], size=small.shape[:2],
                    latent_hw=hw, planes_sent=self.cfg.planes_sent(k),
                    original_size=tuple(orig), scale=scale)
        return result

    def encode(self, image: np.ndarray, snr_db: float, level: int | None = None,
               max_pixels: int | None = None) -> Transmission:
        """Encode one H x W x 3 uint8 image; see :meth:`encode_batch`."""
        return self.encode_batch([image], snr_db, level, max_pixels)[0]

    # --- decoding ----------------------------------------------------------------------------

    @torch.inference_mode()
    def decode_batch(self, txs: Sequence[Transmission],
                     received: Sequence[np.ndarray | None] | None = None,
                     restore: bool = True) -> list[np.ndarray]:
        """Decode several transmissions; those with equal latent and image size share a batch.

        received: per transmission the received symbols (same length as its ``symbols``),
        or None for the sent symbols. Returns H x W x 3 uint8 images in input order.
        """
        received = [None] * len(txs) if received is None else list(received)
        if len(received) != len(txs):
            raise ValueError(f"got {len(received)} received arrays for {len(txs)} transmissions")
        groups: dict[tuple, list[int]] = {}
        for i, (tx, y) in enumerate(zip(txs, received, strict=True)):
            y = tx.symbols if y is None else np.asarray(y)
            if y.shape != tx.symbols.shape:
                raise ValueError(f"received {y.size} symbols for transmission {i}, "
                                 f"the transmission sent {tx.channel_uses}")
            received[i] = y
            groups.setdefault((tx.latent_hw, tx.size), []).append(i)
        out: list[np.ndarray | None] = [None] * len(txs)
        for (hw, size), idx in groups.items():
            planes = self.cfg.latent_channels // 2
            full = torch.zeros(len(idx), planes, *hw, dtype=torch.complex64)
            for row, i in enumerate(idx):
                sent = torch.from_numpy(received[i].astype(np.complex64, copy=False))
                full[row, : txs[i].planes_sent] = sent.view(-1, *hw)
            snr = torch.tensor([txs[i].snr_db for i in idx], dtype=torch.float32)
            level = torch.tensor([txs[i].level for i in idx])
            x_hat = self.model.decode(full.to(self.device), snr.to(self.device),
                                      level.to(self.device), size=size)
            images = (x_hat.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().byte().cpu().numpy()
            for row, i in enumerate(idx):
                image = images[row]
                out[i] = restore_resolution(image, txs[i].original_size) if restore else image
        return out

    def decode(self, tx: Transmission, received: np.ndarray | None = None,
               restore: bool = True) -> np.ndarray:
        """Image from the received symbols (complex, same length as ``tx.symbols``).

        received None decodes the sent symbols (noiseless). restore: undo the resolution
        check (resize to ``tx.original_size``). Returns H x W x 3 uint8.
        """
        return self.decode_batch([tx], [received], restore)[0]

    def transmit(self, image: np.ndarray, snr_db: float,
                 channel: ChannelConfig = ChannelConfig(),  # noqa: B008 (frozen dataclass)
                 level: int | None = None, generator: torch.Generator | None = None,
                 max_pixels: int | None = None) -> tuple[np.ndarray, Transmission]:
        """Encode, pass the sent symbols through ``channel`` at ``snr_db``, decode.

        Returns (decoded H x W x 3 uint8, the Transmission).
        """
        tx = self.encode(image, snr_db, level, max_pixels)
        z = torch.from_numpy(tx.symbols)[None]
        received = channel(z, float(snr_db), generator)[0].numpy()
        return self.decode(tx, received), tx
