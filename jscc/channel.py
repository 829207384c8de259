r"""Channel models over complex baseband symbols.

Conventions (shared by the whole project):

* Symbols are complex with unit average energy, :math:`\frac{1}{k}\sum_i |z_i|^2 = 1`
  over the ``k`` symbols of one transmission (one image).
* AWGN at SNR :math:`\gamma` dB adds :math:`n \sim \mathcal{CN}(0, \sigma^2)` with
  :math:`\sigma^2 = 10^{-\gamma/10}` per complex symbol, i.e. :math:`\sigma^2/2` per real
  dimension.
* Rayleigh block fading: :math:`y = h z + n` with :math:`h \sim \mathcal{CN}(0, 1)` constant
  over a block of ``block_size`` consecutive symbols and independent across blocks.
  With receiver CSI the output is the linear MMSE estimate
  :math:`\hat z = h^* y / (|h|^2 + \sigma^2)` (zero forcing, :math:`y/h`, has unbounded
  error in deep fades); without CSI the receiver gets :math:`y` as is.
* Per-frame flat fading (:class:`FrameChannel`): one gain :math:`h_t` for everything frame
  ``t`` sends, drawn per frame independently (:func:`rayleigh_per_frame`) or as a Jakes
  process at a Doppler frequency (:func:`jakes_per_frame`); the receiver equalises (MMSE).
* One complex symbol is one *channel use*; an image of ``H x W x 3`` values has
  ``3HW`` *source values*; the bandwidth ratio is channel uses per source value.

All functions work on torch tensors so that the JSCC model trains through them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

SnrDb = float | torch.Tensor


def real_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Pair real values into complex symbols.

    x: real tensor (B, 2K, ...) whose channel pairs (0,1), (2,3), ... become one
    complex channel. Returns complex64 (B, K, ...).
    """
    b, c = x.shape[:2]
    if c % 2:
        raise ValueError(f"need an even number of real channels to pair, got {c}")
    x = x.reshape(b, c // 2, 2, *x.shape[2:]).movedim(2, -1).contiguous()
    return torch.view_as_complex(x.float())


def complex_to_real(z: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`real_to_complex`: complex (B, K, ...) -> real (B, 2K, ...)."""
    x = torch.view_as_real(z).movedim(-1, 2)
    return x.reshape(z.shape[0], -1, *z.shape[2:])


def normalize_power(z: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-12):
    """Scale each batch item to unit average symbol energy.

    z: complex (B, ...). mask: optional real/bool tensor broadcastable to z marking the
    symbols actually sent (1) and those not sent (0); the average is taken over sent
    symbols only and unsent symbols are zeroed. Returns complex (B, ...).
    """
    dims = tuple(range(1, z.dim()))
    energy = z.real**2 + z.imag**2
    if mask is None:
        mean = energy.mean(dim=dims, keepdim=True)
        return z / torch.sqrt(mean + eps)
    m = mask.to(energy.dtype).expand_as(energy)
    mean = (energy * m).sum(dim=dims, keepdim=True) / m.sum(dim=dims, keepdim=True).clamp_min(1)
    return z * m / torch.sqrt(mean + eps)


def noise_variance(snr_db: SnrDb) -> torch.Tensor | float:
    """Noise variance per complex symbol for unit-energy symbols: 10^(-SNR/10)."""
    if isinstance(snr_db, torch.Tensor):
        return torch.pow(10.0, -snr_db / 10.0)
    return 10.0 ** (-snr_db / 10.0)


def _per_item(value: SnrDb, z: torch.Tensor) -> torch.Tensor | float:
    """Broadcast a per-item value (B,) against z (B, ...)."""
    if isinstance(value, torch.Tensor) and value.dim() == 1:
        return value.to(z.device).view(-1, *([1] * (z.dim() - 1)))
    return value


def complex_noise(shape: torch.Size, variance, device=None, generator=None) -> torch.Tensor:
    """Circularly-symmetric Gaussian noise CN(0, variance), complex64 of ``shape``."""
    std = torch.sqrt(torch.as_tensor(variance, dtype=torch.float32, device=device) / 2)
    re = torch.randn(shape, device=device, generator=generator)
    im = torch.randn(shape, device=device, generator=generator)
    return torch.complex(re, im) * std


def awgn(z: torch.Tensor, snr_db: SnrDb, generator: torch.Generator | None = None):
    """Additive white Gaussian noise: y = z + n, n ~ CN(0, 10^(-SNR/10)).

    z: complex (B, ...) at unit average energy. snr_db: float or (B,) tensor in dB.
    Returns complex (B, ...).
    """
    var = _per_item(noise_variance(snr_db), z)
    return z + complex_noise(z.shape, var, z.device, generator)


def rayleigh_block(
    z: torch.Tensor,
    snr_db: SnrDb,
    block_size: int,
    csi: bool = True,
    generator: torch.Generator | None = None,
):
    """Rayleigh block fading plus AWGN: y = h z + n, h ~ CN(0, 1) per block.

    z: complex (B, ...); the symbols of each item are taken in flattened order and
    cut into blocks of ``block_size`` (the last block may be shorter).
    csi: True returns the MMSE-equalised conj(h) y / (|h|^2 + sigma^2); False returns y.
    Returns complex (B, ...).
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    b = z.shape[0]
    flat = z.reshape(b, -1)
    k = flat.shape[1]
    n_blocks = math.ceil(k / block_size)
    h = complex_noise((b, n_blocks), 1.0, z.device, generator)
    h = h.repeat_interleave(block_size, dim=1)[:, :k]
    var = _per_item(noise_variance(snr_db), flat)
    y = h * flat + complex_noise(flat.shape, var, z.device, generator)
    if csi:
        y = h.conj() * y / (h.real**2 + h.imag**2 + var)
    return y.reshape(z.shape)


@dataclass(frozen=True)
class ChannelConfig:
    """A channel as the pipeline and the experiments configure it.

    kind: "awgn" or "rayleigh"; block_size: symbols per fading block (rayleigh only);
    csi: receiver knows h (rayleigh only).
    """

    kind: Literal["awgn", "rayleigh"] = "awgn"
    block_size: int = 64
    csi: bool = True

    def __post_init__(self):
        if self.kind not in ("awgn", "rayleigh"):
            raise ValueError(f"unknown channel {self.kind!r}: use 'awgn' or 'rayleigh'")

    def __call__(self, z: torch.Tensor, snr_db: SnrDb, generator=None) -> torch.Tensor:
        """Pass complex symbols z (B, ...) through the channel at ``snr_db``."""
        if self.kind == "awgn":
            return awgn(z, snr_db, generator)
        return rayleigh_block(z, snr_db, self.block_size, self.csi, generator)


PEDESTRIAN_DOPPLER_HZ = 5.56  # 3 km/h at a 2 GHz carrier: v f_c / c = 0.833 * 2e9 / 3e8


def rayleigh_per_frame(n_frames: int, rng: np.random.Generator) -> np.ndarray:
    r"""Block Rayleigh fading with one block per frame: :math:`h_t \sim \mathcal{CN}(0, 1)`,
    independent across frames.

    Input: ``n_frames``; ``rng``. Output: complex128 (n_frames,), :math:`E|h_t|^2 = 1`. The
    draws are taken in order, so the first ``k`` gains do not depend on ``n_frames``.
    """
    return (rng.standard_normal((n_frames, 2)) @ np.array([1.0, 1.0j])) / math.sqrt(2.0)


def jakes_per_frame(n_frames: int, fps: float, rng: np.random.Generator,
                    doppler_hz: float = PEDESTRIAN_DOPPLER_HZ, paths: int = 32) -> np.ndarray:
    r"""Correlated Rayleigh fading sampled once per frame: Clarke/Jakes' model as a sum of
    ``paths`` equal-power scatterers,

    .. math:: h(t) = \frac{1}{\sqrt{M}} \sum_{m=1}^{M}
              e^{\,j (2 \pi f_D t \cos\alpha_m + \phi_m)}

    with arrival angles :math:`\alpha_m` and phases :math:`\phi_m` uniform on
    :math:`[0, 2\pi)`, sampled at :math:`t = i / \mathrm{fps}`. Its autocorrelation tends to
    :math:`J_0(2 \pi f_D \tau)` (coherence time about :math:`0.42 / f_D`: 76 ms at the
    default pedestrian Doppler, 3 km/h at 2 GHz) and :math:`h(t)` to
    :math:`\mathcal{CN}(0, 1)` as ``paths`` grows.

    Inputs: ``n_frames``; ``fps`` (frames per second); ``rng``; ``doppler_hz``
    (:math:`f_D`, Hz); ``paths`` (:math:`M`). Output: complex128 (n_frames,),
    :math:`E|h|^2 = 1`.
    """
    if fps <= 0 or doppler_hz < 0 or paths < 1:
        raise ValueError(f"need fps > 0, doppler_hz >= 0, paths >= 1; got {fps}, "
                         f"{doppler_hz}, {paths}")
    alpha, phi = rng.uniform(0.0, 2 * math.pi, (2, paths))
    t = np.arange(n_frames)[:, None] / fps
    return np.exp(1j * (2 * math.pi * doppler_hz * t * np.cos(alpha) + phi)).sum(1) \
        / math.sqrt(paths)


class FrameChannel:
    r"""Per-frame flat fading plus AWGN, as a stateful channel for an offline run.

    Everything frame ``t`` sends (its symbols, a background sent with it) sees one gain
    :math:`h_t` from ``gains``; the runner sets :attr:`frame` before each frame. For
    complex input :math:`z` (B, ...) at unit average energy the output is

    .. math:: y = h_t z + n, \quad n \sim \mathcal{CN}(0, \sigma^2),\quad
              \sigma^2 = 10^{-\gamma/10}, \qquad
              \hat z = \frac{h_t^* y}{|h_t|^2 + \sigma^2}

    (the receiver knows :math:`h_t` and equalises with linear MMSE), complex (B, ...). The
    link's SNR :math:`\gamma` (``snr_db``: the mean SNR of a fading link, or one
    receiver's own SNR in multicast) belongs to the channel: the ``snr_db`` a sender passes
    to :meth:`__call__` is what it *believes* and is ignored. ``gains`` of all ones make
    this plain AWGN at ``snr_db``.
    """

    kind = "frame"

    def __init__(self, gains: np.ndarray, snr_db: float) -> None:
        self.gains = np.asarray(gains, dtype=np.complex128)
        self.snr_db = float(snr_db)
        self.frame = 0

    @property
    def power_gain(self) -> float:
        """:math:`|h_t|^2` of the current frame."""
        return float(abs(self.gains[self.frame]) ** 2)

    def __call__(self, z: torch.Tensor, snr_db: SnrDb = 0.0, generator=None) -> torch.Tensor:
        """Pass complex symbols z (B, ...) of the current frame through the channel."""
        h = complex(self.gains[self.frame])
        var = noise_variance(self.snr_db)
        y = h * z + complex_noise(z.shape, var, z.device, generator)
        return (h.conjugate() * y / (abs(h) ** 2 + var)).to(z.dtype)


def capacity(snr_db: SnrDb):
    """Shannon capacity of the AWGN channel, bits per complex channel use: log2(1 + SNR)."""
    if isinstance(snr_db, torch.Tensor):
        return torch.log2(1 + torch.pow(10.0, snr_db / 10.0))
    return math.log2(1 + 10.0 ** (snr_db / 10.0))


def source_values(height: int, width: int, channels: int = 3) -> int:
    """Number of real source values of an image: H * W * C."""
    return height * width * channels


def channel_uses(n_source_values: int, ratio: float) -> int:
    """Complex channel uses for ``n_source_values`` at bandwidth ratio ``ratio`` (rounded up)."""
    return math.ceil(n_source_values * ratio)


def bandwidth_ratio(n_channel_uses: int | float, n_source_values: int | float) -> float:
    """Channel uses per source value."""
    if n_source_values <= 0:
        raise ValueError("source value count must be positive")
    return n_channel_uses / n_source_values


def side_info_channel_uses(bits: int, bits_per_use: float = 1.0) -> int:
    """Channel uses to carry ``bits`` of side information (default 1 bit per use)."""
    return math.ceil(bits / bits_per_use)
