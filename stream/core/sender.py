"""Sender core: one frame in, the wire messages that put it on the (simulated) channel out.

Two steps, so a pipeline can run them in two threads:

- ``analyse``: foreground mask -> scene segment -> background bookkeeping -> mode
  (key / direct / skip) -> key-information crop (with the resolution check);
- ``encode``: JSCC encoding, the channel (noise applied here: messages carry the
  *received* symbols), and the channel-use accounting.

Proposed mode, per scene segment: when a segment starts the receiver gets a background:
a library image id when ``library`` matches the frame (side information only), otherwise
the first frame with its foreground inpainted (counted), over the digital link of
``jscc.digital.background_link`` or, below its MCS cliff or when so configured, through JSCC.
Every frame then sends the crop around its foreground only; a frame without foreground
sends side information only. The segment's background is refreshed (the same way,
counted) when the online builder has seen at least ``refresh_gain`` more of the frame's
background than the version last sent, or when the version last sent has gone stale
(PSNR against the frame's background pixels below ``refresh_psnr``: light or exposure
changed, something was moved); it looks every ``refresh_every`` frames. A refresh takes
the frame itself where it shows background, the builder's background under the
foreground, and the last sent image where the builder has still seen nothing. The crop
covers the segmenter's mask and whatever differs from the background last sent
(``change_threshold``). With ``temporal`` the crop is cut on the latent cell grid and
only the cells that changed (or that the receiver should refine) are sent
(``stream.core.temporal``); the receiver's reports of lost frames (``report_lost``) make
their cells be sent again. A crop box that covers at least ``direct_above`` of the frame
saves nothing over the whole frame, so that frame is sent whole (direct) instead; a
background update it would have carried is held back and goes with the next key frame
(the receiver needs a background for key frames only). Direct mode sends every frame whole.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from dynbg.background import OnlineBackground, changed_mask
from dynbg.exposure import apply_gain, decode_gain, encode_gain, estimate_gain
from dynbg.keyinfo import CropConfig, KeyInfo, extract
from jscc.channel import ChannelConfig, noise_variance, normalize_power
from jscc.codec import JSCCCodec, Transmission
from jscc.digital import background_link
from jscc.metrics import psnr
from stream.core import payload, wire
from stream.core.accounting import ChannelLedger, frame_side_bits
from stream.core.config import SenderConfig
from stream.core.frames import Frame
from stream.core.temporal import HISTORY, CellTracker, budget_level

LIBRARY_FLAG = 1 << 31  # background ids with this bit name a library image (index below it)
REFRESH_GROW = 7  # pixels the foreground mask grows by before a refresh takes the frame


def load_codec(model: str, weights, threads: int | None = 2, device: str = "cpu",
               precision: str = "auto") -> JSCCCodec:
    """The JSCC codec of preset ``model``, or of an explicit weights file, on ``device``
    (a ``--device`` value) in ``precision`` (a ``--precision`` value)."""
    return JSCCCodec.load(model, path=weights, threads=threads, device=device,
                          precision=precision)


@dataclass(frozen=True)
class BackgroundUpdate:
    """A background to send through JSCC: H x W x 3 uint8 image and its new id."""

    image: np.ndarray
    background_id: int


@dataclass(frozen=True, eq=False)
class Analysis:
    """Result of ``analyse`` for one frame.

    mask: H x W bool foreground (None when not computed); key: the crop (None for no
    foreground, direct or skip); update: a background to send before the frame; cover:
    with temporal coding, the H x W bool pixels the crop covers (the mask and what
    changed against the background). gain: the exposure side information of a key frame
    (``dynbg.exposure``; b"" for none).
    """

    frame: Frame
    mode: wire.Mode
    segment: int = 0
    background_id: int = 0
    mask: np.ndarray | None = None
    key: KeyInfo | None = None
    update: BackgroundUpdate | None = None
    cover: np.ndarray | None = None
    gain: bytes = b""


@dataclass(eq=False)
class SenderOutput:
    """Messages for one frame (none for a skipped frame), its channel uses and its analysis."""

    messages: list = field(default_factory=list)
    channel_uses: int = 0
    analysis: Analysis | None = None

    @property
    def frame_message(self) -> wire.FrameMsg | None:
        """The frame's own message (None when skipped)."""
        return next((m for m in self.messages if isinstance(m, wire.FrameMsg)), None)


