"""The versioned binary format that crosses the WebRTC data channel.

A *message* (Hello, FrameMsg, Background, Control, Bye) is encoded to a body and
split into *packets* of at most ``PACKET_SIZE`` bytes (under the SCTP message
size every WebRTC stack accepts). Each packet starts with the header

    magic "SEMS" | version u8 | type u8 | chunk index u16 | chunk count u16 |
    message seq u32 | payload length u32            (network byte order, 18 bytes)

``Packer`` numbers and splits messages; ``Unpacker`` checks every field, reassembles
the chunks and decodes the body. Anything malformed raises ``WireError`` (and only
that) with a short ``reason`` code the receiver counts: see ``REASONS``.

Control messages carry a topic (``ControlTopic``) and a JSON object; what a body may hold
is checked where it is used: a viewer's CONFIG by ``stream.core.control``, a receiver's
LOST report by ``check_lost``, a receiver's REFUSED by ``check_refused`` (a body refused
there is a ``ControlRefused`` with a reason code).

Symbols travel interleaved re/im as float16 (4 bytes per complex channel use) or,
when the sender asks, as int8 with one step per frame (2 bytes): see SymbolFormat.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import math
import struct
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"SEMS"
VERSION = 2  # 2: frames carry a cell map (temporal coding), a Bye its dropped index runs
HEADER = struct.Struct("!4sBBHHII")
PACKET_SIZE = 16 * 1024
CHUNK_PAYLOAD = PACKET_SIZE - HEADER.size


def packed_size(body_size: int) -> int:
    """Bytes on the data channel for a body of body_size bytes, headers included."""
    return body_size + HEADER.size * max(1, -(-body_size // CHUNK_PAYLOAD))

MAX_SYMBOLS = 2_000_000          # complex symbols in one frame (8 MB as float16)
MAX_MASK_CELLS = 1 << 20         # cells of the optional downsampled mask
MAX_CELL_BYTES = 1 << 20         # a temporal cell map (stream.core.temporal)
GAIN_BYTES = 6                   # a frame's exposure gain (dynbg.exposure.GAIN_BYTES)
MAX_SIDE = 8192                  # any image or crop dimension, pixels
MAX_BACKGROUND_BYTES = 32 << 20  # an encoded background payload
MAX_CONTROL_BYTES = 60 * 1024    # the JSON body of a control message
MAX_TEXT = 64                    # bytes of a short text field (utf-8)
MAX_REASONS = 64                 # drop reasons listed in a Bye
MAX_DROP_RUNS = 4096             # runs of dropped frame indices listed in a Bye
MAX_LOST_FRAMES = 256            # frame indices in one Control LOST
MAX_REFUSAL_CHARS = 400          # detail text of one Control REFUSED
TOKEN_PROOF_BYTES = 32           # HMAC-SHA256

REASONS = (
    "truncated",      # shorter than its header or its stated lengths
    "trailing",       # bytes left over after the stated lengths
    "bad_magic",
    "bad_version",
    "unknown_type",
    "oversized",      # a length or count above its limit
    "chunk_order",    # a chunk missing, repeated or from another message
    "duplicate",      # a message sequence number not above the last one
    "frame_order",    # a frame index not above the last one
    "bad_field",      # a value out of its range (box, scale, non-finite number, ...)
    "bad_json",       # a control body that is not a JSON object
)


class WireError(ValueError):
    """A malformed data-channel packet; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"wire format: {reason}: {detail}")
        self.reason = reason


class MsgType(enum.IntEnum):
    """Message types (the header's type byte)."""

    HELLO = 1
    FRAME = 2
    BACKGROUND = 3
    CONTROL = 4
    BYE = 5


class Mode(enum.IntEnum):
    """How a frame was sent: the crop only, the whole frame, or nothing (interpolate)."""

    KEY = 0
    DIRECT = 1
    SKIP = 2


