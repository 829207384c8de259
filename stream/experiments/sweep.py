"""Offline experiment sweeps: clip x method x channel x SNR x variant, resumable.

A *cell* is one (clip, method, channel, snr, variant). JSCC methods run the whole
sender -> channel -> receiver chain (:func:`stream.experiments.run.run_video`) at the
clip's full resolution (no resolution check, so direct and proposed compare at equal
resolution); H.264 methods (:mod:`jscc.digital.h264`) are named ``h264-<rule>`` (at the
channel uses of the ``proposed`` cell) or ``h264-<rule>@<jscc method>`` (at that
method's channel uses): every JSCC method can get its own H.264 at its own channel uses.

JSCC methods: ``direct`` (whole frames through JSCC), ``proposed`` (key-information crops
through JSCC, backgrounds over the digital link), ``proposed-bg-jscc`` (crops and
backgrounds through JSCC: the crop's gain alone), ``proposed-fg-latent`` (only the
foreground cells of the crop's latent), and ``-skip2`` forms (every second frame
interpolated).

Channels (:data:`CHANNELS`):

* ``awgn``: static AWGN whose SNR the sender knows;
* ``rayleigh``: Rayleigh block fading, h ~ CN(0, 1) per block of 64 symbols, the receiver
  and (for digital links) the sender know h;
* ``fading``: block Rayleigh fading with one block per frame (:func:`jscc.channel.
  rayleigh_per_frame`) at mean SNR ``snr``; the digital sender picks frame t's MCS from
  the SNR it last heard about (frame t-1's realised SNR; the mean for frame 0); JSCC codes
  at the mean SNR and the receiver equalises each frame (MMSE, it knows h);
* ``jakes``: the same with correlated fading, Jakes' model at pedestrian Doppler
  (:func:`jscc.channel.jakes_per_frame`, 5.56 Hz: 3 km/h at 2 GHz);
* ``multicast``: one transmission to receivers at :data:`MULTICAST_SNRS` dB (the cell's
  ``snr`` is one receiver's); every sender codes for the weakest receiver (JSCC's encoder
  is told its SNR; the digital link picks its MCS for it), each receiver decodes at its
  own SNR.

On channels other than AWGN the methods are ``channel_methods`` (default proposed and
h264-mcs); a background sent over the digital link there is assumed to arrive (it is sent
once per segment and may be repeated: its MCS uses the frame's realised gain).

Variants (paper section V):

* ``video`` (V.B): the background is built from the clip itself while it plays and sent
  through the channel, its cost counted;
* ``library`` (V.A, ``proposed`` on AWGN only): a background library held by both ends,
  built beforehand from material the scored frames do not contain (:func:`library_source`:
  the frames before the scored part, or another clip of the same room); a matching segment
  costs only its image id.

Clips are given as ``PATH`` or ``PATH@START``: the latter starts at frame START (a copy of
frames START.. is written losslessly, FFV1, to ``clips/`` in the output folder), e.g. to
begin one-by-one-person.mp4 shortly before the first person walks in.

Every finished cell is a JSON file ``cells/<key>.json`` in the output folder and is not
computed again, so an interrupted sweep resumes where it stopped; a cell file is stale (and
recomputed) when the JSCC weights file (by its sha256), the JSCC arithmetic
(``precision``), ``max_frames``, ``seed`` or :data:`PIPELINE_REVISION` differ, or, for an
H.264 cell, :data:`H264_REVISION`.
Cells run on a local process pool (default: both cores) or on an existing Ray cluster
(``ray_address``; the cluster's workers need semstream installed and the clips at the same
paths). Workers return results; only this process writes files.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dynbg.library import INDEX_NAME
from stream.core.config import TemporalConfig

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DEFAULT_CLIPS = tuple(str(SAMPLES / name) for name in (
    "asl-again.mkv", "asl-help.mkv", "asl-please.mkv", "asl-walk.mkv", "asl-yes.mkv",
    "one-by-one-person.mp4@60"))  # frames 0-74 are empty; a person walks in at ~75
# JSCC methods: SenderConfig fields each one sets
JSCC_METHODS = {"direct": {"mode": "direct"},
                "proposed": {"mode": "proposed"},
                "proposed-bg-jscc": {"mode": "proposed", "background": "jscc"},
                "proposed-fg-latent": {"mode": "proposed", "fg_latent": True},
                "proposed-skip2": {"mode": "proposed", "skip": 2},
                "proposed-fg-latent-skip2": {"mode": "proposed", "fg_latent": True, "skip": 2},
                # temporal coding of the crops in the latent domain (issue 15)
                "proposed-temporal": {"mode": "proposed", "temporal": TemporalConfig()},
                "proposed-fg-latent-temporal": {"mode": "proposed", "fg_latent": True,
                                                "temporal": TemporalConfig()}}
H264_RULES = {"h264-capacity": "capacity", "h264-mcs": "mcs"}
METHODS = (*JSCC_METHODS, *H264_RULES,
           *(f"{h}@{m}" for h in H264_RULES for m in JSCC_METHODS))
DEFAULT_METHODS = ("direct", "proposed", "proposed-bg-jscc", "proposed-fg-latent",
                   "h264-capacity", "h264-mcs", "h264-mcs@direct", "h264-mcs@proposed-fg-latent")
CHANNELS = ("awgn", "rayleigh", "fading", "jakes", "multicast")
FRAME_CHANNELS = ("fading", "jakes", "multicast")  # per-frame links (FrameChannel)
MULTICAST_SNRS = (0.0, 7.0, 13.0, 20.0)  # dB: the receivers of one multicast transmission
VARIANTS = ("video", "library")
# Bump when the sender or receiver changes what a cell computes, so old cells are redone.
# 2: backgrounds over the digital link, first background with its foreground inpainted;
# 3: a stale background (light changed) is refreshed from the frame itself, and the crop
#    also covers what changed against the background sent (what the segmenter missed);
# 4: fg-latent at unit power, full resolution, one MCS margin, Gaussian SSIM, libraries
#    from material outside the scored frames, H.264 keyframes on loss feedback;
# 5: blend paste-back (issue 19) and exposure gain; the paste's membrane on a coarser grid;
# 6: feather paste-back again by default (with the exposure gain);
# 7: a crop box covering >= 90 % of the frame is sent as the whole frame (direct_above).
PIPELINE_REVISION = 7
# Bump when the H.264 baseline changes what its cells compute (only those are redone).
# 1: libx264 on one thread, so that a cell gives the same figures in every run.
H264_REVISION = 1
LIBRARY_METHODS = ("proposed",)


def h264_parts(method: str) -> tuple[str, str] | None:
    """(budget rule, JSCC method whose channel uses it gets) of an H.264 method name
    (``h264-<rule>[@<jscc method>]``, the bare name at ``proposed``'s); None for JSCC."""
    base, _, twin = method.partition("@")
    if base not in H264_RULES:
        return None
    return H264_RULES[base], twin or "proposed"


@dataclass(frozen=True)
class Cell:
    """One run of the sweep. clip: ``PATH[@START]``; snr in dB; variant: "video" or
    "library"."""

    clip: str
    method: str
    channel: str
    snr: float
    variant: str = "video"

    @property
    def key(self) -> str:
        """File-name-safe unique name of the cell."""
        return f"{clip_name(self.clip)}__{self.method}__{self.variant}__{self.channel}__" \
               f"snr{self.snr:g}"


@dataclass(frozen=True)
class SweepConfig:
    """What to sweep and how.

    clips: ``PATH[@START]`` specs; snrs: dB (multicast uses :data:`MULTICAST_SNRS`);
    channels: names in :data:`CHANNELS`; methods: names in METHODS, run on AWGN;
    channel_methods: the methods run on the other channels; variants: names in VARIANTS;
    max_frames: first frames of each clip (None = all); figure_snr: SNR (dB) at which JSCC
    cells also return one rebuilt frame for the side-by-side figure (and of the PSNR-vs-time
    plot); seed: channel noise and fading; weights: JSCC weights file (None = the shipped
    default, ``jscc.DEFAULT_MODEL``); workers: local processes; ray_address: run on this
    Ray cluster instead; device: where each cell runs its models (``--device``, resolved
    in the worker).
    """

    clips: tuple[str, ...] = DEFAULT_CLIPS
    snrs: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    channels: tuple[str, ...] = ("awgn",)
    methods: tuple[str, ...] = DEFAULT_METHODS
    channel_methods: tuple[str, ...] = ("proposed", "h264-mcs")
    variants: tuple[str, ...] = ("video", "library")
    max_frames: int | None = 60
    figure_snr: float = 5.0
    seed: int = 0
    weights: str | None = None
    workers: int = 2
    ray_address: str | None = None
    device: str = "auto"
    precision: str = "auto"

    def __post_init__(self) -> None:
        from jscc.device_option import check_precision, check_spec

        check_spec(self.device)
        check_precision(self.precision)
        for name, given, known in (("method", self.methods, METHODS),
                                   ("method", self.channel_methods, METHODS),
                                   ("variant", self.variants, VARIANTS),
                                   ("channel", self.channels, CHANNELS)):
            bad = [g for g in given if g not in known]
            if bad or not given:
                raise ValueError(f"unknown or no {name}s {bad}: choose from {', '.join(known)}")
        if not self.clips or not self.snrs:
            raise ValueError("the sweep needs at least one clip and one SNR")
        missing = [c for c in self.clips if not clip_source(c)[0].is_file()]
        if missing:
            raise FileNotFoundError(f"clip not found: {missing[0]}")
        for methods in (self.methods, self.channel_methods):
            for m in methods:
                parts = h264_parts(m)
                if parts is not None and parts[1] not in methods:
                    raise ValueError(f"{m} takes its channel uses from {parts[1]!r}: add "
                                     f"{parts[1]} to the same method list")
        if self.max_frames is not None and self.max_frames < 2:
            raise ValueError(f"max_frames must be at least 2, got {self.max_frames}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")

    def settings(self) -> dict:
        """What a finished cell's result depends on besides the cell itself: the JSCC
        weights (sha256 of the file), the JSCC arithmetic (``--precision`` as this machine
        resolves it for ``device``), max_frames, seed and the pipeline revision."""
        import hashlib

        from jscc import DEFAULT_MODEL
        from jscc.device import jscc_precision, resolve_device
        from jscc.export import default_weights_path

        path = Path(self.weights) if self.weights else default_weights_path(DEFAULT_MODEL)
        if not path.is_file():
            raise FileNotFoundError(f"JSCC weights not found: {path}")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        precision = jscc_precision(resolve_device(self.device), self.precision)
        return {"weights_sha256": digest, "jscc_precision": precision,
                "max_frames": self.max_frames, "seed": self.seed,
                "pipeline_revision": PIPELINE_REVISION}

    def channel_snrs(self, channel: str) -> tuple[float, ...]:
        """SNRs (dB) swept on ``channel``: the receivers' for multicast, else ``snrs``."""
        return MULTICAST_SNRS if channel == "multicast" else tuple(self.snrs)

    def cells(self) -> list[Cell]:
        """Every cell of the sweep, JSCC cells first (H.264 cells need their results)."""
        out = []
        for channel in self.channels:
            methods = self.methods if channel == "awgn" else self.channel_methods
            for method in methods:
                for variant in self.variants:
                    if variant == "library" and (method not in LIBRARY_METHODS
                                                 or channel != "awgn"):
                        continue
                    out += [Cell(clip, method, channel, float(snr), variant)
                            for clip in self.clips for snr in self.channel_snrs(channel)
                            if variant == "video" or library_source(self, clip) is not None]
        return sorted(out, key=lambda c: h264_parts(c.method) is not None)


def clip_source(spec: str) -> tuple[Path, int]:
    """(video file, first frame) of a clip spec ``PATH[@START]``."""
    path, at, start = spec.rpartition("@")
    if at and start.isdigit():
        return Path(path), int(start)
    return Path(spec), 0


def clip_name(spec: str) -> str:
    """Short name of a clip spec: the file stem, plus ``@START`` when it has one."""
    path, start = clip_source(spec)
    return f"{path.stem}@{start}" if start else path.stem


def prepare_clip(spec: str, out: Path, max_frames: int | None) -> Path:
    """The video file a spec's cells read: the file itself, or for ``PATH@START`` a
    lossless (FFV1) copy of frames START.. (at most ``max_frames``) in ``out``/clips."""
    path, start = clip_source(spec)
    if not start:
        return path
    return copy_frames(path, start, max_frames,
                       out / "clips" / f"{clip_name(spec)}-{max_frames or 'all'}.mkv")


def copy_frames(path: Path, start: int, count: int | None, target: Path) -> Path:
    """A lossless (FFV1) copy of frames ``start``.. (at most ``count``) of ``path`` at
    ``target`` (kept when it exists; the clips folder is git-ignored)."""
    import av

    from dynbg.video import probe, read_frames

    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    (target.parent / ".gitignore").write_text("*\n")  # derived copies: keep out of git
    tmp = target.with_name(f".{target.name}")
    info = probe(path)
    with av.open(str(tmp), "w", format="matroska") as container:
        rate = Fraction(info.fps or 30.0).limit_denominator(1001)
        stream = container.add_stream("ffv1", rate=rate)
        stream.pix_fmt, stream.width, stream.height = "bgr0", info.width, info.height
        for f in read_frames(path, start=start, max_frames=count):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f.image, format="rgb24")))
        container.mux(stream.encode(None))
    os.replace(tmp, target)
    return target