class SenderCore:
    """Stateful per-frame sender logic; call ``analyse`` and ``encode`` in frame order.

    codec: a loaded JSCC codec (default: ``config.model`` / ``config.weights``).
    keep_mask: compute the foreground mask in direct mode and of skipped frames too (for
    the foreground PSNR of an offline run).
    """

    def __init__(self, config: SenderConfig, codec: JSCCCodec | None = None,
                 keep_mask: bool = False) -> None:
        from dynbg.scenes import SceneSegmenter
        from dynbg.segmenters import make_segmenter

        self.config = config
        self.codec = codec or load_codec(config.model, config.weights, device=config.device,
                                         precision=config.precision)
        self.channel = ChannelConfig(kind=config.channel)
        self.ledger = ChannelLedger()
        self._generator = torch.Generator().manual_seed(config.seed)
        self._rng = np.random.default_rng(config.seed)  # block gains of digital backgrounds
        self._proposed = config.mode == "proposed"
        self._keep_mask = keep_mask
        need_mask = self._proposed or keep_mask
        self.segmenter = make_segmenter(config.segmenter, config.device) if need_mask else None
        self.scenes = SceneSegmenter() if self._proposed else None
        self.library = None
        if config.library is not None and self._proposed:
            from dynbg.library import BackgroundLibrary

            self.library = BackgroundLibrary.open(config.library)
        self.tracker = None
        self._tracked_segment: int | None = None  # the tracker's segment (encode's thread)
        if config.temporal is not None and self._proposed:
            self.tracker = CellTracker(self.codec.cfg.downsample, config.temporal,
                                       config.max_pixels)
        self._lost: list[int] = []
        self._lost_lock = threading.Lock()
        self.lost_repaired = 0  # frames reported lost whose cells were marked for resending
        # a temporal crop is scaled on its cell grid (CellTracker.crop), not by extract
        self.crop = CropConfig(max_pixels=None if self.tracker else config.max_pixels)
        self._next_background = 1
        self._segment = -1
        self._background_id = 0
        self._online: OnlineBackground | None = None
        self._sent_image: np.ndarray | None = None
        self._sent_unseen = 1.0
        self._since_refresh = 0
        self._held: BackgroundUpdate | None = None  # owed to the receiver before a key frame

    def warm_up(self, width: int, height: int) -> None:
        """Run the segmenter and the encoder once on a gray width x height frame, so the
        first real frame does not pay for model start-up (no state changes)."""
        gray = np.full((height, width, 3), 128, np.uint8)
        if self.segmenter is not None:
            self.segmenter.mask(gray)
            self.segmenter.reset()  # a motion model must not learn the gray frame
        self._encode(gray, self.config.max_pixels)

    def close(self) -> None:
        """Release the segmenter's model."""
        if self.segmenter is not None:
            self.segmenter.close()

    def reconfigure(self, config: SenderConfig) -> None:
        """Take ``config`` from the next frame on (live control; call it from the thread
        that runs ``analyse``, between two frames). SNR, channel, skip, mode and fg-latent
        may change; a return to proposed mode starts a new segment (a fresh background).
        The model, segmenter kind, library and temporal coding stay as built."""
        from dynbg.scenes import SceneSegmenter
        from dynbg.segmenters import make_segmenter

        proposed = config.mode == "proposed"
        if proposed and self.segmenter is None:
            self.segmenter = make_segmenter(config.segmenter, config.device)
        if proposed and self.scenes is None:
            self.scenes = SceneSegmenter()
        if proposed and not self._proposed:
            self._segment = -1
        self.channel = ChannelConfig(kind=config.channel)
        self._proposed = proposed
        self.config = config

    # -- analysis ----------------------------------------------------------------------

    def analyse(self, frame: Frame) -> Analysis:
        """Mask, segment, background and mode of ``frame`` (frames in index order)."""
        image = frame.image
        self.ledger.source_values += int(image.size)
        skipped = self.config.skipped(frame.index)
        mask = None
        if self.segmenter is not None and (self._keep_mask or not skipped):
            mask = self.segmenter.binary(image, self.config.threshold)
        if skipped:
            self.ledger.add_skip()
            return Analysis(frame, wire.Mode.SKIP, self._segment, self._background_id, mask)
        if not self._proposed:
            return Analysis(frame, wire.Mode.DIRECT, mask=mask)
        update = self._background_step(image, mask) or self._held
        gain, reference = b"", self._sent_image
        if self._online is not None and self.config.exposure and update is None:
            gain, reference = self._exposure(image, mask)
        send = mask
        if self._online is not None and self.config.change_threshold is not None:
            # what the segmenter missed but the receiver's background does not show either
            send = mask | changed_mask(image, reference, self.config.change_threshold)
        key = extract(image, send, self.crop)
        if self._whole_frame(key, image):
            self._held = update
            return Analysis(frame, wire.Mode.DIRECT, self._segment, self._background_id, mask)
        self._held = None
        return Analysis(frame, wire.Mode.KEY, self._segment, self._background_id, mask, key,
                        update, send if self.tracker is not None else None, gain)

    def _whole_frame(self, key: KeyInfo | None, image: np.ndarray) -> bool:
        """Whether ``key``'s crop box covers at least ``direct_above`` of ``image`` (never
        with temporal coding, whose cell store lives on the key frames' crops)."""
        if key is None or self.tracker is not None or self.config.direct_above is None:
            return False
        x1, y1, x2, y2 = key.record.box
        return (x2 - x1) * (y2 - y1) >= self.config.direct_above * image.shape[0] * image.shape[1]

    def _exposure(self, image: np.ndarray, mask: np.ndarray) -> tuple[bytes, np.ndarray]:
        """The exposure gain from the background last sent to ``image`` (its side-information
        bytes, b"" for none) and that background as the receiver will show it."""
        grow = np.ones((2 * REFRESH_GROW + 1,) * 2, np.uint8)
        valid = cv2.dilate(mask.astype(np.uint8), grow) == 0
        raw = encode_gain(estimate_gain(self._sent_image, image, valid))
        if not raw:
            return b"", self._sent_image
        return raw, apply_gain(self._sent_image, decode_gain(raw))

    def _background_step(self, image: np.ndarray, mask: np.ndarray) -> BackgroundUpdate | None:
        """Track the segment and its background; the update to send, if any."""
        scene = self.scenes.update(image, mask)
        if scene.segment != self._segment:
            self._segment = scene.segment
            return self._start_segment(image, mask)
        if self._online is None:  # a library background: nothing to refresh
            return None
        self._online.update(image, mask)
        self._since_refresh += 1
        if self._since_refresh < self.config.refresh_every:
            return None
        gained = self._online.unseen_fraction <= self._sent_unseen - self.config.refresh_gain
        # stale: the background last sent, brought to this frame's exposure, still differs
        current = self._exposure(image, mask)[1] if self.config.exposure else self._sent_image
        if not gained and psnr(current, image, ~mask) >= self.config.refresh_psnr:
            self._since_refresh = 0  # still fresh: look again refresh_every frames on
            return None
        built = self._online.background()
        behind = np.where(built.hole[:, :, None], self._sent_image, built.image)
        grow = np.ones((2 * REFRESH_GROW + 1,) * 2, np.uint8)
        covered = cv2.dilate(mask.astype(np.uint8), grow) > 0
        if self.config.exposure:  # the builder's samples are at its first frame's exposure
            behind = apply_gain(behind, estimate_gain(behind, image, ~covered))
        return self._new_update(np.where(covered[:, :, None], behind, image),
                                self._online.unseen_fraction)

    def _start_segment(self, image: np.ndarray, mask: np.ndarray) -> BackgroundUpdate | None:
        self._held = None  # the old segment's background is owed no more
        if self.library is not None:
            match = self.library.match(image, mask)
            if match.path is not None:
                self._online = None
                self._background_id = LIBRARY_FLAG | self.library.names.index(match.path.name)
                return None
        self._online = OnlineBackground()
        self._online.update(image, mask)
        # the foreground is inpainted, not sent as part of the background: where the person
        # later moves away, the receiver shows a plausible wall instead of a ghost
        return self._new_update(self._online.background().image, self._online.unseen_fraction)

    def _new_update(self, image: np.ndarray, unseen: float) -> BackgroundUpdate:
        self._background_id = self._next_background
        self._next_background += 1
        self._sent_image, self._sent_unseen, self._since_refresh = image, unseen, 0
        return BackgroundUpdate(image, self._background_id)

    # -- encoding ----------------------------------------------------------------------

    def _through_channel(self, symbols: np.ndarray) -> np.ndarray:
        z = torch.from_numpy(np.ascontiguousarray(symbols, np.complex64))[None]
        return self.channel(z, self.config.snr_db, self._generator)[0].numpy()

    def _encode(self, image: np.ndarray, max_pixels: int | None) -> Transmission:
        return self.codec.encode(image, self.config.snr_db, max_pixels=max_pixels)

    def report_lost(self, indices: list[int]) -> None:
        """The receiver reports frames ``indices`` lost (from any thread): with temporal
        coding, the cells they carried are sent again from the next encoded frame on
        (``lost_repaired`` counts those the tracker still remembered); without it, nothing
        happens."""
        if self.tracker is None:
            return
        with self._lost_lock:
            self._lost.extend(int(i) for i in indices)
            del self._lost[:-HISTORY]  # the tracker remembers no more frames than these

    def encode(self, a: Analysis) -> SenderOutput:
        """JSCC-encode and transmit what ``a`` asks for; count its channel uses."""
        out = SenderOutput(analysis=a)
        if a.mode == wire.Mode.SKIP:
            return out
        if a.update is not None:
            msg, uses = self._background_message(a.segment, a.update)
            out.messages.append(msg)
            out.channel_uses += self.ledger.add_background(uses)
        msg = self._frame_message(a)
        out.messages.append(msg)
        out.channel_uses += self.ledger.add_frame(msg)
        return out

    def _background_message(self, segment: int,
                            update: BackgroundUpdate) -> tuple[wire.Background, int]:
        """The Background message of an update and its channel uses: over the digital
        link when configured and the SNR allows it, else through JSCC."""
        h, w = update.image.shape[:2]
        cfg = self.config
        if cfg.background == "digital":
            coded = background_link.code_background(
                update.image, cfg.snr_db, round(cfg.background_rate * update.image.size),
                cfg.background_codecs, channel=self.channel, rng=self._rng)
            if coded is not None:
                return wire.Background(segment, update.background_id,
                                       wire.BackgroundKind.CODED, h, w,
                                       background_link.pack(coded)), coded.channel_uses
        tx = self._encode(update.image, cfg.max_pixels)
        coded = payload.CodedImage(tx.level, tx.snr_db, tx.size, (tx.planes_sent, *tx.latent_hw),
                                   tx.scale, self._through_channel(tx.symbols))
        return wire.Background(segment, update.background_id, wire.BackgroundKind.JSCC, h, w,
                               payload.pack(coded)), tx.channel_uses

    def _frame_message(self, a: Analysis) -> wire.FrameMsg:
        f = a.frame
        h, w = f.image.shape[:2]
        common = dict(index=f.index, pts=f.pts, captured=f.captured, mode=a.mode,
                      segment_id=a.segment, background_id=a.background_id, gain=a.gain)
        if a.mode == wire.Mode.DIRECT:
            tx = self._encode(f.image, self.config.max_pixels)
            box, scale, symbols, mask = (0, 0, w, h), tx.scale, tx.symbols, None
        elif a.key is None:  # no foreground: side information only
            return wire.FrameMsg(**common)
        elif self.tracker is not None:
            return self._temporal_message(a, common)
        else:
            tx = self._encode(a.key.crop, None)  # the crop already passed the check
            box, scale, symbols, mask = a.key.record.box, a.key.record.scale, tx.symbols, None
            if self.config.fg_latent:
                mask = latent_mask(a.key.mask, tx.latent_hw, self.codec.cfg.downsample,
                                   self.config.fg_margin)
                cells = expand_mask(mask, tx.latent_hw)
                symbols = sent_at_unit_power(
                    symbols.reshape(tx.planes_sent, *tx.latent_hw)[:, cells]).reshape(-1)
        return wire.FrameMsg(**common, box=box, crop_shape=tx.size,
                             latent_shape=(tx.planes_sent, *tx.latent_hw), scale=scale,
                             rate_level=tx.level, snr_db=tx.snr_db,
                             symbols=self._through_channel(symbols), mask=mask,
                             symbol_format=wire.SymbolFormat[self.config.symbols.upper()])

    def _temporal_message(self, a: Analysis, common: dict) -> wire.FrameMsg:
        """A key frame's message with temporal coding: the crop on the cell grid, only the
        cells the tracker picks (at the frame's gain), and the cell map."""
        with self._lost_lock:
            lost, self._lost = self._lost, []
        for index in lost:
            self.lost_repaired += self.tracker.lost(index)
        cfg, tracker = self.config, self.tracker
        if a.segment != self._tracked_segment:  # a new segment: the receiver holds nothing
            tracker.reset()
            self._tracked_segment = a.segment
        g = tracker.crop(a.frame.image, a.cover, a.key.record.box)
        jscc = self.codec.cfg
        latent_hw = jscc.latent_hw(g.crop.shape[:2])
        mask = candidates = None
        if cfg.fg_latent:
            mask = latent_mask(g.mask, latent_hw, jscc.downsample, cfg.fg_margin)
            candidates = expand_mask(mask, latent_hw)
        budget = None
        if cfg.temporal.budget is not None:
            fixed = frame_side_bits(wire.FrameMsg(**common, symbols=np.ones(1, np.complex64),
                                                  mask=mask))
            budget = cfg.temporal.budget * cfg.skip_factor - fixed
        tx = self.codec.encode(g.crop, cfg.snr_db, level=tracker.level)  # None: the policy's
        if tracker.level is None and budget is not None and cfg.temporal.level_room is not None:
            # a new grid: the policy's level, or the higher one its budget affords
            cells = latent_hw[0] * latent_hw[1] if candidates is None else int(candidates.sum())
            level = budget_level(jscc, cells, budget, cfg.temporal.level_room)
            if level > tx.level:
                tx = self.codec.encode(g.crop, cfg.snr_db, level=level)
        tracker.level = tx.level
        plan = tracker.plan(tx.symbols.reshape(tx.planes_sent, *tx.latent_hw), g.origin,
                            noise_variance(cfg.snr_db), candidates, budget, a.frame.index)
        return wire.FrameMsg(**common, box=g.box, crop_shape=tx.size,
                             latent_shape=(tx.planes_sent, *tx.latent_hw), scale=g.scale,
                             rate_level=tx.level, snr_db=tx.snr_db,
                             symbols=self._through_channel(plan.symbols), mask=mask,
                             symbol_format=wire.SymbolFormat[cfg.symbols.upper()],
                             cells=plan.payload)