class SymbolFormat(enum.IntEnum):
    """How a frame's symbols are quantised: FLOAT16 re/im (4 bytes per complex symbol), or
    INT8 re/im times one float32 step per frame, step = max |re|, |im| / 127 (2 bytes)."""

    FLOAT16 = 0
    INT8 = 1


BYTES_PER_SYMBOL = {SymbolFormat.FLOAT16: 4, SymbolFormat.INT8: 2}


class BackgroundKind(enum.IntEnum):
    """Encoding of a Background payload: PNG bytes (lossless), JSCC symbols
    (``stream.core.payload``) or an image codec's bitstream over a digital link
    (``jscc.digital.background_link``)."""

    PNG = 0
    JSCC = 1
    CODED = 2


class ControlTopic(enum.IntEnum):
    """What a Control message is about; its body is a JSON object."""

    HEARTBEAT = 0   # {} : keeps the session alive
    INTERP = 1      # {"on": bool}: interpolation state (request or acknowledgement)
    STATS = 2       # free-form numbers for display
    CONFIG = 3      # receiver -> sender: a change the viewer asks for (stream.core.control)
    STATE = 4       # sender -> receiver: the settings in force from a frame index on, or why
                    # a CONFIG was refused (stream.core.control)
    LOST = 5        # receiver -> sender: {"frames": [index, ...]}: sent frames the receiver
                    # never got or could not use, so temporal coding sends their cells again
                    # (checked with check_lost; a refused one is counted by reason, not acted on)
    REFUSED = 6     # receiver -> sender: {"reason": code, "detail": text}: the receiver will
                    # not decode this session (e.g. its Hello names another JSCC model); the
                    # sender ends the session and says why (checked with check_refused)


@dataclass(frozen=True)
class SessionParams:
    """Stream parameters the sender announces. Sizes in pixels, fps in frames/s, SNR in dB."""

    width: int
    height: int
    fps: float
    skip: int = 0
    channel: str = "awgn"
    snr_db: float = 10.0
    model: str = ""  # JSCC preset name of the sender's weights ("" = not announced)
    segmenter: str = ""


@dataclass(frozen=True)
class Hello:
    """First message of a session: proof of the shared token, and the session parameters."""

    proof: bytes
    params: SessionParams


@dataclass(frozen=True, eq=False)
class FrameMsg:
    """One frame's side information and channel symbols.

    pts: seconds from the source start; captured: wall-clock seconds (time.time()).
    box: crop (x1, y1, x2, y2) in source pixels, x2/y2 exclusive; empty when nothing sent.
    crop_shape: (h, w) of the image the JSCC encoder saw after scaling by ``scale`` (0, 1].
    latent_shape: (c, h, w) of the JSCC latent. symbols: 1-D complex, the received
    channel symbols (count = channel uses), carried as ``symbol_format`` says (decoded
    messages hold complex64). mask: optional H' x W' bool foreground mask. cells: the
    temporal cell map (``stream.core.temporal.pack_payload``; empty when the crop is sent
    whole): then ``symbols`` holds only the sent cells and ``scale`` is the cell grid's.
    gain: exposure side information, GAIN_BYTES bytes (``dynbg.exposure``: per-channel gain
    and offset the receiver applies to its background first); empty when none is sent.
    It travels after the cell map as a one-byte length and the bytes, only when present.
    """

    index: int
    pts: float
    captured: float
    mode: Mode
    segment_id: int = 0
    background_id: int = 0
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    crop_shape: tuple[int, int] = (0, 0)
    latent_shape: tuple[int, int, int] = (0, 0, 0)
    scale: float = 1.0
    rate_level: int = 0
    snr_db: float = 0.0
    symbols: np.ndarray = field(default_factory=lambda: np.zeros(0, np.complex64))
    mask: np.ndarray | None = None
    symbol_format: SymbolFormat = SymbolFormat.FLOAT16
    cells: bytes = b""
    gain: bytes = b""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrameMsg):
            return NotImplemented
        same_mask = (self.mask is None and other.mask is None) or (
            self.mask is not None and other.mask is not None
            and np.array_equal(self.mask, other.mask))
        return (_frame_fields(self) == _frame_fields(other) and same_mask
                and np.array_equal(self.symbols, other.symbols))