MIN_LIBRARY_FRAMES = 30  # frames before the scored part needed to build a library from


@dataclass(frozen=True)
class LibrarySource:
    """What a clip's library is built from: the first ``frames`` frames (None: all) of
    ``video``, and a description for the report."""

    video: Path
    frames: int | None
    description: str


def library_source(sweep: SweepConfig, clip: str) -> LibrarySource | None:
    """What the library of ``clip`` is built from: material its scored frames do not
    contain. For ``PATH@START`` with START >= MIN_LIBRARY_FRAMES, the frames before START;
    otherwise the next clip of the sweep (cyclically) from the same camera and room: the
    same file-name prefix before the first "-" and the same frame size, another file.
    None when there is neither."""
    path, start = clip_source(clip)
    if start >= MIN_LIBRARY_FRAMES:
        return LibrarySource(path, start, f"frames 0-{start - 1} of {path.name} "
                                          f"(before the scored part)")
    prefix, size = path.stem.split("-")[0], _size(path)
    i = sweep.clips.index(clip)
    for other in sweep.clips[i + 1:] + sweep.clips[:i]:
        p, _ = clip_source(other)
        if p != path and p.stem.split("-")[0] == prefix and _size(p) == size:
            return LibrarySource(p, None, f"{p.name} (another clip of the same room)")
    return None


