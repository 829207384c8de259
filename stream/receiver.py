"""Receiver core: wire messages in, rebuilt frames out, every frame index accounted for.

Two steps, so a pipeline can run them in two threads (each called in message order):

- ``decode``: decoding of background updates (JSCC or the digital link; kept per id:
  only this step touches them) and of a frame's crop or whole frame; the frame leaves
  with its background. With fg-latent crops the latent positions the sender left out are
  filled with the JSCC latent of the background under the crop, so the decoder sees a
  consistent picture;
- ``compose``: a crop is pasted into its background, a frame with no symbols shows the
  background; frames the sender skipped are interpolated between the two sent frames
  around them when the switch is on, and counted dropped ("skipped-interp-off") when off.

``finish`` closes the books at the end of a session: indices never seen are counted
with the sender's drop reasons (from its Bye) or as "lost".
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from dynbg.keyinfo import CropRecord, paste_back
from interp.methods import Interpolator, MethodConfig, make_interpolator, make_with_fallback
from interp.switch import InterpolationSwitch
from jscc.codec import JSCCCodec
from stream import background_link, payload, wire
from stream.accounting import FrameLedger
from stream.config import LATE_GAPS, ReceiverConfig
from stream.sender import LIBRARY_FLAG, MASK_CELL, expand_mask, load_codec

KEEP_BACKGROUNDS = 4  # decoded backgrounds held (the newest ones)


@dataclass(frozen=True, eq=False)
class OutputFrame:
    """A rebuilt frame: H x W x 3 uint8 RGB, its source index and pts (s), how it was made
    ("key", "direct", "background", "interpolated") and its capture time (time.time())."""

    image: np.ndarray
    index: int
    pts: float
    mode: str
    captured: float


@dataclass(frozen=True, eq=False)
class Decoded:
    """A message with its decoded image (crop, whole frame or background; None if it has
    none), the background of a key frame (None when unknown here), or the reason it
    cannot be used."""

    msg: object
    image: np.ndarray | None = None
    background: np.ndarray | None = None
    error: str | None = None


def _box(msg: wire.FrameMsg, image: np.ndarray) -> tuple[int, int, int, int] | None:
    """Where a rebuilt frame differs from its background: the crop box of a key frame,
    the whole frame for a direct one, None for a frame that shows the background only."""
    if msg.mode == wire.Mode.DIRECT:
        return 0, 0, image.shape[1], image.shape[0]
    return tuple(msg.box) if msg.symbols.size or msg.mask is not None else None


def latent_mask_shape(latent_hw: tuple[int, int]) -> tuple[int, int]:
    """Shape of the coarse fg-latent mask of an h x w latent grid."""
    return -(-latent_hw[0] // MASK_CELL), -(-latent_hw[1] // MASK_CELL)


@dataclass
class _Anchor:
    """The last sent frame that was rebuilt (interpolation starts from it): its foreground
    box (x1, y1, x2, y2; None when it showed only the background) and background id."""

    index: int
    image: np.ndarray
    pts: float
    captured: float
    box: tuple[int, int, int, int] | None
    background_id: int | None


@dataclass
class ReceiverState:
    """Session facts from the sender's Hello."""

    width: int = 0
    height: int = 0
    fps: float = 30.0
    skip: int = 0


