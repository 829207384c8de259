"""Checks of decoded wire messages against the session, before the receiver uses them.

The wire parser (``stream.core.wire``) only knows each field's range; a message it
accepts can still contradict the session (a box outside the frame, a latent the model
cannot decode, a background it never received). ``ReceiverCore`` runs these checks on
every message; a failed check raises :class:`Invalid`, whose ``reason`` is the counted
drop reason and whose text is one line naming what was wrong. ``REASONS`` lists them.
"""

from __future__ import annotations

import math

import numpy as np

from jscc.model import JSCCConfig
from stream.core import payload, wire
from stream.core.sender import LIBRARY_FLAG, MASK_CELL, expand_mask

# Largest jump of a frame index above the highest one seen (about 9 minutes at 30 fps):
# the receiver accounts for every index below the highest, so an unbounded jump would
# cost unbounded time and memory.
MAX_INDEX_JUMP = 1 << 14

REASONS = {
    "no-session": "a frame or background before the sender's Hello",
    "repeated-hello": "a second Hello in one session",
    "model-mismatch": "a Hello naming a JSCC model other than the receiver's (ends the session)",
    "bad-mode": "a frame message in skip mode (skipped frames send nothing)",
    "bad-index": f"a frame index more than {MAX_INDEX_JUMP} above the highest seen",
    "repeated-index": "a frame index that already has an outcome",
    "bad-time": "a non-finite pts or capture time",
    "bad-box": "a key crop box empty or outside the frame, a direct box not the frame",
    "bad-scale": "a scale outside (0, 1]",
    "bad-crop-shape": "a coded size empty, larger than its box or off its scale",
    "bad-rate-level": "a rate level the model does not have",
    "bad-latent-shape": "latent planes or grid that do not match the rate level and size",
    "bad-snr": "a non-finite SNR",
    "bad-mask": "a foreground-latent mask on a direct frame or not matching the latent grid",
    "bad-symbol-count": "symbols that do not fill the latent (or the mask's cells)",
    "bad-symbols": "non-finite symbols",
    "no-background": "a key frame on a background id this receiver does not hold",
    "bad-background-size": "a background whose size is not the session's frame size",
    "bad-background-id": "a sent background with a library id",
    "bad-background": "a background payload that does not decode",
    "bad-frame": "frame symbols the model cannot decode",
    "bad-bye": f"a Bye with frames read more than {MAX_INDEX_JUMP} above the last index",
    "bad-gain": f"an exposure gain on a direct frame or not {wire.GAIN_BYTES} bytes long",
}


class Invalid(ValueError):
    """A message inconsistent with the session; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def check_session(width: int, height: int) -> None:
    """Refuse content before the session's Hello (no frame size to check it against)."""
    if width <= 0 or height <= 0:
        raise Invalid("no-session", "content before the sender's Hello")


def check_index(index: int, highest: int) -> None:
    """Refuse a frame index more than MAX_INDEX_JUMP above ``highest`` (-1: none yet)."""
    if index > highest + MAX_INDEX_JUMP:
        raise Invalid("bad-index", f"frame {index} jumps more than {MAX_INDEX_JUMP} above "
                                   f"frame {highest}")


def check_frames_read(frames_read: int, highest: int) -> None:
    """Refuse a Bye whose frame count lies more than MAX_INDEX_JUMP above ``highest``."""
    if frames_read > highest + 1 + MAX_INDEX_JUMP:
        raise Invalid("bad-bye", f"{frames_read} frames read, the last frame seen is "
                                 f"{highest}")


def check_latent(cfg: JSCCConfig, level: int, size: tuple[int, int],
                 latent: tuple[int, int, int]) -> None:
    """Refuse a rate level the model lacks, or latent planes and grid that do not match
    the level and the coded size (h, w)."""
    if not 0 <= level < cfg.levels:
        raise Invalid("bad-rate-level", f"rate level {level}, the model has 0..{cfg.levels - 1}")
    g, lh, lw = latent
    grid = cfg.latent_hw(size)
    if g != cfg.planes_sent(level) or (lh, lw) != grid:
        raise Invalid("bad-latent-shape", f"latent {g}x{lh}x{lw} for a {size[0]}x{size[1]} "
                                          f"image at rate level {level} (the model sends "
                                          f"{cfg.planes_sent(level)}x{grid[0]}x{grid[1]})")