@dataclass(frozen=True)
class Background:
    """A background image for a segment: (height, width) pixels, payload per ``kind``."""

    segment_id: int
    background_id: int
    kind: BackgroundKind
    height: int
    width: int
    payload: bytes


@dataclass(frozen=True)
class Control:
    """A control or stats message; ``body`` must be JSON-serialisable."""

    topic: ControlTopic
    body: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Bye:
    """Last message of a session: counts for reconciling frames sent and delivered.

    dropped: frames dropped by reason; dropped_runs: which ones, per reason as runs
    (first index, length) of consecutive indices (may list fewer than counted).
    """

    frames_read: int
    frames_sent: int
    dropped: Mapping[str, int] = field(default_factory=dict)
    dropped_runs: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)


Message = Hello | FrameMsg | Background | Control | Bye


class ControlRefused(ValueError):
    """A control body its receiving end will not act on; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def check_lost(body: Mapping[str, object], was_sent: Callable[[int], bool], last_sent: int,
               reported: Container[int] = ()) -> list[int]:
    """The frame indices of a Control LOST body, checked against the sender's session.

    The body must be exactly {"frames": [...]}: 1 to MAX_LOST_FRAMES distinct integers,
    each at most ``last_sent`` (the highest frame index handed to the channel), one that
    ``was_sent`` (sent, or dropped on its way: the receiver cannot tell the two apart) and
    not in ``reported`` (already reported). Anything else raises ControlRefused, reason
    "bad-body", "empty", "too-many", "bad-index", "future-index", "not-sent" or "repeated";
    the whole report is then refused."""
    frames = body.get("frames") if isinstance(body, Mapping) else None
    if not isinstance(frames, list) or set(body) != {"frames"}:
        raise ControlRefused("bad-body", 'a LOST body is {"frames": [frame index, ...]}')
    if not frames:
        raise ControlRefused("empty", "a LOST report names no frame")
    if len(frames) > MAX_LOST_FRAMES:
        raise ControlRefused("too-many", f"{len(frames)} frames in one LOST report, at most "
                                         f"{MAX_LOST_FRAMES}")
    for i in frames:
        if isinstance(i, bool) or not isinstance(i, int) or i < 0:
            raise ControlRefused("bad-index", f"frame index {i!r} is not an integer >= 0")
        if i > last_sent:
            raise ControlRefused("future-index", f"frame {i} reported lost, the last one "
                                                 f"sent is {last_sent}")
        if not was_sent(i):
            raise ControlRefused("not-sent", f"frame {i} reported lost was never sent")
    if len(set(frames)) != len(frames) or any(i in reported for i in frames):
        raise ControlRefused("repeated", "a frame reported lost twice")
    return list(frames)


def check_refused(body: Mapping[str, object]) -> str:
    """The one-line refusal of a Control REFUSED body, "<reason>: <detail>".

    The body must be exactly {"reason": code, "detail": text}: the code 1-32 characters of
    lower-case letters and hyphens, the detail a single line of at most MAX_REFUSAL_CHARS
    printable characters. Anything else raises ControlRefused "bad-refusal" (the sender
    then ignores it: only a well-formed refusal ends a session)."""
    if (not isinstance(body, Mapping) or set(body) != {"reason", "detail"}
            or not isinstance(body["reason"], str) or not isinstance(body["detail"], str)):
        raise ControlRefused("bad-refusal", 'a REFUSED body is {"reason": code, "detail": text}')
    reason, detail = body["reason"], body["detail"]
    if not (0 < len(reason) <= 32 and set(reason) <= set("abcdefghijklmnopqrstuvwxyz-")):
        raise ControlRefused("bad-refusal", f"refusal code {reason[:40]!r} is not a short "
                                            "lower-case code")
    if len(detail) > MAX_REFUSAL_CHARS or not detail.isprintable():
        raise ControlRefused("bad-refusal", "refusal detail is not one printable line of at "
                                            f"most {MAX_REFUSAL_CHARS} characters")
    return f"{reason}: {detail}"


def token_proof(token: str, nonce: bytes) -> bytes:
    """HMAC-SHA256 of the receiver's session nonce under the shared token (32 bytes)."""
    return hmac.new(token.encode("utf-8"), nonce, hashlib.sha256).digest()


