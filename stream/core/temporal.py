"""Temporal coding in the JSCC latent domain: conditional replenishment of latent cells.

A *cell* is one position of the JSCC latent grid: ``d x d`` pixels of the coded frame
(``d = codec.cfg.downsample``), all the sent complex planes at that position. Cells live on
a grid in frame coordinates (the frame scaled by the segment's crop scale), so a crop box
that moves keeps its still cells: every crop is cut on that grid.

Sender (:class:`CellTracker`): keeps per cell the clean latent the receiver last got as a
*replacement* (``ref``), the receiver's noise variance per symbol for that cell (``var``,
known exactly from the gains and the SNR; infinite when the receiver holds nothing
usable) and the frames since the last replacement. Each frame it chooses per cell:

- keep (nothing sent): the receiver's error stays ``drift + var``, where ``drift`` is the
  mean squared change per symbol of the cell's latent since ``ref``;
- replace (the current latent is sent): the error becomes the look's noise variance;
- refine (``ref`` is sent again): the receiver combines the looks with minimum variance,
  ``var' = var s / (var + s)`` for a look of variance ``s``; the drift stays.

The action of a cell is the better of replace and refine (stale content counts
``drift_weight`` times as much as noise: the decoder removes noise, not staleness).
Decisions are taken per block of cells (BLOCK_PIXELS a side, aligned on the frame grid):
a block is sent when that reduces its cells' error by more than ``threshold`` times the
channel's noise variance on average, or, with a budget, the blocks with the largest
reductions per channel use are sent until the budget is spent. With a budget and a level
room the grid's rate level is the policy's or, when higher, the highest the budget affords
(``budget_level``): still cells cost nothing, so a budget that resends a crop at level 0
every frame can keep a crop of mostly still cells at a higher level.
Cells never sent, or whose replacement was lost, are replaced first; a cell not replaced
for ``refresh`` frames is replaced (rolling refresh). The symbols sent are scaled by one
gain per frame to unit average energy per channel use (the receiver divides it out, so a
look's noise variance is ``N0 / gain^2``).

Receiver (:class:`CellStore`): holds per cell the estimate and its variance; a replaced
cell takes the new look, a refined one is the minimum-variance combination of its looks
(nothing is ever added as a difference, so noise does not accumulate). The crop is
decoded at the channel's SNR: telling the decoder the higher SNR of refined cells cost
0.4 dB on asl-again at 0 dB (it then under-denoises the fresh cells beside them).

The cell map (keep / replace / refine per cell of the crop grid) is side information:
run lengths of sent/kept cells in Elias-gamma code, or one bit per cell, whichever is
shorter, plus one replace/refine bit per sent cell when the frame refines any. Its bits,
the grid origin and the gain are counted (``CellPlan.side_bits``).
"""

from __future__ import annotations

import math
import struct
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from stream.core.config import TemporalConfig

if TYPE_CHECKING:
    from jscc.model import JSCCConfig

KEEP, REPLACE, REFINE = 0, 1, 2
ORIGIN_BITS = 2 * 12          # grid origin (cells), 12 bits each
GAIN_BITS = 16                # the frame's gain, float16
FLAG_BITS = 2                 # map code (run lengths or bitmap), refinements present
SCALE_STEP = 2 ** -0.25       # crop scales are powers of this
MAX_SCALE_STEPS = 16
BLOCK_PIXELS = 16             # side of a decision block in coded pixels (a macroblock)
HISTORY = 64                  # frames whose sent cells are remembered for loss repair
_HEAD = struct.Struct("!HHeBI")  # origin y, x (cells), gain, flags, map bits


class CellMapError(ValueError):
    """A cell-map payload that does not fit its latent grid (one line)."""


@dataclass(frozen=True)
class GridCrop:
    """A crop cut on the cell grid of the scaled frame.

    crop: h x w x 3 uint8 (scaled pixels, h and w multiples of the cell side except at
    the frame's bottom/right edge); box: (x1, y1, x2, y2) in source-frame pixels, x2/y2
    exclusive; origin: (row, col) of the crop's first cell on the grid; scale: scaled
    frame side / source frame side; mask: h x w bool foreground of the crop.
    """

    crop: np.ndarray
    box: tuple[int, int, int, int]
    origin: tuple[int, int]
    scale: float
    mask: np.ndarray


