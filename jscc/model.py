"""The SNR- and rate-adaptive deep JSCC model (Yang & Kim, ICASSP 2022) with width presets.

Shapes: images x are (B, 3, H, W) float in [0, 1], any H and W (padded by replication
to a multiple of the downsampling factor D = 2^(len(widths)-1) and cropped back). The
latent is (B, 2P, h, w) real values with h = ceil(H/D), w = ceil(W/D), paired into P
complex planes (B, P, h, w); the planes form G groups of P/G planes each. The first
``always_on_groups`` groups are always sent; a policy picks a level k in 0..G-A and the
first k selectable groups are sent too (thermometer mask).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from jscc.channel import ChannelConfig, complex_to_real, real_to_complex
from jscc.layers import (
    ModulatedResidualStack,
    PolicyNetwork,
    conv_bn_relu,
    thermometer,
    up_bn_relu,
)


@dataclass(frozen=True)
class JSCCConfig:
    """Model shape.

    widths: channels of the encoder stages, the first at full resolution and each
    further one after a stride-2 convolution (3 widths: latent at 1/4 of the image side,
    4 widths: 1/8). latent_channels: real latent channels (2 per complex plane).
    groups: rate groups the planes are split into. norm: 'bn' (BatchNorm + ReLU, as
    published) or 'gdn' (GDN/IGDN, PReLU residual blocks).
    """

    name: str
    widths: tuple[int, ...]
    latent_channels: int = 16
    groups: int = 8
    always_on_groups: int = 4
    levels: int = 5
    norm: str = "bn"

    def __post_init__(self):
        if len(self.widths) < 2:
            raise ValueError("widths needs at least two stages")
        if self.latent_channels % (2 * self.groups):
            raise ValueError(f"latent_channels ({self.latent_channels}) must be a multiple "
                             "of 2 x groups")
        if self.levels != self.groups - self.always_on_groups + 1:
            raise ValueError("levels must equal groups - always_on_groups + 1")

    @property
    def downsample(self) -> int:
        """Image side / latent side."""
        return 2 ** (len(self.widths) - 1)

    @property
    def planes_per_group(self) -> int:
        """Complex latent planes in one rate group."""
        return self.latent_channels // (2 * self.groups)

    def latent_hw(self, size: tuple[int, int]) -> tuple[int, int]:
        """Latent grid (h, w) of an image of ``size`` (H, W) pixels: each side divided by
        ``downsample``, rounded up (the image is padded to a multiple of it)."""
        return -(-size[0] // self.downsample), -(-size[1] // self.downsample)

    def planes_sent(self, level: int) -> int:
        """Complex latent planes sent at rate level ``level``."""
        return (self.always_on_groups + level) * self.planes_per_group

    def to_dict(self) -> dict:
        """Plain-JSON form (widths as a list)."""
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> JSCCConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return cls(**{**d, "widths": tuple(d["widths"])})


CONFIGS: dict[str, JSCCConfig] = {
    "paper": JSCCConfig("paper", (64, 128, 256)),
    "edge": JSCCConfig("edge", (16, 32, 64)),
    # candidates of the backbone comparison (docs/results/jscc/candidates.md)
    "edge-gdn": JSCCConfig("edge-gdn", (16, 32, 64), norm="gdn"),
    "x8": JSCCConfig("x8", (16, 32, 64, 128), latent_channels=64),
    "x8-gdn": JSCCConfig("x8-gdn", (16, 32, 64, 128), latent_channels=64, norm="gdn"),
    # edge's stages at twice the width: edge's learning curves flatten (capacity-bound)
    "wide": JSCCConfig("wide", (32, 64, 128)),
}


def get_config(name: str) -> JSCCConfig:
    """A preset by name, or ValueError listing the presets."""
    if name not in CONFIGS:
        raise ValueError(f"unknown JSCC config {name!r}: choose one of {', '.join(CONFIGS)}")
    return CONFIGS[name]


@dataclass
class JSCCOutput:
    """Result of :meth:`AdaptiveJSCC.forward`.

    x_hat: (B, 3, H, W) in [0, 1]; level: (B,) long; rate: (B,) channel uses per source
    value sent; group_mask: (B, G) float, 1 for sent groups (carries the straight-through
    gradient in training); logits: (B, levels) policy logits.
    """

    x_hat: torch.Tensor
    level: torch.Tensor
    rate: torch.Tensor
    group_mask: torch.Tensor
    logits: torch.Tensor


def _snr_tensor(snr_db, batch: int, device) -> torch.Tensor:
    """SNR as a (B,) float tensor from a float or a (B,) tensor."""
    snr = torch.as_tensor(snr_db, dtype=torch.float32, device=device)
    if snr.dim() == 0:
        snr = snr.expand(batch)
    if snr.shape != (batch,):
        raise ValueError(f"snr_db must be a float or a ({batch},) tensor, got shape "
                         f"{tuple(snr.shape)}")
    return snr


def _pad_to_multiple(x: torch.Tensor, m: int) -> torch.Tensor:
    """Replicate-pad (B, C, H, W) on the bottom/right to multiples of m."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