def quantize_symbols(symbols: np.ndarray,
                     fmt: SymbolFormat = SymbolFormat.FLOAT16) -> np.ndarray:
    """Complex symbols as the wire carries them in format fmt (complex64)."""
    raw, step = _pack_symbols(np.asarray(symbols), fmt)
    return _unpack_symbols(raw, np.asarray(symbols).size, fmt, step)


def _pack_symbols(symbols: np.ndarray, fmt: SymbolFormat) -> tuple[bytes, float]:
    """Interleaved re/im bytes of 1-D complex symbols, and the INT8 step (0 for FLOAT16)."""
    if symbols.ndim != 1 or not np.iscomplexobj(symbols):
        raise ValueError(f"symbols must be a 1-D complex array, got {symbols.dtype} "
                         f"{symbols.shape}")
    pairs = np.stack([symbols.real, symbols.imag], axis=1).astype(np.float64)
    if fmt == SymbolFormat.INT8:
        if not np.isfinite(pairs).all():
            raise ValueError("symbols must be finite")
        step = float(np.float32(np.abs(pairs).max() / 127)) if pairs.size else 0.0
        q = np.rint(pairs / step) if step > 0 else np.zeros_like(pairs)
        return np.clip(q, -127, 127).astype(np.int8).tobytes(), step
    with np.errstate(over="ignore"):  # out-of-range values become inf and are refused
        half = pairs.astype("<f2")
    if not np.isfinite(half).all():
        raise ValueError("symbols must be finite and within float16 range (|x| < 65504)")
    return half.tobytes(), 0.0


def _unpack_symbols(raw: bytes, count: int, fmt: SymbolFormat, step: float) -> np.ndarray:
    if fmt == SymbolFormat.INT8:
        pairs = np.frombuffer(raw, np.int8).reshape(count, 2).astype(np.float32) * step
    else:
        pairs = np.frombuffer(raw, "<f2").reshape(count, 2).astype(np.float32)
    return (pairs[:, 0] + 1j * pairs[:, 1]).astype(np.complex64)


def _frame_fields(m: FrameMsg) -> tuple:
    return (m.index, m.pts, m.captured, m.mode, m.segment_id, m.background_id, m.box,
            m.crop_shape, m.latent_shape, m.scale, m.rate_level, m.snr_db, m.symbol_format,
            m.cells, m.gain)


# --- body encoding -----------------------------------------------------------------

_HELLO = struct.Struct("!32sHHfBBf")
_FRAME = struct.Struct("!IddBII4H2H3HfBfIBfHH")
_BACKGROUND = struct.Struct("!IIBHHI")
_CONTROL = struct.Struct("!BI")
_BYE = struct.Struct("!IIB")
_COUNT = struct.Struct("!I")
_RUNS = struct.Struct("!H")
_RUN = struct.Struct("!II")

CHANNELS = ("awgn", "rayleigh")


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > MAX_TEXT:
        raise ValueError(f"text field {value[:20]!r}... longer than {MAX_TEXT} bytes")
    return bytes([len(raw)]) + raw


