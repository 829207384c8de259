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

Every message is checked against the session first (``stream.core.validate``): one that
contradicts it is refused with its own reason, counted in ``rejected`` (and, for a frame,
in the ledger's drops), and the session goes on.

``finish`` closes the books at the end of a session: indices never seen are counted
with the sender's drop reasons (from its Bye, index by index) or as "lost".
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np

from dynbg.blend import BlendConfig, blend_paste
from dynbg.exposure import apply_gain, decode_gain
from dynbg.keyinfo import CropRecord, paste_back
from interp.methods import Interpolator, MethodConfig, make_interpolator, make_with_fallback
from interp.switch import InterpolationSwitch
from jscc.channel import noise_variance
from jscc.codec import JSCCCodec
from jscc.digital import background_link
from stream.core import payload, temporal, validate, wire
from stream.core.accounting import FrameLedger
from stream.core.config import LATE_GAPS, ReceiverConfig
from stream.core.sender import LIBRARY_FLAG, expand_mask, load_codec

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
    none) and the background of a key frame; or, for a refused message, the counted
    ``reason`` (``stream.core.validate.REASONS``) and a one-line ``error``."""

    msg: object
    image: np.ndarray | None = None
    background: np.ndarray | None = None
    error: str | None = None
    reason: str | None = None


def _box(msg: wire.FrameMsg, image: np.ndarray) -> tuple[int, int, int, int] | None:
    """Where a rebuilt frame differs from its background: the crop box of a key frame,
    the whole frame for a direct one, None for a frame that shows the background only."""
    if msg.mode == wire.Mode.DIRECT:
        return 0, 0, image.shape[1], image.shape[0]
    return tuple(msg.box) if msg.symbols.size or msg.mask is not None or msg.cells else None


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
        self.codec = codec or load_codec(config.model, config.weights, device=config.device,
                                         precision=config.precision)
        self.interp_note: str | None = None
        if interpolator is None and config.interp != "off":
            interpolator, self.interp_note = make_with_fallback(
                config.interp, config=MethodConfig(scale=config.interp_scale,
                                                   fg_scale=config.interp_scale,
                                                   device=config.device))
        self.interpolator = interpolator
        self._late_gaps = 0
        self.switch: InterpolationSwitch | None = None
        self._want_interp = interpolator is not None
        self.ledger = FrameLedger()
        self.state = ReceiverState()
        self.last_mode = ""
        self._anchor: _Anchor | None = None
        self._library = None
        self._skip_epochs: list[tuple[int, int]] = []  # (first index, skip) from set_skip
        self._backgrounds: OrderedDict = OrderedDict()  # id -> image; the decode step's
        self._cells = temporal.CellStore(self.codec.cfg.downsample)  # the decode step's
        self._last_decoded = -1  # highest frame index the decode step saw
        self._lost: list[int] = []  # sent frames the decode step never got (to report)
        self._lost_lock = threading.Lock()
        self.rejected: Counter = Counter()  # refused messages by reason (validate.REASONS)
        self._rejected_lock = threading.Lock()  # decode and compose count from two threads

    def start(self, params: wire.SessionParams) -> bool:
        """Take the session parameters of the sender's Hello; a second Hello is refused
        (counted "repeated-hello": the frame size stays) and returns False. A Hello naming
        another JSCC model than this receiver's raises :class:`validate.Invalid`
        ("model-mismatch"): its latents would decode to noise."""
        if self.state.width:
            self._reject("repeated-hello")
            return False
        if params.model and params.model != self.codec.cfg.name:  # "": not announced
            self._reject("model-mismatch")
            raise validate.Invalid("model-mismatch", (
                f"the sender codes with the JSCC model {params.model!r}, this receiver "
                f"decodes with {self.codec.cfg.name!r}: give both the same --model (or --weights)"))
        self.state.width, self.state.height = params.width, params.height
        self.state.fps, self.state.skip = params.fps, params.skip
        if params.skip > 1 and self.interpolator is not None:
            self.switch = InterpolationSwitch(self.interpolator, params.skip, self._want_interp)
        return True

    def _reject(self, reason: str) -> None:
        with self._rejected_lock:
            self.rejected[reason] += 1

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
        skip = self.state.skip
        for first, later in self._skip_epochs:
            if index >= first:
                skip = later
        return skip > 1 and index % skip != 0

    def set_skip(self, skip: int, first: int) -> None:
        """The sender skips with factor ``skip`` (0: sends every frame) from frame index
        ``first`` on (live control; call it in compose order, before the first frame sent
        with it). Interpolation, if loaded, fills the new gaps."""
        self._skip_epochs.append((first, skip))
        if skip > 1 and self.switch is None and self.interpolator is not None:
            self.switch = InterpolationSwitch(self.interpolator, skip, self._want_interp)

    def set_interp_method(self, name: str) -> str:
        """Fill gaps with ``name`` (an ``interp.methods`` method; loads its weights, so call
        it from a worker thread) from the next gap on, or stop filling them ("off");
        returns the method in force ("off" when switched off)."""
        if name == "off":
            self.set_interp(False)
            return "off"
        scale = self.config.interp_scale
        self.interpolator, self.interp_note = make_with_fallback(
            name, config=MethodConfig(scale=scale, fg_scale=scale,
                                      device=self.config.device))
        self._late_gaps = 0
        if self.switch is not None:
            self.switch.interpolator = self.interpolator
        self.set_interp(True)
        return self.interp_method

    # -- decoding (no state) -----------------------------------------------------------

    def decode(self, msg: object) -> Decoded:
        """Check a Background or FrameMsg against the session, then decode it: a
        Background is kept, a FrameMsg's JSCC content leaves with its background. A
        refused one carries its reason (a refused Background is counted here, a frame
        when composed); other messages pass."""
        w, h = self.state.width, self.state.height
        try:
            if isinstance(msg, wire.Background):
                validate.check_background(msg, w, h)
                image = self._fit(self._decode_background(msg))
                self._store_background(msg.background_id, image)
                return Decoded(msg, image)
            if isinstance(msg, wire.FrameMsg):
                validate.check_index(msg.index, self._last_decoded)  # before any gap walk
                self._note_arrival(msg.index)
                validate.check_frame(msg, w, h, self.codec.cfg)
                bg = None if msg.mode == wire.Mode.DIRECT else self._background(msg)
                if msg.mode == wire.Mode.KEY and bg is None:
                    raise validate.Invalid("no-background", f"background id "
                                                            f"{msg.background_id:#x}")
                if bg is not None and msg.gain:  # the background at this frame's exposure
                    bg = apply_gain(bg, decode_gain(msg.gain))
                image = None
                if msg.symbols.size or msg.mask is not None or msg.cells:
                    image = self._decode_frame(msg, bg)
                return Decoded(msg, image, bg)
        except validate.Invalid as exc:
            self._note_lost(msg)
            return self._refused(msg, exc.reason, str(exc))
        except ValueError as exc:  # payload, digital-link and codec errors
            self._note_lost(msg)
            reason = "bad-background" if isinstance(msg, wire.Background) else "bad-frame"
            return self._refused(msg, reason, f"{reason}: {exc}")
        return Decoded(msg)

    def _note_arrival(self, index: int) -> None:
        """Count the sent (not skipped) indices between the last frame decoded and
        ``index`` as lost here (for ``take_lost``)."""
        gap = [i for i in range(self._last_decoded + 1, index) if not self._skipped(i)]
        self._last_decoded = max(self._last_decoded, index)
        if gap:
            with self._lost_lock:
                self._lost.extend(gap)

    def _note_lost(self, msg: object) -> None:
        if isinstance(msg, wire.FrameMsg):
            with self._lost_lock:
                self._lost.append(msg.index)

    def take_lost(self) -> list[int]:
        """Indices of sent frames the decode step never got or could not use since the
        last call (for the sender's ``report_lost``: with temporal coding it sends their
        cells again); safe from any thread."""
        with self._lost_lock:
            lost, self._lost = self._lost, []
        return lost

    def _refused(self, msg: object, reason: str, error: str) -> Decoded:
        if not isinstance(msg, wire.FrameMsg):
            self._reject(reason)
        return Decoded(msg, error=error, reason=reason)

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

            try:
                data = cv2.imdecode(np.frombuffer(msg.payload, np.uint8), cv2.IMREAD_COLOR)
            except cv2.error:  # an empty buffer trips an assertion, not a None
                data = None
            if data is None or data.shape[:2] != (msg.height, msg.width):
                raise ValueError("PNG background does not decode to its stated size")
            return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
        if msg.kind == wire.BackgroundKind.CODED:
            return background_link.decode(msg.payload, msg.height, msg.width)
        coded = payload.unpack(msg.payload)
        validate.check_coded_background(self.codec.cfg, coded, (msg.height, msg.width))
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
        """The crop (key) or whole frame (direct) of a checked frame message."""
        g, lh, lw = msg.latent_shape
        symbols = msg.symbols
        if msg.cells:
            latent = self._cell_latent(msg)
            inside = np.ones((lh, lw), bool) if msg.mask is None \
                else expand_mask(msg.mask, (lh, lw))
            symbols = latent[:, inside].reshape(-1)
        if msg.mask is not None:
            symbols = self._fill_latent(msg, background, symbols)
        coded = payload.CodedImage(msg.rate_level, msg.snr_db, msg.crop_shape, (g, lh, lw),
                                   msg.scale, symbols)
        x1, y1, x2, y2 = msg.box
        direct = msg.mode == wire.Mode.DIRECT
        return self.codec.decode(payload.transmission(coded, (y2 - y1, x2 - x1)),
                                 restore=direct)

    def _cell_latent(self, msg: wire.FrameMsg) -> np.ndarray:
        """A temporally coded crop: its cell map folded into the cell store; returns the
        crop's latent (P x h x w complex64)."""
        inside = None if msg.mask is None else expand_mask(msg.mask, msg.latent_shape[1:])
        return self._cells.apply(msg.cells, msg.symbols, msg.latent_shape,
                                 (self.state.height, self.state.width), msg.scale,
                                 noise_variance(msg.snr_db), inside)

    def _fill_latent(self, msg: wire.FrameMsg, background: np.ndarray | None,
                     inside: np.ndarray) -> np.ndarray:
        """All latent symbols of an fg-latent crop: ``inside`` (1-D, plane-major) on the
        mask's cells, the background's own latent (same rate level) outside it, or zeros
        without one."""
        g, lh, lw = msg.latent_shape
        cells = expand_mask(msg.mask, (lh, lw))
        full = np.zeros((g, lh, lw), np.complex64)
        x1, y1, x2, y2 = msg.box
        if background is not None and not cells.all():
            import cv2

            under = cv2.resize(background[y1:y2, x1:x2], msg.crop_shape[::-1],
                               interpolation=cv2.INTER_AREA)
            tx = self.codec.encode(under, msg.snr_db, level=msg.rate_level)
            if tx.symbols.size == full.size:
                full = tx.symbols.reshape(g, lh, lw).copy()
        full[:, cells] = inside.reshape(g, -1)
        return full.reshape(-1)

    # -- composing (stateful, arrival order) -------------------------------------------

    def compose(self, d: Decoded) -> list[OutputFrame]:
        """Rebuilt frames (in index order) that message ``d`` completes."""
        msg = d.msg
        if not isinstance(msg, wire.FrameMsg):
            return []
        if self.ledger.has(msg.index):
            self._reject("repeated-index")
            return []
        if d.reason is not None:
            self._reject(d.reason)
            self.ledger.drop(msg.index, d.reason)
            return []
        image = self._rebuild(msg, d.image, d.background)
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
                 bg: np.ndarray | None) -> np.ndarray:
        """The frame of a checked message: the decoded whole frame (direct), the
        background (key without foreground) or the crop pasted into it."""
        if msg.mode == wire.Mode.DIRECT:
            return image
        if image is None:
            return bg
        h, w = bg.shape[:2]
        x1, y1, x2, y2 = msg.box
        ch, cw = image.shape[:2]
        record = CropRecord(x1, y1, x2, y2, w, h, cw, ch)
        mask = None if msg.mask is None else expand_mask(msg.mask, msg.latent_shape[1:])
        if self.config.paste == "blend":
            return blend_paste(bg, image, record, mask, BlendConfig(feather=self.config.feather))
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

    def finish(self, frames_read: int | None = None, bye: wire.Bye | None = None) -> int:
        """Close the books for indices below ``frames_read`` (default: the Bye's count):
        each with no outcome is counted as skipped at the tail, with the sender's drop
        reason for it (the Bye's index runs, then its remaining counts in index order), or
        as "lost". A count far beyond the last index seen is refused ("bad-bye") and the
        books close at that index. Returns the number of indices closed (frames with an
        outcome when neither is given)."""
        if frames_read is None and bye is not None:
            frames_read = bye.frames_read
        if frames_read is None:
            return self.ledger.accounted
        try:
            validate.check_frames_read(frames_read, self._last_decoded)
        except validate.Invalid:
            self._reject("bad-bye")
            frames_read, bye = self._last_decoded + 1, None
        missing = [m for m in range(frames_read) if not self.ledger.has(m)]
        for m in missing:
            if self._skipped(m):
                self.ledger.drop(m, "skipped-tail")
        missing = [m for m in missing if not self._skipped(m)]  # sorted
        left: dict[str, int] = {}
        for reason, count in ({} if bye is None else bye.dropped).items():
            for first, length in bye.dropped_runs.get(reason, ()):
                lo = bisect.bisect_left(missing, first)
                hi = min(bisect.bisect_left(missing, first + length), lo + count)
                for m in missing[lo:hi]:
                    self.ledger.drop(m, f"sender:{reason}")
                count -= hi - lo
                del missing[lo:hi]
            left[reason] = count
        reasons = (r for r, n in left.items() for _ in range(n))
        for m in missing:
            reason = next(reasons, None)
            self.ledger.drop(m, "lost" if reason is None else f"sender:{reason}")
        return frames_read