def _size(path: Path) -> tuple[int, int]:
    from dynbg.video import probe

    info = probe(path)
    return info.width, info.height


def _limit_threads() -> None:
    """Start each worker with one torch thread, as the workers share the cores (the cells
    load the JSCC codec with threads=None, which keeps this setting)."""
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def library_dir(out: Path, source: LibrarySource) -> Path:
    """Where the background library built from ``source`` lives in the output folder."""
    suffix = f"-first{source.frames}" if source.frames is not None else ""
    return out / "libraries" / f"{source.video.stem}{suffix}"


def build_library(video: str, folder: str) -> dict:
    """Build the background library of ``video`` into ``folder`` (worker task)."""
    from dynbg.offline import build_video_library

    _limit_threads()
    scenes = build_video_library(video, folder, replace=True)
    return {"video": video, "library": folder, "scenes": [s.to_json() for s in scenes]}


def library_video(out: Path, source: LibrarySource) -> Path:
    """The video file a library is built from (a lossless copy when only its first
    frames are used)."""
    if source.frames is None:
        return source.video
    return copy_frames(source.video, 0, source.frames,
                       out / "clips" / f"{source.video.stem}-first{source.frames}.mkv")


def _frame_at(video: Path, index: int) -> np.ndarray | None:
    from dynbg.video import read_frames

    return next((f.image for f in read_frames(video, start=index, max_frames=1)), None)