def _encode_hello(m: Hello) -> bytes:
    p = m.params
    if len(m.proof) != TOKEN_PROOF_BYTES:
        raise ValueError(f"token proof must be {TOKEN_PROOF_BYTES} bytes")
    if p.channel not in CHANNELS:
        raise ValueError(f"channel {p.channel!r} is not one of {', '.join(CHANNELS)}")
    head = _HELLO.pack(m.proof, p.width, p.height, p.fps, p.skip, CHANNELS.index(p.channel),
                       p.snr_db)
    return head + _text(p.model) + _text(p.segmenter)


def _encode_frame(m: FrameMsg) -> bytes:
    symbols = np.asarray(m.symbols)
    raw, step = _pack_symbols(symbols, SymbolFormat(m.symbol_format))
    if m.mask is not None and np.ndim(m.mask) != 2:
        raise ValueError(f"mask must be 2-D (H' x W'), got shape {np.shape(m.mask)}")
    mask_h, mask_w = (0, 0) if m.mask is None else m.mask.shape
    head = _FRAME.pack(m.index, m.pts, m.captured, int(m.mode), m.segment_id, m.background_id,
                       *m.box, *m.crop_shape, *m.latent_shape, m.scale, m.rate_level, m.snr_db,
                       symbols.size, int(m.symbol_format), step, mask_h, mask_w)
    bits = b"" if m.mask is None else np.packbits(np.asarray(m.mask, bool).ravel()).tobytes()
    gain = bytes(m.gain)
    if gain and len(gain) != GAIN_BYTES:
        raise ValueError(f"a frame's gain has {GAIN_BYTES} bytes, got {len(gain)}")
    tail = bytes([len(gain)]) + gain if gain else b""
    return head + raw + bits + _COUNT.pack(len(m.cells)) + bytes(m.cells) + tail


def _encode_background(m: Background) -> bytes:
    return _BACKGROUND.pack(m.segment_id, m.background_id, int(m.kind), m.height, m.width,
                            len(m.payload)) + m.payload


def _encode_control(m: Control) -> bytes:
    raw = json.dumps(dict(m.body), separators=(",", ":"), allow_nan=False).encode("utf-8")
    return _CONTROL.pack(int(m.topic), len(raw)) + raw


def _encode_bye(m: Bye) -> bytes:
    if len(m.dropped) > MAX_REASONS:
        raise ValueError(f"at most {MAX_REASONS} drop reasons in a Bye")
    if not set(m.dropped_runs) <= set(m.dropped):
        raise ValueError("a Bye lists dropped index runs of a reason it does not count")
    if sum(len(r) for r in m.dropped_runs.values()) > MAX_DROP_RUNS:
        raise ValueError(f"at most {MAX_DROP_RUNS} dropped index runs in a Bye")
    out = [_BYE.pack(m.frames_read, m.frames_sent, len(m.dropped))]
    for reason, count in m.dropped.items():
        runs = m.dropped_runs.get(reason, ())
        out += [_text(reason), _COUNT.pack(count), _RUNS.pack(len(runs))]
        out += [_RUN.pack(first, length) for first, length in runs]
    return b"".join(out)


_ENCODERS = {Hello: (MsgType.HELLO, _encode_hello), FrameMsg: (MsgType.FRAME, _encode_frame),
             Background: (MsgType.BACKGROUND, _encode_background),
             Control: (MsgType.CONTROL, _encode_control), Bye: (MsgType.BYE, _encode_bye)}

# Largest body of each type (the limit checked before reassembly).
MAX_BODY = {
    MsgType.HELLO: _HELLO.size + 2 * (1 + MAX_TEXT),
    MsgType.FRAME: _FRAME.size + 4 * MAX_SYMBOLS + MAX_MASK_CELLS // 8 + _COUNT.size
    + MAX_CELL_BYTES + 1 + GAIN_BYTES,
    MsgType.BACKGROUND: _BACKGROUND.size + MAX_BACKGROUND_BYTES,
    MsgType.CONTROL: _CONTROL.size + MAX_CONTROL_BYTES,
    MsgType.BYE: _BYE.size + MAX_REASONS * (1 + MAX_TEXT + _COUNT.size + _RUNS.size)
    + MAX_DROP_RUNS * _RUN.size,
}