def grid_shape(frame_hw: tuple[int, int], scale: float, cell: int) -> tuple[int, int]:
    """Cells (rows, cols) of the grid of an H x W frame scaled by ``scale``, cells of
    ``cell`` pixels a side."""
    h, w = scaled_size(frame_hw, scale)
    return -(-h // cell), -(-w // cell)


def scaled_size(frame_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """(H', W') of an H x W frame scaled by ``scale`` (rounded, at least 1)."""
    return max(1, round(frame_hw[0] * scale)), max(1, round(frame_hw[1] * scale))


def grid_scale(scale: float) -> float:
    """The grid scale (a power of SCALE_STEP) nearest to ``scale`` as the wire carries it."""
    steps = round(math.log(scale) / math.log(SCALE_STEP)) if scale > 0 else 0
    return SCALE_STEP ** min(max(steps, 0), MAX_SCALE_STEPS)


def scale_steps(area: int, max_pixels: int | None) -> int:
    """Fewest SCALE_STEP steps that bring a crop of ``area`` pixels under ``max_pixels``."""
    if max_pixels is None or area <= max_pixels:
        return 0
    return min(MAX_SCALE_STEPS, math.ceil(math.log(max_pixels / area) / (2 * math.log(SCALE_STEP))))


def block_cells(cell: int) -> int:
    """Cells per side of a decision block: BLOCK_PIXELS of the coded frame (at least 1)."""
    return max(1, BLOCK_PIXELS // cell)


def grid_crop(image: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int],
              scale: float, cell: int) -> GridCrop:
    """Cut the crop around ``box`` (source pixels) from ``image`` (H x W x 3 uint8) scaled by
    ``scale``, grown outwards to whole cells of ``cell`` scaled pixels (the frame's
    bottom/right edge may end it mid-cell); ``mask`` is the H x W bool foreground."""
    h, w = image.shape[:2]
    sh, sw = scaled_size((h, w), scale)
    if scale != 1.0:
        image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST) > 0
    x1, y1, x2, y2 = box
    step = cell
    sx1, sy1 = int(x1 * scale) // step * step, int(y1 * scale) // step * step
    sx2 = min(sw, -(-math.ceil(x2 * scale) // step) * step)
    sy2 = min(sh, -(-math.ceil(y2 * scale) // step) * step)
    src = (min(w - 1, round(sx1 / scale)), min(h - 1, round(sy1 / scale)),
           min(w, round(sx2 / scale)), min(h, round(sy2 / scale)))
    return GridCrop(np.ascontiguousarray(image[sy1:sy2, sx1:sx2]), src,
                    (sy1 // cell, sx1 // cell), scale, mask[sy1:sy2, sx1:sx2])


@dataclass(frozen=True, eq=False)
class CellPlan:
    """What one frame sends: ``actions`` (h x w uint8: KEEP / REPLACE / REFINE per cell of
    the crop grid), ``symbols`` (1-D complex64, plane-major over the sent cells in raster
    order, already times ``gain``: unit average energy), ``gain`` and the coded map
    (``payload`` bytes, ``side_bits`` counted bits: map, origin, gain, flags)."""

    actions: np.ndarray
    symbols: np.ndarray
    gain: float
    payload: bytes
    side_bits: int


# -- the cell map as bits --------------------------------------------------------------

def _gamma_bits(values: np.ndarray) -> np.ndarray:
    """Elias-gamma code of positive integers, concatenated, as a uint8 0/1 array."""
    if values.size == 0:
        return np.zeros(0, np.uint8)
    widths = 2 * np.floor(np.log2(values)).astype(np.int64) + 1
    starts = np.repeat(np.cumsum(widths) - widths, widths)
    pos = np.arange(int(widths.sum())) - starts
    shift = np.repeat(widths, widths) - 1 - pos
    return ((np.repeat(values.astype(np.int64), widths) >> shift) & 1).astype(np.uint8)


def _runs(sent: np.ndarray) -> np.ndarray:
    """Lengths of the alternating runs of a flat bool array, starting with a (possibly
    empty) run of False; each length plus one (gamma codes need positive values)."""
    change = np.flatnonzero(np.diff(sent.astype(np.int8))) + 1
    edges = np.concatenate(([0], change, [sent.size]))
    runs = np.diff(edges)
    if sent.size and sent[0]:
        runs = np.concatenate(([0], runs))
    return runs + 1


def encode_map(actions: np.ndarray) -> tuple[int, np.ndarray]:
    """(flags, bits) of a cell map: flag bit 0 = run-length code (else bitmap), bit 1 =
    the frame refines cells (then one bit per sent cell: 1 = refine)."""
    flat = actions.ravel()
    sent = flat != KEEP
    refines = bool((flat == REFINE).any())
    runs = _gamma_bits(_runs(sent))
    flags = (1 if runs.size < sent.size else 0) | (2 if refines else 0)
    bits = runs if flags & 1 else sent.astype(np.uint8)
    if refines:
        bits = np.concatenate((bits, (flat[sent] == REFINE).astype(np.uint8)))
    return flags, bits


def decode_map(flags: int, bits: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`encode_map` for an h x w grid; CellMapError when it does not fit."""
    n = shape[0] * shape[1]
    if flags & 1:
        sent, pos, value, total = [], 0, False, 0
        ones = np.flatnonzero(bits)
        while total < n:
            nxt = int(np.searchsorted(ones, pos))
            zeros = int(ones[nxt]) - pos if nxt < ones.size else bits.size
            pos += zeros
            if zeros > 40 or pos + zeros + 1 > bits.size:
                raise CellMapError("cell map run lengths end early")
            field = bits[pos:pos + zeros + 1].astype(np.int64)
            run = int((field << np.arange(zeros, -1, -1)).sum()) - 1
            pos += zeros + 1
            if run > n - total:
                raise CellMapError("cell map runs do not cover the latent grid")
            sent.append(np.full(run, value))
            total += run
            value = not value
        flat = np.concatenate(sent) if sent else np.zeros(0, bool)
        if flat.size != n:
            raise CellMapError("cell map runs do not cover the latent grid")
    else:
        if bits.size < n:
            raise CellMapError("cell bitmap shorter than the latent grid")
        flat, pos = bits[:n].astype(bool), n
    actions = flat.astype(np.uint8) * REPLACE
    if flags & 2:
        k = int(flat.sum())
        if bits.size != pos + k:
            raise CellMapError("refinement bits do not match the sent cells")
        actions[flat] = np.where(bits[pos:].astype(bool), REFINE, REPLACE)
    elif bits.size != pos:
        raise CellMapError("cell map has bits left over")
    return actions.reshape(shape)


def pack_payload(origin: tuple[int, int], gain: float, actions: np.ndarray) -> tuple[bytes, int]:
    """(bytes, counted side bits) of a frame's map (actions per block) with its grid
    origin (cells) and gain."""
    flags, bits = encode_map(actions)
    head = _HEAD.pack(origin[0], origin[1], gain, flags, bits.size)
    return head + np.packbits(bits).tobytes(), ORIGIN_BITS + GAIN_BITS + FLAG_BITS + int(bits.size)


@dataclass(frozen=True, eq=False)
class CellMap:
    """A decoded cell-map payload: origin (row, col) in cells, gain, actions per block
    (rows x cols uint8)."""

    origin: tuple[int, int]
    gain: float
    actions: np.ndarray


def unpack_payload(data: bytes, shape: tuple[int, int]) -> CellMap:
    """Inverse of :func:`pack_payload` for a map of ``shape`` (block rows, cols);
    CellMapError when malformed."""
    if len(data) < _HEAD.size:
        raise CellMapError("cell map shorter than its header")
    gy, gx, gain, flags, nbits = _HEAD.unpack_from(data)
    if len(data) != _HEAD.size + (nbits + 7) // 8 or flags > 3:
        raise CellMapError("cell map length does not match its header")
    if not (math.isfinite(gain) and gain > 0):
        raise CellMapError(f"cell map gain {gain}")
    bits = np.unpackbits(np.frombuffer(data, np.uint8, offset=_HEAD.size))[:nbits]
    return CellMap((gy, gx), float(gain), decode_map(flags, bits, shape))


def unpack_origin(data: bytes) -> tuple[int, int]:
    """The grid origin (row, col) in cells of a cell-map payload; CellMapError when short."""
    if len(data) < _HEAD.size:
        raise CellMapError("cell map shorter than its header")
    return _HEAD.unpack_from(data)[:2]


def side_bits(data: bytes) -> int:
    """Counted side-information bits of a cell-map payload (0 for none)."""
    if len(data) < _HEAD.size:
        return 0
    return ORIGIN_BITS + GAIN_BITS + FLAG_BITS + _HEAD.unpack_from(data)[-1]


# -- sender ------------------------------------------------------------------------------

class CellTracker:
    """Sender-side record of what the receiver holds per latent cell (see the module doc).

    cell: pixels per cell side (``codec.cfg.downsample``); config: threshold, drift weight,
    refresh (see ``TemporalConfig``); max_pixels: resolution check of the crop (None =
    never scale). Cells are decided in blocks of ``block_cells(cell)`` cells a side.
    """

    def __init__(self, cell: int, config: TemporalConfig, max_pixels: int | None) -> None:
        self.cell, self.block = cell, block_cells(cell)
        self.threshold, self.refresh = config.threshold, config.refresh
        self.drift_weight = config.drift_weight
        self.max_pixels = max_pixels
        self.steps = -1            # scale steps of the current grid (-1: none yet)
        self.level: int | None = None
        self.ref = np.zeros((0, 0, 0), np.complex64)
        self.var = np.zeros((0, 0), np.float32)
        self.age = np.zeros((0, 0), np.int32)
        self._history: deque = deque(maxlen=HISTORY)

    @property
    def scale(self) -> float:
        """Scaled frame side / source frame side of the current grid."""
        return SCALE_STEP ** max(self.steps, 0)

    def reset(self) -> None:
        """Forget everything the receiver holds (a new segment): every cell is sent anew."""
        self.steps, self.level = -1, None

    def crop(self, image: np.ndarray, mask: np.ndarray,
             box: tuple[int, int, int, int]) -> GridCrop:
        """The grid-aligned crop of ``image`` around ``box``; picks the scale (powers of
        SCALE_STEP, changed only when the crop outgrows the resolution check or fits two
        steps larger) and starts a new grid when it changes."""
        x1, y1, x2, y2 = box
        want = scale_steps((x2 - x1) * (y2 - y1), self.max_pixels)
        if self.steps < 0 or want > self.steps or want <= self.steps - 2:
            self.steps, self.level = want, None
            gh, gw = grid_shape(image.shape[:2], self.scale, self.cell)
            self.var = np.full((gh, gw), np.inf, np.float32)
            self.age = np.zeros((gh, gw), np.int32)
            self.ref = np.zeros((0, gh, gw), np.complex64)
            self._history.clear()
        return grid_crop(image, mask, box, self.scale, self.cell)

    def plan(self, z: np.ndarray, origin: tuple[int, int], noise_var: float,
             candidates: np.ndarray | None = None, budget: float | None = None,
             index: int = 0) -> CellPlan:
        """Choose what to send of the crop latent ``z`` (P x h x w complex64, unit average
        energy per plane as the encoder gives it) placed at grid ``origin`` (cells, a
        multiple of the block side).

        noise_var: channel noise variance per complex symbol (10^(-SNR/10)); candidates:
        h x w bool cells that may be sent (None = all; others are kept); budget: channel
        uses this frame's symbols and map may take (None = threshold only); index: the
        frame index, remembered for :meth:`lost`. Decisions are taken per block of
        ``block`` x ``block`` cells. Commits the receiver's new state.
        """
        p, h, w = z.shape
        if self.ref.shape[0] < p:  # more planes than held so far: the new ones are unknown
            grown = np.zeros((p, *self.var.shape), np.complex64)
            grown[: self.ref.shape[0]] = self.ref
            self.ref = grown
        gy, gx = origin
        ref = self.ref[:p, gy:gy + h, gx:gx + w]
        var, age = self.var[gy:gy + h, gx:gx + w], self.age[gy:gy + h, gx:gx + w]
        if ref.shape[1:] != (h, w):
            raise ValueError(f"crop grid {h}x{w} at {origin} leaves the frame grid "
                             f"{self.var.shape}")
        cand = np.ones((h, w), bool) if candidates is None else candidates
        diff = z - ref
        drift = (diff.real ** 2 + diff.imag ** 2).mean(axis=0)
        known = np.isfinite(var)
        v = np.where(known, var, 0.0)
        replace_gain = np.where(cand, self.drift_weight * drift + v - noise_var, 0.0)
        refine_gain = np.where(cand, v * v / (v + noise_var), 0.0)
        due = cand & (~known | ((age >= self.refresh) if self.refresh > 0 else False))
        b = self.block
        n = _blocks(cand.astype(np.float64), origin, b)
        replace_b, refine_b = _blocks(replace_gain, origin, b), _blocks(refine_gain, origin, b)
        due_b = _blocks(due.astype(np.float64), origin, b) > 0
        refine = (refine_b > replace_b) & ~due_b
        benefit = np.where(due_b, np.inf, np.maximum(replace_b, refine_b))
        if budget is None:
            send = (n > 0) & (benefit > self.threshold * noise_var * n)
        else:  # the budget sets the threshold: everything that helps, best first
            send = _within_budget(benefit / np.maximum(n, 1), (n > 0) & (benefit > 0), n * p,
                                  budget)
        block_actions = np.where(send, np.where(refine, REFINE, REPLACE), KEEP).astype(np.uint8)
        actions = cell_actions(block_actions, b, (h, w), origin, candidates)
        sent = actions != KEEP
        chosen = np.where((actions == REFINE)[None], ref, z)[:, sent]
        energy = float((chosen.real ** 2 + chosen.imag ** 2).mean()) if chosen.size else 1.0
        gain = float(np.float16(1.0 / math.sqrt(max(energy, 1e-12))))
        payload, bits = pack_payload(origin, gain, block_actions)
        look = noise_var / gain ** 2
        replaced, refined = actions == REPLACE, actions == REFINE
        ref[:, replaced] = z[:, replaced]
        var[refined] = var[refined] * look / (var[refined] + look)
        var[replaced] = look
        age += 1
        age[replaced] = 0
        self._history.append((index, origin, sent))
        symbols = (chosen.reshape(-1) * gain).astype(np.complex64)
        return CellPlan(actions, symbols, gain, payload, bits)

    def lost(self, index: int) -> bool:
        """The receiver reports frame ``index`` lost: whatever it carried is unknown there,
        so those cells are replaced next. Returns whether the frame was remembered."""
        for i, (gy, gx), sent in self._history:
            if i == index:
                h, w = sent.shape
                view = self.var[gy:gy + h, gx:gx + w]
                view[sent] = np.inf
                return True
        return False


def budget_level(cfg: JSCCConfig, cells: int, budget: float, room: float) -> int:
    """The rate level of a grid under a frame budget: the highest whose ``cells`` latent
    cells all sent at once cost at most ``room`` budgets (channel uses), else level 0.
    Still cells cost nothing, so a budget buys more than one frame's worth of cells."""
    fits = [k for k in range(cfg.levels) if cells * cfg.planes_sent(k) <= room * budget]
    return max(fits, default=0)


def cell_actions(block_actions: np.ndarray, block: int, shape: tuple[int, int],
                 origin: tuple[int, int], candidates: np.ndarray | None = None) -> np.ndarray:
    """Per-cell actions (h x w uint8) of a block map of the crop grid at ``origin`` (cells):
    each cell takes the action of its block (blocks of block x block cells, aligned on
    the frame grid), cells outside ``candidates`` (h x w bool; None = all) are kept."""
    h, w = shape
    oy, ox = origin[0] % block, origin[1] % block
    acts = np.repeat(np.repeat(block_actions, block, axis=0), block, axis=1)[oy:oy + h,
                                                                            ox:ox + w]
    if acts.shape != (h, w):
        raise CellMapError(f"block map {block_actions.shape} does not cover a {h}x{w} grid")
    return acts if candidates is None else np.where(candidates, acts, KEEP).astype(np.uint8)


def block_shape(shape: tuple[int, int], origin: tuple[int, int],
                block: int) -> tuple[int, int]:
    """Blocks (rows, cols) of block x block cells, aligned on the frame grid, that an
    h x w crop grid at ``origin`` (cells) overlaps."""
    oy, ox = origin[0] % block, origin[1] % block
    return -(-(shape[0] + oy) // block), -(-(shape[1] + ox) // block)


def _blocks(a: np.ndarray, origin: tuple[int, int], block: int) -> np.ndarray:
    """An h x w per-cell array of the crop grid at ``origin`` summed over the frame-aligned
    blocks it overlaps (see ``block_shape``)."""
    oy, ox = origin[0] % block, origin[1] % block
    h, w = a.shape
    bh, bw = block_shape((h, w), origin, block)
    padded = np.zeros((bh * block, bw * block), a.dtype)
    padded[oy:oy + h, ox:ox + w] = a
    return padded.reshape(bh, block, bw, block).sum(axis=(1, 3))


def _within_budget(benefit: np.ndarray, send: np.ndarray, cost: np.ndarray,
                   budget: float) -> np.ndarray:
    """The blocks (bool, shaped like ``benefit``) of ``send`` with the largest benefit per
    symbol whose symbols (``cost`` per block) and map bits (two per block, a bound for
    the run-length code) fit ``budget`` channel uses."""
    order = np.argsort(-benefit, axis=None, kind="stable")
    order = order[send.ravel()[order]]
    spent = np.cumsum(cost.ravel()[order] + 2)
    room = budget - ORIGIN_BITS - GAIN_BITS - FLAG_BITS
    keep = np.zeros(benefit.size, bool)
    keep[order[spent <= room]] = True
    return keep.reshape(benefit.shape)


# -- receiver ----------------------------------------------------------------------------

class CellStore:
    """Receiver-side latent estimate per cell of the frame grid and its noise variance.

    cell: pixels per cell side (``codec.cfg.downsample``, as the sender's tracker).
    """

    def __init__(self, cell: int) -> None:
        self.cell, self.block = cell, block_cells(cell)
        self.key: tuple | None = None
        self.value = np.zeros((0, 0, 0), np.complex64)
        self.var = np.zeros((0, 0), np.float32)

    def apply(self, payload: bytes, received: np.ndarray, latent: tuple[int, int, int],
              frame_hw: tuple[int, int], scale: float, noise_var: float,
              candidates: np.ndarray | None = None) -> np.ndarray:
        """Fold one frame's received symbols into the store and return the crop's latent.

        payload: the frame's cell map (``pack_payload``); received: 1-D complex symbols as
        they came off the channel (times the frame's gain); latent: (P, h, w) of the crop;
        frame_hw: source frame (H, W); scale: the grid's scale as sent (snapped to a
        power of SCALE_STEP); noise_var: channel noise variance per symbol; candidates:
        h x w bool cells the sender could send (the fg-latent mask; None = all). The
        latent is P x h x w complex64, zeros where nothing was ever received.
        CellMapError when the map, the symbols or the origin do not fit.
        """
        p, h, w = latent
        origin = unpack_origin(payload)
        cells = unpack_payload(payload, block_shape((h, w), origin, self.block))
        scale = grid_scale(scale)
        grid = grid_shape(frame_hw, scale, self.cell)
        if self.key != (grid, scale):
            self.key = (grid, scale)
            self.value = np.zeros((p, *grid), np.complex64)
            self.var = np.full(grid, np.inf, np.float32)
        if self.value.shape[0] < p:
            grown = np.zeros((p, *grid), np.complex64)
            grown[: self.value.shape[0]] = self.value
            self.value = grown
        gy, gx = cells.origin
        if gy + h > grid[0] or gx + w > grid[1]:
            raise CellMapError(f"crop grid {h}x{w} at {cells.origin} leaves the frame grid {grid}")
        acts = cell_actions(cells.actions, self.block, (h, w), origin, candidates)
        sent = acts != KEEP
        if received.size != p * int(sent.sum()):
            raise CellMapError(f"{received.size} symbols for {int(sent.sum())} cells of "
                               f"{p} planes")
        value = self.value[:p, gy:gy + h, gx:gx + w]
        var = self.var[gy:gy + h, gx:gx + w]
        look = noise_var / cells.gain ** 2
        y = np.zeros((p, h, w), np.complex64)
        y[:, sent] = (received / cells.gain).reshape(p, -1)
        replaced, refined = acts == REPLACE, acts == REFINE
        value[:, replaced] = y[:, replaced]
        old = var[refined]
        weight = np.where(np.isinf(old), 0.0, look / (old + look))  # of the held estimate
        value[:, refined] = weight * value[:, refined] + (1 - weight) * y[:, refined]
        var[refined] = np.where(np.isinf(old), look, old * look / (old + look))
        var[replaced] = look
        return value.copy()
