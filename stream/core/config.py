"""Configuration of the sender and receiver cores (frozen dataclasses).

SNR in dB, sizes in pixels, times in seconds. The same configs drive the offline
``semstream run`` and the live ``semstream send`` / ``semstream receive``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jscc import DEFAULT_MODEL

CHANNELS = ("awgn", "rayleigh")
MODES = ("proposed", "direct")
BACKGROUND_LINKS = ("digital", "jscc")
PASTE_MODES = ("blend", "feather")
SYMBOL_FORMATS = ("float16", "int8")  # names of stream.core.wire.SymbolFormat, lower case
# Defaults of the live peers (`semstream send` / `receive`) where they differ from the
# configs' own (docs/results/stream/, bench/bench_stream.py):
# - HEVC's rate search takes about 0.5 s per 640x480 background, a visible stall live;
# - int8 symbols halve what the data channel carries;
# - crops are capped at 320 x 240 pixels' worth: a sender and a receiver sharing 2 cores
#   then keep the median glass-to-glass latency under 150 ms (about 250 ms at 640 x 480),
#   for 3.6 dB of foreground PSNR on asl-again at 10 dB (29.5 vs 33.1 dB);
#   `send --max-pixels 307200` keeps full resolution;
# - the receiver's interpolation hands over to DIS (31 ms per 640x480 frame) after
#   LATE_GAPS gaps in a row that RIFE filled late;
# - the JSCC model is edge, not the default wide: wide's encode + decode cost 48 ms a crop
#   on one core against edge's 20, and the live demo on 2 cores dropped 19 % of the frames
#   with wide against 3.6 % with edge (docs/results/stream/live.json, live-wide.json).
LIVE_MODEL = "edge"
LIVE_BACKGROUND_CODECS = ("jpeg", "webp")
LIVE_SYMBOLS = "int8"
LIVE_MAX_PIXELS = 320 * 240
LIVE_LATE_FALLBACK = "dis"
LATE_GAPS = 3


@dataclass(frozen=True)
class TemporalConfig:
    """Temporal coding of key-frame crops in the latent domain (``stream.core.temporal``).

    threshold: a latent cell is sent when sending it lowers the receiver's mean squared
    latent error per symbol by more than this many channel noise variances (10^(-SNR/10));
    lower values send more and refine still cells with more looks.
    drift_weight: how much more a latent error from stale content counts than the same
    error as channel noise (the decoder was trained to remove noise, not stale content).
    refresh: frames after which a cell is replaced even when it has not changed (rolling
    refresh; 0 = never).
    level_room: with a budget, each grid's rate level is the policy's or, when higher, the
    highest whose whole crop (all its cells at that level) costs at most ``level_room``
    budgets (still cells cost nothing, so a budget can buy a level above what resending the
    crop every frame allows); None: the policy's level. Whether it pays depends on how much
    the model's upper levels carry (``docs/results/stream/temporal-level-room-*.json``,
    carphone.mp4, not an evaluation clip): with the shipped ``wide`` weights it costs
    0.3-0.8 dB at 10-20 dB, so it is off by default; with weights whose levels carry more
    (the long run at epoch 40) 1.7 gains 0.65-0.8 dB at equal uses.
    budget: channel uses per source frame for the frames' symbols and side information
    (a sent frame gets ``budget`` times the frames it stands for with skipping; background
    updates are not part of it); the cells that lower the error most are sent until it is
    spent. None: the threshold alone decides.
    """

    threshold: float = 0.25
    drift_weight: float = 100.0
    refresh: int = 150
    level_room: float | None = None
    budget: float | None = None

    def __post_init__(self) -> None:
        if not (self.threshold >= 0 and self.threshold < float("inf")):
            raise ValueError(f"temporal threshold must be >= 0, got {self.threshold}")
        if not self.drift_weight > 0:
            raise ValueError(f"drift_weight must be > 0, got {self.drift_weight}")
        if self.refresh < 0:
            raise ValueError(f"temporal refresh must be >= 0 frames, got {self.refresh}")
        if self.level_room is not None and not self.level_room > 0:
            raise ValueError(f"level_room must be > 0 budgets, got {self.level_room}")
        if self.budget is not None and not self.budget > 0:
            raise ValueError(f"budget must be > 0 channel uses per frame, got {self.budget}")


@dataclass(frozen=True)
class SenderConfig:
    """What the sender does with each frame.

    snr_db, channel: the simulated link (AWGN or Rayleigh block fading, receiver knows h).
    mode: "proposed" (background + key-information crops) or "direct" (whole frames).
    segmenter: foreground segmenter name (see ``dynbg.segmenters.make_segmenter``).
    skip: send every skip-th frame only (0 or 1 = send all); the receiver interpolates.
    library: folder of a background library (both ends hold it); a segment whose first
    frame matches one of its images costs only the image id.
    fg_latent: send only the latent positions inside the pooled foreground mask (the
    mask bits are side information).
    max_pixels: resolution check: a crop or frame with more pixels is scaled down first.
    temporal: code key-frame crops temporally (send only the latent cells that changed,
    refine still ones; see TemporalConfig); None: every crop whole. Direct mode ignores it.
    threshold: soft-mask value at or above which a pixel is foreground.
    change_threshold: the crop also covers pixels that differ by more than this many
    levels from the background last sent (what the segmenter missed: a person it did not
    see, a light switched on); None: the segmenter's mask only.
    refresh_gain: resend the segment's background when the online
    builder's unseen fraction has fallen this much below the one last sent.
    refresh_psnr: resend it too when the version last sent has drifted below this PSNR (dB)
    against the current frame's background pixels (light or exposure changed).
    refresh_every: frames between two looks at whether to refresh a segment's background.
    background: how a background update crosses the channel: "digital" (an image codec at
    the rate an MCS table allows, ``jscc.digital.background_link``; JSCC when the SNR is below
    the table's cliff) or "jscc" (the JSCC model, like a frame).
    background_rate: channel uses per source value a digital background may take
    (1/12: what the JSCC model spends on a whole frame from 10 dB up).
    background_codecs: the image codecs a digital background may use (the best is sent).
    symbols: how the received symbols are quantised on the wire: "float16" (4 bytes per
    channel use) or "int8" with one step per frame (2 bytes; its quantisation noise is
    about 37 dB below the symbols, far under the channel's at SNR <= 20 dB).
    model, weights: JSCC preset name, or an explicit weights file.
    seed: seed of the channel noise (runs are deterministic for a seed).
    exposure: send a per-frame colour gain and offset (``dynbg.exposure``, 48 bits when not
    the identity) that brings the background last sent to the frame's exposure; the
    changed-pixel mask and the staleness check use the background so corrected.
    device: where the models run (JSCC, rembg): auto | cpu | cuda | cuda:N (``--device``;
    auto: a CUDA GPU when torch sees one, else the CPU).
    precision: arithmetic of the JSCC model's convolutions, auto | fp32 | fp16 | bf16
    (``--precision``; ``jscc.device.jscc_precision``: auto is fp16 on a GPU, bf16 on a CPU
    that computes it in hardware, else fp32).
    direct_above: in proposed mode, a frame whose crop box covers at least this fraction
    of the frame is sent whole (direct), as the crop would cost about as much (the head of
    a close-up, a moving background); None: always the crop. Not used with temporal coding.
    """

    snr_db: float = 10.0
    channel: str = "awgn"
    mode: str = "proposed"
    segmenter: str = "selfie"
    skip: int = 0
    library: Path | None = None
    fg_latent: bool = False
    fg_margin: int = 8
    temporal: TemporalConfig | None = None
    max_pixels: int | None = 640 * 480
    threshold: float = 0.5
    change_threshold: int | None = 25
    refresh_gain: float = 0.05
    refresh_psnr: float = 30.0
    refresh_every: int = 15
    background: str = "digital"
    background_rate: float = 1 / 12
    background_codecs: tuple[str, ...] = ("jpeg", "webp", "hevc")
    symbols: str = "float16"
    model: str = DEFAULT_MODEL
    weights: Path | None = None
    seed: int = 0
    exposure: bool = True
    device: str = "auto"
    direct_above: float | None = 0.9
    precision: str = "auto"

    def __post_init__(self) -> None:
        from jscc.device_option import check_precision, check_spec

        check_spec(self.device)
        check_precision(self.precision)
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}: choose {' or '.join(CHANNELS)}")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}: choose {' or '.join(MODES)}")
        if self.background not in BACKGROUND_LINKS:
            raise ValueError(f"unknown background link {self.background!r}: choose "
                             f"{' or '.join(BACKGROUND_LINKS)}")
        if self.symbols not in SYMBOL_FORMATS:
            raise ValueError(f"unknown symbol format {self.symbols!r}: choose "
                             f"{' or '.join(SYMBOL_FORMATS)}")
        from jscc.digital.background_link import CODEC_IDS

        bad = [c for c in self.background_codecs if c not in CODEC_IDS]
        if bad or not self.background_codecs:
            raise ValueError(f"unknown background codec(s) {bad}: choose from "
                             f"{', '.join(CODEC_IDS)}")
        if not 0 < self.background_rate <= 1:
            raise ValueError(f"background_rate must be in (0, 1] channel uses per source "
                             f"value, got {self.background_rate}")
        if self.skip < 0:
            raise ValueError(f"skip must be 0 (off) or at least 2, got {self.skip}")
        if self.fg_margin < 0:
            raise ValueError(f"fg_margin must be >= 0 pixels, got {self.fg_margin}")
        if self.direct_above is not None and not 0 < self.direct_above <= 1:
            raise ValueError(f"direct_above must be in (0, 1] of the frame, got "
                             f"{self.direct_above}")
        if self.max_pixels is not None and self.max_pixels < 64:
            raise ValueError(f"max_pixels must be at least 64, got {self.max_pixels}")
        if not -10.0 <= self.snr_db <= 40.0:
            raise ValueError(f"SNR {self.snr_db} dB is outside -10..40 dB")

    @property
    def skip_factor(self) -> int:
        """Frames per sent frame (1 = no skipping)."""
        return max(1, self.skip)

    def skipped(self, index: int) -> bool:
        """Whether frame ``index`` (0-based) is left for the receiver to interpolate."""
        return index % self.skip_factor != 0


@dataclass(frozen=True)
class ReceiverConfig:
    """How the receiver rebuilds frames.

    interp: an ``interp.methods`` method for skipped frames: "rife-fg" (RIFE HDv3 on the
    foreground boxes only), "rife" (whole frame), "dis" (optical flow), "blend", "repeat";
    or "off" (skipped frames are counted dropped; the output rate follows the sent frames).
    interp_scale: RIFE flow resolution knob (0.25, 0.5, 1, 2; 0.5 is about 2x faster).
    late_fallback: a cheaper method (e.g. "dis") that takes over from ``interp`` for the
    rest of the session once filling a gap has taken longer than the frames it fills last
    (their frame intervals at the session's rate) on ``LATE_GAPS`` gaps in a row; None
    keeps ``interp`` however slow it is (offline runs).
    feather: width (pixels) of the soft seam when a crop is pasted into the background.
    library: the background library folder (same as the sender's).
    model, weights: JSCC preset name, or an explicit weights file.
    paste: how a crop goes into the background: "feather" (the box pasted whole with a
    feathered edge; the background already follows the scene's exposure through the
    sender's gain) or "blend" (``dynbg.blend``: the crop's level matched to the
    background, alpha from the crop's difference to it). Feather is the default: blend
    keeps the receiver's background wherever the decoded crop looks like it, which lost
    0.6-0.9 dB inside the moving objects on asl-again and one-by-one-person
    (docs/results/keyinfo/ablation.md).
    device: where the models run (JSCC, RIFE): auto | cpu | cuda | cuda:N (``--device``).
    precision: arithmetic of the JSCC decoder's convolutions, as the sender's.
    """

    interp: str = "rife-fg"
    interp_scale: float = 1.0
    late_fallback: str | None = None
    feather: int = 6
    library: Path | None = None
    model: str = DEFAULT_MODEL
    weights: Path | None = None
    device: str = "auto"
    paste: str = "feather"
    precision: str = "auto"

    def __post_init__(self) -> None:
        from interp.methods import METHOD_NAMES
        from jscc.device_option import check_precision, check_spec

        check_spec(self.device)
        check_precision(self.precision)

        if self.interp not in (*METHOD_NAMES, "off"):
            raise ValueError(f"unknown interpolation {self.interp!r}: choose one of "
                             f"{', '.join(METHOD_NAMES)} or off")
        if self.late_fallback is not None and self.late_fallback not in METHOD_NAMES:
            raise ValueError(f"unknown fallback interpolation {self.late_fallback!r}: choose "
                             f"one of {', '.join(METHOD_NAMES)}")
        if self.feather < 0:
            raise ValueError(f"feather must be >= 0 pixels, got {self.feather}")
        if self.paste not in PASTE_MODES:
            raise ValueError(f"unknown paste {self.paste!r}: choose {' or '.join(PASTE_MODES)}")


@dataclass(frozen=True)
class PipelineConfig:
    """realtime: drop the oldest queued frame when a stage falls behind (else every frame
    is processed). queue_size: items each queue between two stages holds."""

    realtime: bool = True
    queue_size: int = 1

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {self.queue_size}")