@dataclass(frozen=True)
class Link:
    """A per-frame link (channels in FRAME_CHANNELS): complex gains h_t (one per frame),
    the SNR the link realises on average or at this receiver (dB), and the SNR the senders
    code for: JSCC's encoder gets ``sender_snr``, the digital sender ``expected_db``."""

    gains: np.ndarray
    snr: float
    sender_snr: float
    expected_db: np.ndarray

    @property
    def realised_db(self) -> np.ndarray:
        """The SNR each frame gets (dB): snr + 10 log10 |h_t|^2."""
        with np.errstate(divide="ignore"):
            return self.snr + 10.0 * np.log10(np.abs(self.gains) ** 2)


def frame_link(channel: str, snr: float, frames: int, fps: float, seed: int) -> Link:
    """The link of a cell on ``channel`` in FRAME_CHANNELS at ``snr`` dB for ``frames``
    frames at ``fps``: the same draws (by ``seed``) for every method of the sweep."""
    from jscc.channel import jakes_per_frame, rayleigh_per_frame

    rng = np.random.default_rng([seed, 14])
    if channel == "multicast":
        weakest = min(MULTICAST_SNRS)
        return Link(np.ones(frames, complex), snr, weakest, np.full(frames, weakest))
    if channel == "fading":
        gains = rayleigh_per_frame(frames, rng)
    elif channel == "jakes":
        gains = jakes_per_frame(frames, fps, rng)
    else:
        raise ValueError(f"{channel!r} is not a per-frame channel: {FRAME_CHANNELS}")
    link = Link(gains, snr, snr, np.empty(0))
    # outdated channel knowledge: frame t is coded for the SNR frame t-1 realised
    expected = np.concatenate([[snr], link.realised_db[:-1]])
    return replace(link, expected_db=expected)