def check_coded_size(size: tuple[int, int], box_hw: tuple[int, int], scale: float) -> None:
    """Refuse a coded size (h, w) that is empty, larger than the box (h, w) it came from,
    or whose width is not the box width times ``scale`` (in (0, 1]) to a pixel."""
    if not (math.isfinite(scale) and 0 < scale <= 1):
        raise Invalid("bad-scale", f"scale {scale}")
    (h, w), (bh, bw) = size, box_hw
    if not (0 < h <= bh and 0 < w <= bw and abs(w - bw * scale) <= 1):
        raise Invalid("bad-crop-shape", f"coded size {h}x{w} for a {bh}x{bw} box at scale "
                                        f"{scale:g}")


def check_coded_background(cfg: JSCCConfig, coded: payload.CodedImage,
                           size: tuple[int, int]) -> None:
    """Refuse a JSCC background the model cannot decode at its stated size (h, w)."""
    check_coded_size(coded.size, size, coded.scale)
    check_latent(cfg, coded.level, coded.size, coded.latent)


def check_background(msg: wire.Background, width: int, height: int) -> None:
    """Refuse a background before the Hello, of another size than the frames, or
    claiming a library id."""
    check_session(width, height)
    if (msg.height, msg.width) != (height, width):
        raise Invalid("bad-background-size", f"background {msg.width}x{msg.height} in a "
                                              f"{width}x{height} session")
    if msg.background_id & LIBRARY_FLAG:
        raise Invalid("bad-background-id", f"background id {msg.background_id:#x} has the "
                                            "library bit")


def latent_mask_shape(latent_hw: tuple[int, int]) -> tuple[int, int]:
    """Shape of the coarse fg-latent mask of an h x w latent grid."""
    return -(-latent_hw[0] // MASK_CELL), -(-latent_hw[1] // MASK_CELL)


def check_frame(msg: wire.FrameMsg, width: int, height: int, cfg: JSCCConfig) -> None:
    """Refuse a frame message that contradicts the width x height session or the model
    (see ``REASONS``). Whether a key frame's background is known is the caller's check."""
    check_session(width, height)
    if msg.mode not in (wire.Mode.KEY, wire.Mode.DIRECT):
        raise Invalid("bad-mode", f"frame {msg.index} in mode {msg.mode.name}")
    if not (math.isfinite(msg.pts) and math.isfinite(msg.captured)):
        raise Invalid("bad-time", f"pts {msg.pts}, captured {msg.captured}")
    if msg.gain and (msg.mode != wire.Mode.KEY or len(msg.gain) != wire.GAIN_BYTES):
        raise Invalid("bad-gain", f"a {len(msg.gain)}-byte gain on a {msg.mode.name} frame "
                                  f"(key frames carry {wire.GAIN_BYTES} bytes or none)")
    direct = msg.mode == wire.Mode.DIRECT
    if not (direct or msg.symbols.size or msg.mask is not None or msg.cells):
        return  # a key frame without foreground: side information only
    x1, y1, x2, y2 = msg.box
    inside = 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    if not inside or (direct and tuple(msg.box) != (0, 0, width, height)):
        raise Invalid("bad-box", f"box {msg.box} in a {width}x{height} frame"
                                 + (" (direct frames cover it whole)" if direct else ""))
    if not math.isfinite(msg.snr_db):
        raise Invalid("bad-snr", f"SNR {msg.snr_db}")
    symbols = np.asarray(msg.symbols)
    if not np.isfinite(symbols).all():
        raise Invalid("bad-symbols", "non-finite symbols")
    if msg.cells:  # a temporal frame: stream.core.temporal checks its grid, map and symbols
        return
    check_coded_size(msg.crop_shape, (y2 - y1, x2 - x1), msg.scale)
    check_latent(cfg, msg.rate_level, msg.crop_shape, msg.latent_shape)
    g, lh, lw = msg.latent_shape
    cells = lh * lw
    if msg.mask is not None:
        if direct or msg.mask.shape != latent_mask_shape((lh, lw)):
            raise Invalid("bad-mask", f"mask {msg.mask.shape} on a {msg.mode.name} frame "
                                      f"with a {lh}x{lw} latent grid")
        cells = int(expand_mask(msg.mask, (lh, lw)).sum())
    if symbols.ndim != 1 or symbols.size != g * cells:
        raise Invalid("bad-symbol-count", f"{symbols.size} symbols for {g} planes of "
                                          f"{cells} latent cells")