def group_power_normalize(z: torch.Tensor) -> torch.Tensor:
    """Scale each complex plane of z (B, P, h, w) to unit average symbol energy."""
    energy = (z.real**2 + z.imag**2).mean(dim=(2, 3), keepdim=True)
    return z / torch.sqrt(energy + 1e-12)


class AdaptiveJSCC(nn.Module):
    """Deep JSCC encoder, rate policy and decoder; see the module docstring for shapes."""

    def __init__(self, cfg: JSCCConfig):
        super().__init__()
        self.cfg = cfg
        w, norm = cfg.widths, cfg.norm
        first = conv_bn_relu(3, w[0], 7, norm=norm)
        first[0].padding = (0, 0)  # the reflection pad before it supplies the border
        self.source_encoder = nn.Sequential(
            nn.ReflectionPad2d(3), *first,
            *(conv_bn_relu(a, b, 3, stride=2, norm=norm) for a, b in pairwise(w)),
        )
        self.channel_encoder = ModulatedResidualStack(w[-1], norm=norm)
        self.to_latent = nn.Conv2d(w[-1], cfg.latent_channels, 3, 1, 1)
        self.policy = PolicyNetwork(w[-1], cfg.levels)
        self.from_latent = conv_bn_relu(cfg.latent_channels, w[-1], 3, norm=norm)
        self.channel_decoder = ModulatedResidualStack(w[-1], norm=norm)
        self.source_decoder = nn.Sequential(
            *(up_bn_relu(a, b, norm=norm) for a, b in pairwise(w[::-1])),
            nn.ReflectionPad2d(2),
            nn.Conv2d(w[0], 3, 5),
            nn.Sigmoid(),
        )

    # --- pieces -------------------------------------------------------------------------

    def encoder_modules(self) -> list[nn.Module]:
        """Modules on the transmitter side (frozen in the fine-tuning phase)."""
        return [self.source_encoder, self.channel_encoder, self.to_latent, self.policy]

    def level_one_hot(self, feats: torch.Tensor, snr: torch.Tensor, level, temperature: float):
        """(logits, one-hot (B, levels)) for forced levels and/or the policy's choice.

        level: None (policy for all), an int, or a (B,) tensor whose entries -1 leave that
        item to the policy. The policy samples with straight-through Gumbel-softmax while
        it is in training mode and takes the arg-max otherwise.
        """
        logits = self.policy(feats, snr)
        if self.policy.training:
            chosen = F.gumbel_softmax(logits, tau=temperature, hard=True)
        else:
            chosen = F.one_hot(logits.argmax(1), self.cfg.levels).to(feats.dtype)
        if level is None:
            return logits, chosen
        lv = torch.as_tensor(level, dtype=torch.long, device=feats.device)
        lv = lv.expand(feats.shape[0]) if lv.dim() == 0 else lv
        if lv.shape != (feats.shape[0],) or lv.min() < -1 or lv.max() >= self.cfg.levels:
            raise ValueError(f"level must be in 0..{self.cfg.levels - 1} (int or (B,) tensor, "
                             "-1 = policy)")
        forced = F.one_hot(lv.clamp_min(0), self.cfg.levels).to(feats.dtype)
        return logits, torch.where((lv >= 0)[:, None], forced, chosen)

    def group_mask(self, one_hot: torch.Tensor) -> torch.Tensor:
        """(B, G) float mask of sent groups: always-on groups then the thermometer."""
        on = one_hot.new_ones(one_hot.shape[0], self.cfg.always_on_groups)
        return torch.cat([on, thermometer(one_hot)], dim=1)

    def plane_mask(self, group_mask: torch.Tensor) -> torch.Tensor:
        """(B, P) mask of sent complex planes from a (B, G) group mask."""
        return group_mask.repeat_interleave(self.cfg.planes_per_group, dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Source features (B, C, h, w) of images x (B, 3, H, W) in [0, 1]."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (B, 3, H, W), got shape {tuple(x.shape)}")
        return self.source_encoder(_pad_to_multiple(x, self.cfg.downsample))

    def all_symbols(self, feats: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        """Complex symbols (B, P, h, w) of every plane, each group at unit average energy;
        a level sends the first planes of it (:meth:`plane_mask`)."""
        latent = self.to_latent(self.channel_encoder(feats, snr))
        return group_power_normalize(real_to_complex(latent))

    def _encode(self, x: torch.Tensor, snr: torch.Tensor, level, temperature: float):
        feats = self.features(x)
        logits, one_hot = self.level_one_hot(feats, snr, level, temperature)
        mask = self.group_mask(one_hot)
        z = self.all_symbols(feats, snr) * self.plane_mask(mask)[:, :, None, None]
        return z, one_hot, mask, logits

    def _decode(self, y: torch.Tensor, snr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = y * self.plane_mask(mask)[:, :, None, None]
        h = self.channel_decoder(self.from_latent(complex_to_real(y)), snr)
        return self.source_decoder(h)

    def rate(self, mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B,) channel uses per source value for a group mask (B, G) and an H x W image."""
        h, w = self.cfg.latent_hw((height, width))
        planes = mask.detach().sum(1) * self.cfg.planes_per_group
        return planes * (h * w) / (3 * height * width)

    # --- public API -----------------------------------------------------------------------

    def forward(
        self,
        x: torch.Tensor,
        snr_db,
        channel: ChannelConfig = ChannelConfig(),  # noqa: B008 (frozen dataclass)
        level: int | torch.Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> JSCCOutput:
        """Encode, pass through ``channel`` at ``snr_db`` (float or (B,) dB), decode.

        x: (B, 3, H, W) in [0, 1]. level: None lets the policy choose, an int or (B,)
        tensor forces it (entries -1 left to the policy). temperature: Gumbel-softmax
        temperature (training only).
        """
        snr = _snr_tensor(snr_db, x.shape[0], x.device)
        z, one_hot, mask, logits = self._encode(x, snr, level, temperature)
        y = channel(z, snr, generator)
        height, width = x.shape[-2:]
        x_hat = self._decode(y, snr, mask)[:, :, :height, :width]
        return JSCCOutput(x_hat, one_hot.argmax(1), self.rate(mask, height, width), mask, logits)

    def encode(self, x: torch.Tensor, snr_db, level: int | torch.Tensor | None = None):
        """Transmitter side: (symbols complex (B, P, h, w), level (B,) long, mask (B, G) bool).

        Symbols are at unit average energy over the sent planes; unsent planes are zero.
        """
        snr = _snr_tensor(snr_db, x.shape[0], x.device)
        z, one_hot, mask, _ = self._encode(x, snr, level, temperature=1.0)
        return z, one_hot.argmax(1), mask > 0.5

    def decode(
        self, y: torch.Tensor, snr_db, level, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Receiver side: received symbols y complex (B, P, h, w) -> x_hat (B, 3, H, W).

        level: int or (B,) tensor, the level the transmitter used (unsent planes are
        ignored). size: (H, W) to crop to; default the padded size (D h, D w).
        """
        snr = _snr_tensor(snr_db, y.shape[0], y.device)
        lv = torch.as_tensor(level, dtype=torch.long, device=y.device).expand(y.shape[0])
        mask = self.group_mask(F.one_hot(lv, self.cfg.levels).float())
        x_hat = self._decode(y, snr, mask)
        if size is not None:
            x_hat = x_hat[:, :, : size[0], : size[1]]
        return x_hat


def parameter_count(model: nn.Module) -> int:
    """Number of parameters of a model."""
    return sum(p.numel() for p in model.parameters())


WEIGHTS_FORMAT = "semstream-jscc-weights/1"


def save_weights(model: AdaptiveJSCC, path: str | Path, half: bool = True,
                 meta: dict | None = None) -> Path:
    """Write ``{format, config, state_dict, meta}`` to ``path`` atomically (fp16 by default)."""
    path = Path(path)
    state = {k: (v.half() if half and v.is_floating_point() else v).clone()
             for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": WEIGHTS_FORMAT, "config": model.cfg.to_dict(), "state_dict": state,
                "meta": meta or {}}, tmp)
    os.replace(tmp, path)
    return path


def check_state_dict(model: nn.Module, state: dict, source: str) -> None:
    """ValueError naming the first missing, unexpected or wrongly shaped tensor of ``state``."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(f"{source} does not fit the model: missing {missing[:3]}, "
                         f"unexpected {extra[:3]}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(f"{source}: {key} has shape {tuple(value.shape)}, the model "
                             f"needs {tuple(expected[key].shape)}")


def load_weights(path: str | Path, expect: str | JSCCConfig | None = None,
                 device: str = "cpu") -> tuple[AdaptiveJSCC, dict]:
    """Load a weights file written by :func:`save_weights`; returns (eval-mode model, meta).

    expect: a preset name or config the file must hold (mismatch -> ValueError). A file
    whose config differs from this code's preset of the same name is refused too.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JSCC weights {path} not found: train and export them with "
                                "`semstream jscc train` / `semstream jscc export`")
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise ValueError(f"cannot read JSCC weights {path}: {type(exc).__name__}") from None
    return weights_from_blob(blob, path, expect, device)