def encode_body(msg: Message) -> tuple[MsgType, bytes]:
    """The type and body bytes of one message. Raises ValueError on unencodable values."""
    try:
        kind, encoder = _ENCODERS[type(msg)]
    except KeyError:
        raise TypeError(f"not a wire message: {type(msg).__name__}") from None
    try:
        body = encoder(msg)
    except (struct.error, TypeError) as exc:
        raise ValueError(f"{type(msg).__name__} field out of range or of the wrong type: "
                         f"{exc}") from None
    if len(body) > MAX_BODY[kind]:
        raise ValueError(f"{type(msg).__name__} of {len(body)} bytes is over the "
                         f"{MAX_BODY[kind]}-byte limit")
    return kind, body


# --- body decoding -----------------------------------------------------------------

class _Reader:
    """Bounds-checked reads from a body; every shortfall is a WireError."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise WireError("truncated", f"needs {n} bytes at offset {self.pos}, "
                                         f"body has {len(self.data)}")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def unpack(self, s: struct.Struct) -> tuple:
        return s.unpack(self.take(s.size))

    def text(self) -> str:
        (n,) = self.take(1)
        if n > MAX_TEXT:
            raise WireError("oversized", f"text field of {n} bytes")
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("bad_field", "text field is not utf-8") from None

    def end(self) -> None:
        if self.pos != len(self.data):
            raise WireError("trailing", f"{len(self.data) - self.pos} bytes after the body")


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise WireError("bad_field", what)


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _decode_hello(r: _Reader) -> Hello:
    proof, width, height, fps, skip, channel, snr = r.unpack(_HELLO)
    model, segmenter = r.text(), r.text()
    _check(0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE, "frame size out of range")
    _check(_finite(fps, snr) and 0 < fps <= 1000, "fps or SNR out of range")
    _check(channel < len(CHANNELS), f"channel code {channel}")
    return Hello(proof, SessionParams(width, height, fps, skip, CHANNELS[channel], snr,
                                      model, segmenter))


def _decode_frame(r: _Reader) -> FrameMsg:
    (index, pts, captured, mode, segment, background, x1, y1, x2, y2, ch, cw, lc, lh, lw,
     scale, rate, snr, count, fmt, step, mask_h, mask_w) = r.unpack(_FRAME)
    _check(mode in Mode._value2member_map_, f"mode {mode}")
    _check(_finite(pts, captured, scale, snr), "non-finite pts, time, scale or SNR")
    _check(x1 <= x2 <= MAX_SIDE and y1 <= y2 <= MAX_SIDE, f"box {(x1, y1, x2, y2)}")
    _check(ch <= MAX_SIDE and cw <= MAX_SIDE and lh <= MAX_SIDE and lw <= MAX_SIDE,
           "crop or latent shape out of range")
    _check(0 < scale <= 1, f"scale {scale}")
    if count > MAX_SYMBOLS:
        raise WireError("oversized", f"{count} symbols")
    if mask_h * mask_w > MAX_MASK_CELLS:
        raise WireError("oversized", f"mask of {mask_h}x{mask_w}")
    _check(fmt in SymbolFormat._value2member_map_, f"symbol format {fmt}")
    fmt = SymbolFormat(fmt)
    _check(math.isfinite(step) and step >= 0 and (step == 0 or fmt == SymbolFormat.INT8),
           f"symbol step {step}")
    symbols = _unpack_symbols(r.take(BYTES_PER_SYMBOL[fmt] * count), count, fmt, step)
    _check(bool(np.isfinite(symbols).all()), "non-finite symbols")
    mask = None
    if mask_h or mask_w:
        cells = mask_h * mask_w
        _check(cells > 0, f"mask of {mask_h}x{mask_w}")
        bits = np.frombuffer(r.take((cells + 7) // 8), np.uint8)
        mask = np.unpackbits(bits)[:cells].reshape(mask_h, mask_w).astype(bool)
    (size,) = r.unpack(_COUNT)
    if size > MAX_CELL_BYTES:
        raise WireError("oversized", f"cell map of {size} bytes")
    cells = r.take(size)
    gain = b""
    if r.pos < len(r.data):  # the optional exposure gain
        (n,) = r.take(1)
        _check(n == GAIN_BYTES, f"gain of {n} bytes")
        gain = r.take(n)
    return FrameMsg(index, pts, captured, Mode(mode), segment, background, (x1, y1, x2, y2),
                    (ch, cw), (lc, lh, lw), scale, rate, snr, symbols, mask, fmt, cells, gain)


def _decode_background(r: _Reader) -> Background:
    segment, background, kind, height, width, size = r.unpack(_BACKGROUND)
    _check(kind in BackgroundKind._value2member_map_, f"background kind {kind}")
    _check(0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE, "background size out of range")
    if size > MAX_BACKGROUND_BYTES:
        raise WireError("oversized", f"background payload of {size} bytes")
    return Background(segment, background, BackgroundKind(kind), height, width, r.take(size))


def _decode_control(r: _Reader) -> Control:
    topic, size = r.unpack(_CONTROL)
    _check(topic in ControlTopic._value2member_map_, f"control topic {topic}")
    if size > MAX_CONTROL_BYTES:
        raise WireError("oversized", f"control body of {size} bytes")
    raw = r.take(size)
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WireError("bad_json", "control body is not valid JSON") from None
    if not isinstance(body, dict):
        raise WireError("bad_json", "control body is not a JSON object")
    return Control(ControlTopic(topic), body)


def _reject_constant(name: str) -> None:
    raise ValueError(f"JSON constant {name} not allowed")


def _decode_bye(r: _Reader) -> Bye:
    read, sent, n = r.unpack(_BYE)
    if n > MAX_REASONS:
        raise WireError("oversized", f"{n} drop reasons")
    dropped: dict[str, int] = {}
    runs: dict[str, tuple[tuple[int, int], ...]] = {}
    total = 0
    for _ in range(n):
        reason = r.text()
        (dropped[reason],), (k,) = r.unpack(_COUNT), r.unpack(_RUNS)
        total += k
        if total > MAX_DROP_RUNS:
            raise WireError("oversized", f"over {MAX_DROP_RUNS} dropped index runs")
        if k:
            runs[reason] = tuple(r.unpack(_RUN) for _ in range(k))
            _check(sum(length for _, length in runs[reason]) <= dropped[reason],
                   f"runs of {reason!r} list more frames than it counts")
    _check(len(dropped) == n, "repeated drop reason")
    return Bye(read, sent, dropped, runs)


_DECODERS = {MsgType.HELLO: _decode_hello, MsgType.FRAME: _decode_frame,
             MsgType.BACKGROUND: _decode_background, MsgType.CONTROL: _decode_control,
             MsgType.BYE: _decode_bye}


def decode_body(kind: MsgType, body: bytes) -> Message:
    """Decode one reassembled body of the given type; raises WireError only."""
    reader = _Reader(body)
    msg = _DECODERS[kind](reader)
    reader.end()
    return msg


# --- packets -----------------------------------------------------------------------

class Packer:
    """Sender side: numbers messages and splits each into packets of <= PACKET_SIZE bytes."""

    def __init__(self) -> None:
        self.seq = 0

    def pack(self, msg: Message) -> list[bytes]:
        """The packets of one message, in order. Raises ValueError on unencodable values."""
        return self.split(*encode_body(msg))

    def split(self, kind: MsgType, body: bytes) -> list[bytes]:
        """The packets of one encoded body (see ``encode_body``), numbered next in sequence."""
        chunks = [body[i:i + CHUNK_PAYLOAD] for i in range(0, len(body), CHUNK_PAYLOAD)] or [b""]
        seq = self.seq
        self.seq += 1
        return [HEADER.pack(MAGIC, VERSION, kind, i, len(chunks), seq, len(c)) + c
                for i, c in enumerate(chunks)]


class Unpacker:
    """Receiver side: checks packets, reassembles chunks, decodes messages.

    ``feed`` returns the message a packet completes (or None while chunks are
    pending) and raises WireError for a bad packet. After an error the rest of
    that message's chunks are skipped silently, so one bad message counts once.
    """

    def __init__(self) -> None:
        self.last_seq = -1
        self.last_frame = -1
        self._kind: MsgType | None = None
        self._seq = -1
        self._count = 0
        self._parts: list[bytes] = []
        self._skip_seq: int | None = None

    def feed(self, packet: bytes) -> Message | None:
        """Take one data-channel packet; return a completed message or None."""
        if not isinstance(packet, (bytes, bytearray, memoryview)):
            raise WireError("bad_field", f"packet is {type(packet).__name__}, not bytes")
        packet = bytes(packet)
        if len(packet) < HEADER.size:
            raise WireError("truncated", f"packet of {len(packet)} bytes, header is "
                                         f"{HEADER.size}")
        magic, version, kind, index, count, seq, length = HEADER.unpack_from(packet)
        if magic != MAGIC:
            raise WireError("bad_magic", f"magic {magic!r}")
        if version != VERSION:
            raise WireError("bad_version", f"version {version}, this build reads {VERSION}")
        if seq == self._skip_seq:
            return None
        self._skip_seq = None
        try:
            return self._chunk(kind, index, count, seq, length, packet[HEADER.size:])
        except WireError:
            self._reset()
            self._skip_seq = seq
            raise

    def _reset(self) -> None:
        self._kind, self._count, self._parts = None, 0, []

    def _chunk(self, kind: int, index: int, count: int, seq: int, length: int,
               payload: bytes) -> Message | None:
        if kind not in MsgType._value2member_map_:
            raise WireError("unknown_type", f"type {kind}")
        kind = MsgType(kind)
        if length > CHUNK_PAYLOAD:
            raise WireError("oversized", f"chunk of {length} bytes")
        if len(payload) < length:
            raise WireError("truncated", f"chunk says {length} bytes, has {len(payload)}")
        if len(payload) > length:
            raise WireError("trailing", f"chunk says {length} bytes, has {len(payload)}")
        if count == 0 or count > -(-MAX_BODY[kind] // CHUNK_PAYLOAD):
            raise WireError("oversized", f"{count} chunks for a {kind.name}")
        if index == 0:
            if self._parts:
                raise WireError("chunk_order", f"message {seq} starts before message "
                                               f"{self._seq} ended")
            if seq <= self.last_seq:
                raise WireError("duplicate", f"message {seq} after {self.last_seq}")
            self._kind, self._count, self._seq = kind, count, seq
        elif (index != len(self._parts) or kind != self._kind or count != self._count
              or seq != self._seq):
            raise WireError("chunk_order", f"chunk {index}/{count} of message {seq}")
        if index < count - 1 and length != CHUNK_PAYLOAD:
            raise WireError("chunk_order", f"short chunk {index}/{count} of message {seq}")
        self._parts.append(payload)
        if len(self._parts) < count:
            return None
        body = b"".join(self._parts)
        self._reset()
        self.last_seq = seq
        msg = decode_body(kind, body)
        if isinstance(msg, FrameMsg):
            if msg.index <= self.last_frame:
                raise WireError("frame_order", f"frame {msg.index} after {self.last_frame}")
            self.last_frame = msg.index
        return msg