MASK_CELL = 2  # latent cells per side of one fg-latent mask bit (8 x 8 pixels)


def sent_at_unit_power(planes: np.ndarray) -> np.ndarray:
    """The symbols of a subset of latent cells (P x K complex, one row per latent plane) at
    unit average energy per channel use, each plane over the K symbols it actually sends
    (the codec normalised them over the whole latent, and foreground cells carry more
    energy than the average: sent as they are they would be 0.5-0.8 dB above unit power).
    The receiver decodes them as they come, as the model's own masked normalisation does."""
    if planes.size == 0:
        return planes
    return normalize_power(torch.from_numpy(np.ascontiguousarray(planes, np.complex64))).numpy()


def latent_mask(mask: np.ndarray, latent_hw: tuple[int, int], downsample: int,
                margin: int = 0) -> np.ndarray:
    """Foreground mask (H' x W' bool) of a crop as sent with ``fg_latent``: grown by
    ``margin`` pixels, then max-pooled to one bit per MASK_CELL x MASK_CELL latent cells
    (each ``downsample`` pixels a side), so a bit is set wherever any foreground pixel
    falls in its cell: ceil(h/2) x ceil(w/2) bool for an h x w latent grid."""
    import cv2

    from dynbg.keyinfo import pool_mask

    if margin > 0:
        kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
        mask = cv2.dilate(mask.astype(np.uint8), kernel) > 0
    lh, lw = latent_hw
    ch, cw = -(-lh // MASK_CELL), -(-lw // MASK_CELL)
    grid = pool_mask(mask, downsample * MASK_CELL)[:ch, :cw]
    return np.pad(grid, ((0, ch - grid.shape[0]), (0, cw - grid.shape[1])))


def expand_mask(coarse: np.ndarray, latent_hw: tuple[int, int]) -> np.ndarray:
    """The latent-grid mask (h x w bool) of a coarse fg-latent mask (see ``latent_mask``)."""
    lh, lw = latent_hw
    full = np.repeat(np.repeat(coarse, MASK_CELL, axis=0), MASK_CELL, axis=1)
    return full[:lh, :lw]