class ReceiverCore:
    """Stateful receiver logic; ``decode`` any message, ``compose`` them in arrival order.

    interpolator: overrides the method ``config.interp`` names (an ``interp.methods``
    Interpolator). When RIFE weights are missing the DIS method stands in and
    ``interp_note`` says so.
    """

    def __init__(self, config: ReceiverConfig, codec: JSCCCodec | None = None,
                 interpolator: Interpolator | None = None) -> None:
        self.config = config
        self.codec = codec or load_codec(config.model, config.weights)
        self.interp_note: str | None = None
        if interpolator is None and config.interp != "off":
            interpolator, self.interp_note = make_with_fallback(
                config.interp, config=MethodConfig(scale=config.interp_scale,
                                                   fg_scale=config.interp_scale))
        self.interpolator = interpolator
        self._late_gaps = 0
        self.switch: InterpolationSwitch | None = None
        self._want_interp = interpolator is not None
        self.ledger = FrameLedger()
        self.state = ReceiverState()
        self.last_mode = ""
        self._anchor: _Anchor | None = None
        self._library = None
        self._backgrounds: OrderedDict = OrderedDict()  # id -> image; the decode step's

    def start(self, params: wire.SessionParams) -> None:
        """Take the session parameters of the sender's Hello."""
        self.state.width, self.state.height = params.width, params.height
        self.state.fps, self.state.skip = params.fps, params.skip
        if params.skip > 1 and self.interpolator is not None:
            self.switch = InterpolationSwitch(self.interpolator, params.skip, self._want_interp)

    def warm_up(self, width: int, height: int) -> None:
        """Decode (and interpolate) once at width x height, so the first real frame does
        not pay for model start-up (no state changes)."""
        gray = np.full((height, width, 3), 128, np.uint8)
        decoded = self.codec.decode(self.codec.encode(gray, 10.0))
        if self.interpolator is not None:
            self.interpolator(decoded, gray, [0.5])

    @property
    def interp_method(self) -> str:
        """Name of the method that fills gaps now (the config's name without one)."""
        current = self.switch.interpolator if self.switch is not None else self.interpolator
        return self.config.interp if current is None else current.name

    @property
    def interp_on(self) -> bool:
        """Whether skipped frames are being interpolated (as wanted before the session
        starts; False when no interpolator is loaded)."""
        if self.switch is not None:
            return self.switch.enabled
        return self._want_interp

    def set_interp(self, on: bool) -> bool:
        """Switch interpolation of skipped frames on or off (from any thread; it takes
        effect at the next gap); returns the state now in force (off without an
        interpolator)."""
        self._want_interp = bool(on) and self.interpolator is not None
        if self.switch is not None:
            self.switch.set_enabled(self._want_interp)
        return self.interp_on

    def _skipped(self, index: int) -> bool:
        return self.state.skip > 1 and index % self.state.skip != 0

    # -- decoding (no state) -----------------------------------------------------------

    def decode(self, msg: object) -> Decoded:
        """Decode a Background (and keep it) or the JSCC content of a FrameMsg (with its
        background attached); other messages pass."""
        try:
            if isinstance(msg, wire.Background):
                image = self._fit(self._decode_background(msg))
                self._store_background(msg.background_id, image)
                return Decoded(msg, image)
            if isinstance(msg, wire.FrameMsg):
                bg = None if msg.mode == wire.Mode.DIRECT else self._background(msg)
                image = None
                if msg.symbols.size or msg.mask is not None:
                    image = self._decode_frame(msg, bg)
                return Decoded(msg, image, bg)
        except (payload.PayloadError, ValueError) as exc:
            return Decoded(msg, error=f"bad-{type(msg).__name__.lower()}: {exc}")
        return Decoded(msg)

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """A background at the session's frame size."""
        w, h = self.state.width, self.state.height
        if not w or image.shape[:2] == (h, w):
            return image
        import cv2

        return cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)

    def _decode_background(self, msg: wire.Background) -> np.ndarray:
        if msg.kind == wire.BackgroundKind.PNG:
            import cv2

            data = cv2.imdecode(np.frombuffer(msg.payload, np.uint8), cv2.IMREAD_COLOR)
            if data is None or data.shape[:2] != (msg.height, msg.width):
                raise ValueError("PNG background does not decode to its stated size")
            return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
        if msg.kind == wire.BackgroundKind.CODED:
            return background_link.decode(msg.payload, msg.height, msg.width)
        coded = payload.unpack(msg.payload)
        return self.codec.decode(payload.transmission(coded, (msg.height, msg.width)))

    def _store_background(self, background_id: int, image: np.ndarray) -> None:
        bgs = self._backgrounds
        bgs[background_id] = image
        while len(bgs) > KEEP_BACKGROUNDS:
            bgs.popitem(last=False)

    def _background(self, msg: wire.FrameMsg) -> np.ndarray | None:
        bid = msg.background_id
        if bid & LIBRARY_FLAG and bid not in self._backgrounds:
            image = self._library_image(bid & ~LIBRARY_FLAG)
            if image is not None:
                self._store_background(bid, self._fit(image))
        return self._backgrounds.get(bid)

    def _library_image(self, i: int) -> np.ndarray | None:
        if self.config.library is None:
            return None
        from dynbg.library import BackgroundLibrary, read_image

        if self._library is None:
            self._library = BackgroundLibrary.open(self.config.library)
        if i >= len(self._library):
            return None
        return read_image(self._library.path(i))

    def _decode_frame(self, msg: wire.FrameMsg, background: np.ndarray | None) -> np.ndarray:
        g, lh, lw = msg.latent_shape
        if g != self.codec.cfg.always_on_groups + msg.rate_level or g > self.codec.cfg.groups:
            raise ValueError(f"latent groups {g} do not match rate level {msg.rate_level}")
        symbols = msg.symbols
        if msg.mask is not None:
            symbols = self._fill_latent(msg, background)
        if symbols.size != g * lh * lw:
            raise ValueError(f"{symbols.size} symbols for a {g}x{lh}x{lw} latent")
        coded = payload.CodedImage(msg.rate_level, msg.snr_db, msg.crop_shape, (g, lh, lw),
                                   msg.scale, symbols)
        x1, y1, x2, y2 = msg.box
        direct = msg.mode == wire.Mode.DIRECT
        return self.codec.decode(payload.transmission(coded, (y2 - y1, x2 - x1)),
                                 restore=direct)

    def _fill_latent(self, msg: wire.FrameMsg, background: np.ndarray | None) -> np.ndarray:
        """All latent symbols of an fg-latent crop: the sent ones inside the mask, the
        background's own latent (same rate level) outside it, or zeros without one."""
        g, lh, lw = msg.latent_shape
        if latent_mask_shape((lh, lw)) != msg.mask.shape:
            raise ValueError("foreground-latent mask does not match the latent grid")
        cells = expand_mask(msg.mask, (lh, lw))
        if msg.symbols.size != g * int(cells.sum()):
            raise ValueError("foreground-latent mask does not match the symbols")
        full = np.zeros((g, lh, lw), np.complex64)
        x1, y1, x2, y2 = msg.box
        if background is not None and not cells.all() \
                and 0 <= x1 < x2 <= background.shape[1] and 0 <= y1 < y2 <= background.shape[0]:
            import cv2

            under = cv2.resize(background[y1:y2, x1:x2], msg.crop_shape[::-1],
                               interpolation=cv2.INTER_AREA)
            tx = self.codec.encode(under, msg.snr_db, level=msg.rate_level)
            if tx.symbols.size == full.size:
                full = tx.symbols.reshape(g, lh, lw).copy()
        full[:, cells] = msg.symbols.reshape(g, -1)
        return full.reshape(-1)

    # -- composing (stateful, arrival order) -------------------------------------------

    def compose(self, d: Decoded) -> list[OutputFrame]:
        """Rebuilt frames (in index order) that message ``d`` completes."""
        msg = d.msg
        if not isinstance(msg, wire.FrameMsg) or self.ledger.has(msg.index):
            return []
        if d.error is not None:
            self.ledger.drop(msg.index, "bad-frame")
            return []
        image = self._rebuild(msg, d.image, d.background)
        if image is None:
            self.ledger.drop(msg.index, "no-background")
            return []
        out = self._fill_gap(msg, image, d.background)
        mode = "background" if msg.mode == wire.Mode.KEY and d.image is None \
            else msg.mode.name.lower()
        self.ledger.deliver(msg.index)
        self.last_mode = mode
        self._anchor = _Anchor(msg.index, image, msg.pts, msg.captured, _box(msg, image),
                               msg.background_id if msg.mode == wire.Mode.KEY else None)
        out.append(OutputFrame(image, msg.index, msg.pts, mode, msg.captured))
        return out

    def drop(self, index: int, reason: str) -> None:
        """Count frame ``index`` dropped here (e.g. by a real-time pipeline stage)."""
        if not self.ledger.has(index):
            self.ledger.drop(index, reason)

    def _rebuild(self, msg: wire.FrameMsg, image: np.ndarray | None,
                 bg: np.ndarray | None) -> np.ndarray | None:
        if msg.mode == wire.Mode.DIRECT:
            return image
        if bg is None:
            return None
        if image is None:
            return bg
        h, w = bg.shape[:2]
        x1, y1, x2, y2 = msg.box
        if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
            return None
        ch, cw = image.shape[:2]
        record = CropRecord(x1, y1, x2, y2, w, h, cw, ch)
        mask = None if msg.mask is None else expand_mask(msg.mask, msg.latent_shape[1:])
        return paste_back(bg, image, record, self.config.feather, mask)

    def _fill_gap(self, msg: wire.FrameMsg, image: np.ndarray,
                  bg: np.ndarray | None) -> list[OutputFrame]:
        """Interpolated (or dropped) skipped frames between the anchor and ``msg``.

        The gap is usually skip - 1 frames; after a drop it is longer and the instants
        follow the real distance. Only the union of the two frames' foreground boxes is
        interpolated by the foreground method, over their shared background."""
        a = self._anchor
        start = -1 if a is None else a.index
        gap = [m for m in range(start + 1, msg.index)
               if self._skipped(m) and not self.ledger.has(m)]
        if not gap:
            return []
        on = self.switch is not None and self.switch.enabled  # read once per gap
        if a is None or not on or a.image.shape != image.shape:
            reason = "skipped-no-anchor" if a is None else \
                "skipped-interp-off" if not on else "skipped-size-change"
            for m in gap:
                self.ledger.drop(m, reason)
            return []
        span = msg.index - a.index
        times = [(m - a.index) / span for m in gap]
        box = _box(msg, image)
        same_bg = msg.mode == wire.Mode.KEY and a.background_id == msg.background_id
        started = time.perf_counter()
        frames = self.switch.interpolator(a.image, image, times, (a.box, box),
                                          bg if same_bg else None)
        self._check_deadline(time.perf_counter() - started, len(gap))
        out = []
        for m, t, f in zip(gap, times, frames, strict=True):
            self.ledger.deliver(m)
            out.append(OutputFrame(f, m, a.pts + t * (msg.pts - a.pts), "interpolated",
                                   a.captured + t * (msg.captured - a.captured)))
        return out

    def _check_deadline(self, seconds: float, frames: int) -> None:
        """Count a gap that took longer than the ``frames`` it filled last; after LATE_GAPS
        in a row, hand the switch the configured fallback method."""
        fallback = self.config.late_fallback
        self._late_gaps = self._late_gaps + 1 if seconds * self.state.fps > frames else 0
        if self._late_gaps < LATE_GAPS or fallback is None or fallback == self.interp_method:
            return
        self.interp_note = (f"{self.interp_method} took {1000 * seconds / frames:.0f} ms per "
                            f"frame on {LATE_GAPS} gaps in a row (budget "
                            f"{1000 / self.state.fps:.0f} ms): switched to {fallback}")
        self.switch.interpolator = make_interpolator(fallback, MethodConfig())

    def finish(self, frames_read: int | None = None,
               sender_dropped: dict | None = None) -> None:
        """Close the books: indices below ``frames_read`` with no outcome are counted as
        skipped at the tail, as the sender's drops (its Bye's reasons) or as "lost"."""
        if frames_read is None:
            return
        missing = [m for m in range(frames_read) if not self.ledger.has(m)]
        reasons = [f"sender:{r}" for r, n in (sender_dropped or {}).items() for _ in range(n)]
        for m in missing:
            if self._skipped(m):
                self.ledger.drop(m, "skipped-tail")
            else:
                self.ledger.drop(m, reasons.pop() if reasons else "lost")