def is_weights_blob(blob: object) -> bool:
    """True for the loaded contents of a file written by :func:`save_weights`."""
    return isinstance(blob, dict) and blob.get("format") == WEIGHTS_FORMAT


def weights_from_blob(blob: object, path: str | Path, expect: str | JSCCConfig | None = None,
                      device: str = "cpu") -> tuple[AdaptiveJSCC, dict]:
    """:func:`load_weights` on contents already read from ``path`` (named in errors)."""
    if not is_weights_blob(blob):
        hint = (": it is a training checkpoint, export it first with `semstream jscc export "
                f"--checkpoint {path} --out WEIGHTS.pt`"
                if isinstance(blob, dict) and "optimizer" in blob else "")
        raise ValueError(f"{path} is not a JSCC weights file ({WEIGHTS_FORMAT}){hint}")
    try:
        cfg = JSCCConfig.from_dict(blob["config"])
    except (TypeError, KeyError) as exc:
        raise ValueError(f"{path} holds an unreadable model config: {exc}") from None
    want = get_config(expect) if isinstance(expect, str) else expect
    if want is not None and cfg != want:
        raise ValueError(f"{path} holds config {cfg.name!r} {cfg.widths}, expected "
                         f"{want.name!r} {want.widths}")
    if cfg.name in CONFIGS and CONFIGS[cfg.name] != cfg:
        raise ValueError(f"{path} was made for {cfg.name!r} {cfg.widths}, but this code's "
                         f"{cfg.name!r} preset is {CONFIGS[cfg.name].widths}")
    model = AdaptiveJSCC(cfg)
    check_state_dict(model, blob["state_dict"], str(path))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in blob["state_dict"].items()})
    return model.to(device).eval(), blob.get("meta", {})