def _frames_of(video: str, max_frames: int | None) -> tuple[int, float]:
    from dynbg.video import probe, read_frames

    info = probe(video)
    count = sum(1 for _ in read_frames(video, max_frames=max_frames))
    return count, info.fps or 30.0


def run_jscc_cell(cell: Cell, video: str, sweep: SweepConfig, library: str | None,
                  figure_frame: int | None) -> dict:
    """Run one JSCC cell on ``video`` (its clip's file) at full resolution; the report
    (per-frame rows included), plus ``image``: the rebuilt frame ``figure_frame``
    (H x W x 3 uint8) when asked."""
    import tempfile

    from jscc.channel import FrameChannel
    from stream.core.config import ReceiverConfig, SenderConfig
    from stream.experiments.run import RunConfig, run_video

    _limit_threads()
    weights = Path(sweep.weights) if sweep.weights else None
    lib = Path(library) if library else None
    snr, channel, frame_channel = cell.snr, cell.channel, None
    if cell.channel in FRAME_CHANNELS:
        link = frame_link(cell.channel, cell.snr, *_frames_of(video, sweep.max_frames),
                          sweep.seed)
        snr, channel, frame_channel = link.sender_snr, "awgn", FrameChannel(link.gains,
                                                                            link.snr)
    sender = SenderConfig(snr_db=snr, channel=channel, seed=sweep.seed, weights=weights,
                          library=lib, max_pixels=None, device=sweep.device,
                          precision=sweep.precision, **JSCC_METHODS[cell.method])
    receiver = ReceiverConfig(library=lib, weights=weights, device=sweep.device,
                              precision=sweep.precision)
    with tempfile.TemporaryDirectory(prefix="semstream-cell-") as tmp:
        out = Path(tmp) / "out.mp4" if figure_frame is not None else None
        report = run_video(video, RunConfig(sender, receiver, sweep.max_frames, out,
                                            threads=None, link=frame_channel))
        image = _frame_at(out, figure_frame) if out is not None else None
    return {"report": report, "image": image}


def run_h264_cell(cell: Cell, video: str, sweep: SweepConfig, channel_uses: int) -> dict:
    """Run one H.264 cell on ``video`` over ``channel_uses`` channel uses in all."""
    from dynbg.video import probe, read_frames
    from jscc.channel import ChannelConfig
    from jscc.digital.h264 import FrameLink, H264Config, h264_baseline

    _limit_threads()
    t0 = time.perf_counter()
    frames = [f.image for f in read_frames(video, max_frames=sweep.max_frames)]
    fps = probe(video).fps or 30.0
    rule, _ = h264_parts(cell.method)
    per_frame, kind = None, cell.channel
    if cell.channel in FRAME_CHANNELS:
        link = frame_link(cell.channel, cell.snr, len(frames), fps, sweep.seed)
        per_frame, kind = FrameLink(link.expected_db, link.realised_db), "awgn"
    config = H264Config(rule=rule, channel=ChannelConfig(kind), seed=sweep.seed)
    report = h264_baseline(frames, fps, channel_uses, cell.snr, config, per_frame)
    h, w = frames[0].shape[:2]
    report.update(channel_uses_total=channel_uses, source_values_total=len(frames) * h * w * 3,
                  seconds=round(time.perf_counter() - t0, 3))
    return {"report": report, "image": None}


# -- executors ---------------------------------------------------------------------------

Task = tuple[str, Callable[..., dict], tuple]  # (name, function, arguments)


class LocalExecutor:
    """Tasks on a local process pool (spawned workers: no state shared with this process)."""

    def __init__(self, workers: int) -> None:
        self.pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))

    def run(self, tasks: list[Task]) -> Iterator[tuple[str, dict]]:
        """(name, result) of each task as it finishes."""
        futures = {self.pool.submit(fn, *args): name for name, fn, args in tasks}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class RayExecutor:
    """Tasks on an existing Ray cluster at ``address`` (needs the ``ray`` extra)."""

    def __init__(self, address: str) -> None:
        try:
            import ray
        except ModuleNotFoundError as exc:
            raise OSError("--ray needs Ray: pip install 'semstream[ray]'") from exc
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False)

    def run(self, tasks: list[Task]) -> Iterator[tuple[str, dict]]:
        """(name, result) of each task as it finishes."""
        refs = {self.ray.remote(num_cpus=1)(fn).remote(*args): name for name, fn, args in tasks}
        pending = list(refs)
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            yield refs[done[0]], self.ray.get(done[0])

    def close(self) -> None:
        """Leave the cluster running (it is not ours); nothing to release here."""


def make_executor(sweep: SweepConfig) -> LocalExecutor | RayExecutor:
    """A Ray executor when ``sweep.ray_address`` is set, else a local process pool."""
    if sweep.ray_address:
        return RayExecutor(sweep.ray_address)
    return LocalExecutor(sweep.workers)


# -- the sweep ---------------------------------------------------------------------------

def cell_path(out: Path, cell: Cell) -> Path:
    """The JSON file of a finished cell."""
    return out / "cells" / f"{cell.key}.json"


def write_json(path: Path, data) -> None:
    """Write ``data`` as JSON atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def summary_row(cell: Cell, report: dict) -> dict:
    """One flat row (CSV-ready) of a finished cell. psnr_p5: 5th percentile of the cell's
    frame PSNRs (dB); frozen_fraction: frames lost or concealed by repeating an earlier one
    (H.264), or not delivered (JSCC)."""
    uses, values = report.get("channel_uses_total"), report.get("source_values_total")
    frames = report["frames"]
    dropped = report.get("frames_dropped")
    lost = sum(dropped.values()) if isinstance(dropped, dict) else report.get("frames_lost", 0)
    frame_psnrs = [r["psnr"] for r in report.get("rows", []) if r.get("psnr") is not None]
    parts = h264_parts(cell.method)
    return {"clip": clip_name(cell.clip), "method": cell.method, "variant": cell.variant,
            "channel": cell.channel, "snr": cell.snr, "frames": frames,
            "psnr": report.get("psnr_mean"), "ssim": report.get("ssim_mean"),
            "psnr_fg": report.get("psnr_fg_mean"),
            "psnr_p5": float(np.percentile(frame_psnrs, 5)) if frame_psnrs else None,
            "frozen_fraction": report.get("frames_frozen", lost) / frames,
            "channel_uses_per_frame": uses / frames if uses is not None else None,
            "uses_per_source_value": uses / values if uses and values else None,
            "compression_ratio": values / uses if uses and values else None,
            "budget_of": parts[1] if parts else None,
            "background_updates": report.get("background_updates"),
            "frames_lost": lost, "seconds": report.get("seconds")}


def figure_frame(sweep: SweepConfig) -> int:
    """Index of the frame shown in the side-by-side figure (middle of the swept frames)."""
    return (sweep.max_frames or 60) // 2


@dataclass(frozen=True)
class SweepResult:
    """Rows of every cell of the sweep, how many were computed now, and the wall time (s)."""

    rows: list[dict]
    computed: int
    wall_seconds: float


def _run_phase(executor, tasks: list[Task], on_result: Callable[[str, dict], None],
               label: str, progress: bool) -> None:
    if not tasks:
        return
    with tqdm(total=len(tasks), desc=label, disable=not progress, unit="cell") as bar:
        for name, result in executor.run(tasks):
            on_result(name, result)
            bar.set_postfix_str(name[-40:], refresh=False)
            bar.update()


def run_sweep(sweep: SweepConfig, out: str | Path, progress: bool = True) -> SweepResult:
    """Compute every missing cell of ``sweep`` into ``out`` and return all rows.

    Writes cells/<key>.json per cell, libraries/<clip>/ for the library variant and
    frames/<key>.png (the rebuilt figure frame of JSCC cells at ``figure_snr``, and the
    original as frames/<clip>__original.png).
    """
    out = Path(out)
    t0 = time.perf_counter()
    cells = sweep.cells()
    settings = sweep.settings()
    todo = [c for c in cells if not _finished(out, c, cell_settings(settings, c))]
    by_key = {c.key: c for c in cells}
    computed = 0
    videos = {c: str(prepare_clip(c, out, sweep.max_frames)) for c in sweep.clips}

    def save_cell(key: str, result: dict) -> None:
        nonlocal computed
        cell = by_key[key]
        if result["image"] is not None:
            _save_png(out / "frames" / f"{key}.png", result["image"])
        write_json(cell_path(out, cell), {"cell": asdict(cell),
                                          "settings": cell_settings(settings, cell),
                                          "report": result["report"]})
        computed += 1

    if todo:
        executor = make_executor(sweep)
        try:
            sources = {c.clip: library_source(sweep, c.clip) for c in todo
                       if c.variant == "library"}
            missing = {library_dir(out, s): s for s in sources.values()
                       if not (library_dir(out, s) / INDEX_NAME).is_file()}
            _run_phase(executor, [(str(folder), build_library,
                                   (str(library_video(out, source)), str(folder)))
                                  for folder, source in missing.items()],
                       lambda name, result: None, "libraries", progress)
            jscc = [c for c in todo if h264_parts(c.method) is None]
            _run_phase(executor, [(c.key, run_jscc_cell, (c, videos[c.clip], sweep,
                                                          _library_arg(out, sweep, c),
                                                          _figure_arg(sweep, c)))
                                  for c in jscc], save_cell, "jscc cells", progress)
            h264 = [c for c in todo if h264_parts(c.method) is not None]
            _run_phase(executor, [(c.key, run_h264_cell,
                                   (c, videos[c.clip], sweep, _budget(out, c)))
                                  for c in h264], save_cell, "h264 cells", progress)
        finally:
            executor.close()
    _save_originals(out, sweep, videos)
    rows = [summary_row(c, json.loads(cell_path(out, c).read_text())["report"]) for c in cells]
    return SweepResult(rows, computed, time.perf_counter() - t0)


def cell_settings(settings: dict, cell: Cell) -> dict:
    """What ``cell``'s result depends on: the sweep's ``settings`` (see
    :meth:`SweepConfig.settings`), and for an H.264 cell also :data:`H264_REVISION`."""
    if h264_parts(cell.method) is None:
        return settings
    return {**settings, "h264_revision": H264_REVISION}


def _finished(out: Path, cell: Cell, settings: dict) -> bool:
    """Whether ``cell`` has a result computed with these settings."""
    path = cell_path(out, cell)
    if not path.is_file():
        return False
    try:
        stored = json.loads(path.read_text()).get("settings")
    except json.JSONDecodeError:
        return False
    # cells from before the precision was recorded ran the JSCC model in fp32
    return isinstance(stored, dict) and {"jscc_precision": "fp32", **stored} == settings


def _library_arg(out: Path, sweep: SweepConfig, cell: Cell) -> str | None:
    if cell.variant != "library":
        return None
    return str(library_dir(out, library_source(sweep, cell.clip)))


def _figure_arg(sweep: SweepConfig, cell: Cell) -> int | None:
    wanted = cell.variant == "video" and cell.snr == sweep.figure_snr \
        and cell.channel == sweep.channels[0]
    return figure_frame(sweep) if wanted else None


def _budget(out: Path, cell: Cell) -> int:
    """Channel uses of the JSCC cell an H.264 cell is matched with."""
    twin = replace(cell, method=h264_parts(cell.method)[1])
    return int(json.loads(cell_path(out, twin).read_text())["report"]["channel_uses_total"])


def _save_png(path: Path, image: np.ndarray) -> None:
    from dynbg.library import write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, image)


def _save_originals(out: Path, sweep: SweepConfig, videos: dict[str, str]) -> None:
    for clip in sweep.clips:
        path = out / "frames" / f"{clip_name(clip)}__original.png"
        if not path.is_file():
            image = _frame_at(Path(videos[clip]), figure_frame(sweep))
            if image is not None:
                _save_png(path, image)

