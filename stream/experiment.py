"""Offline experiment sweeps: clip x method x channel x SNR x variant, resumable.

A *cell* is one (clip, method, channel, snr, variant). JSCC methods run the whole
sender -> channel -> receiver chain (:func:`stream.run.run_video`); H.264 methods
(:mod:`stream.h264_baseline`) get exactly the channel uses of the matching ``proposed``
cell (or ``direct`` when proposed is not swept). Variants (paper section V):

* ``video`` (V.B): the background is built from the clip itself while it plays and sent
  through the channel, its cost counted;
* ``library`` (V.A): a background library built beforehand from the clip
  (:func:`dynbg.offline.build_video_library`) is held by both ends; a matching segment
  costs only its image id. Only the proposed methods run in this variant.

Clips are given as ``PATH`` or ``PATH@START``: the latter starts at frame START (a copy of
frames START.. is written losslessly, FFV1, to ``clips/`` in the output folder), e.g. to
begin one-by-one-person.mp4 shortly before the first person walks in.

Every finished cell is a JSON file ``cells/<key>.json`` in the output folder and is not
computed again, so an interrupted sweep resumes where it stopped; a cell file is stale (and
recomputed) when the JSCC weights file (by its sha256), ``max_frames``, ``seed`` or
:data:`PIPELINE_REVISION` differ.
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

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DEFAULT_CLIPS = tuple(str(SAMPLES / name) for name in (
    "asl-again.mkv", "asl-help.mkv", "asl-please.mkv", "asl-walk.mkv", "asl-yes.mkv",
    "one-by-one-person.mp4@60"))  # frames 0-74 are empty; a person walks in at ~75
# JSCC methods: SenderConfig fields each one sets
JSCC_METHODS = {"direct": {"mode": "direct"},
                "proposed": {"mode": "proposed"},
                "proposed-fg-latent": {"mode": "proposed", "fg_latent": True},
                "proposed-skip2": {"mode": "proposed", "skip": 2},
                "proposed-fg-latent-skip2": {"mode": "proposed", "fg_latent": True, "skip": 2}}
H264_METHODS = {"h264-capacity": "capacity", "h264-mcs": "mcs"}
METHODS = (*JSCC_METHODS, *H264_METHODS)
VARIANTS = ("video", "library")
# Bump when the sender or receiver changes what a cell computes, so old cells are redone.
# 2: backgrounds over the digital link, first background with its foreground inpainted;
# 3: a stale background (light changed) is refreshed from the frame itself, and the crop
#    also covers what changed against the background sent (what the segmenter missed).
PIPELINE_REVISION = 3
LIBRARY_METHODS = tuple(m for m in JSCC_METHODS if m.startswith("proposed"))


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

    clips: ``PATH[@START]`` specs; snrs: dB; channels: "awgn"/"rayleigh"; methods: names in METHODS;
    variants: names in VARIANTS; max_frames: first frames of each clip (None = all);
    figure_snr: SNR (dB) at which JSCC cells also return one rebuilt frame for the
    side-by-side figure; seed: channel noise; weights: JSCC weights file (None = shipped
    edge model); workers: local processes; ray_address: run on this Ray cluster instead.
    """

    clips: tuple[str, ...] = DEFAULT_CLIPS
    snrs: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    channels: tuple[str, ...] = ("awgn",)
    methods: tuple[str, ...] = ("direct", "proposed", "proposed-fg-latent",
                                "h264-capacity", "h264-mcs")
    variants: tuple[str, ...] = ("video", "library")
    max_frames: int | None = 60
    figure_snr: float = 5.0
    seed: int = 0
    weights: str | None = None
    workers: int = 2
    ray_address: str | None = None

    def __post_init__(self) -> None:
        for name, given, known in (("method", self.methods, METHODS),
                                   ("variant", self.variants, VARIANTS),
                                   ("channel", self.channels, ("awgn", "rayleigh"))):
            bad = [g for g in given if g not in known]
            if bad or not given:
                raise ValueError(f"unknown or no {name}s {bad}: choose from {', '.join(known)}")
        if not self.clips or not self.snrs:
            raise ValueError("the sweep needs at least one clip and one SNR")
        missing = [c for c in self.clips if not clip_source(c)[0].is_file()]
        if missing:
            raise FileNotFoundError(f"clip not found: {missing[0]}")
        if any(h in self.methods for h in H264_METHODS) and not (
                {"proposed", "direct"} & set(self.methods)):
            raise ValueError("H.264 baselines take their channel uses from 'proposed' or "
                             "'direct': add one of them to the methods")
        if self.max_frames is not None and self.max_frames < 2:
            raise ValueError(f"max_frames must be at least 2, got {self.max_frames}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")

    def settings(self) -> dict:
        """What a finished cell's result depends on besides the cell itself: the JSCC
        weights (sha256 of the file), max_frames, seed and the pipeline revision."""
        import hashlib

        from jscc.export import default_weights_path

        path = Path(self.weights) if self.weights else default_weights_path("edge")
        if not path.is_file():
            raise FileNotFoundError(f"JSCC weights not found: {path}")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return {"weights_sha256": digest, "max_frames": self.max_frames, "seed": self.seed,
                "pipeline_revision": PIPELINE_REVISION}

    @property
    def budget_method(self) -> str:
        """The JSCC method whose channel uses the H.264 baselines get."""
        return "proposed" if "proposed" in self.methods else "direct"

    def cells(self) -> list[Cell]:
        """Every cell of the sweep, JSCC cells first (H.264 cells need their results)."""
        out = []
        for method in sorted(self.methods, key=lambda m: m in H264_METHODS):
            for variant in self.variants:
                if variant == "library" and method not in LIBRARY_METHODS:
                    continue
                out += [Cell(clip, method, channel, float(snr), variant)
                        for clip in self.clips for channel in self.channels
                        for snr in self.snrs]
        return out


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
    import av

    from dynbg.video import probe, read_frames

    path, start = clip_source(spec)
    if not start:
        return path
    target = out / "clips" / f"{clip_name(spec)}-{max_frames or 'all'}.mkv"
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
        for f in read_frames(path, start=start, max_frames=max_frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f.image, format="rgb24")))
        container.mux(stream.encode(None))
    os.replace(tmp, target)
    return target


def _limit_threads() -> None:
    """Start each worker with one torch thread, as the workers share the cores (the cells
    load the JSCC codec with threads=None, which keeps this setting)."""
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def library_dir(out: Path, clip: str) -> Path:
    """Where the background library of clip spec ``clip`` lives in the output folder."""
    return out / "libraries" / clip_name(clip)


def build_library(video: str, folder: str) -> dict:
    """Build the background library of ``video`` into ``folder`` (worker task)."""
    from dynbg.offline import build_video_library

    _limit_threads()
    scenes = build_video_library(video, folder, replace=True)
    return {"video": video, "library": folder, "scenes": [s.to_json() for s in scenes]}


def _frame_at(video: Path, index: int) -> np.ndarray | None:
    from dynbg.video import read_frames

    return next((f.image for f in read_frames(video, start=index, max_frames=1)), None)


def run_jscc_cell(cell: Cell, video: str, sweep: SweepConfig, library: str | None,
                  figure_frame: int | None) -> dict:
    """Run one JSCC cell on ``video`` (its clip's file); the report (per-frame rows
    included), plus ``image``: the rebuilt frame ``figure_frame`` (H x W x 3 uint8) when
    asked."""
    import tempfile

    from stream.config import ReceiverConfig, SenderConfig
    from stream.run import RunConfig, run_video

    _limit_threads()
    weights = Path(sweep.weights) if sweep.weights else None
    lib = Path(library) if library else None
    sender = SenderConfig(snr_db=cell.snr, channel=cell.channel, seed=sweep.seed,
                          weights=weights, library=lib, **JSCC_METHODS[cell.method])
    receiver = ReceiverConfig(library=lib, weights=weights)
    with tempfile.TemporaryDirectory(prefix="semstream-cell-") as tmp:
        out = Path(tmp) / "out.mp4" if figure_frame is not None else None
        report = run_video(video, RunConfig(sender, receiver, sweep.max_frames, out,
                                            threads=None))
        image = _frame_at(out, figure_frame) if out is not None else None
    return {"report": report, "image": image}


def run_h264_cell(cell: Cell, video: str, sweep: SweepConfig, channel_uses: int) -> dict:
    """Run one H.264 cell on ``video`` over ``channel_uses`` channel uses in all."""
    from dynbg.video import probe, read_frames
    from jscc.channel import ChannelConfig
    from stream.h264_baseline import H264Config, h264_baseline

    _limit_threads()
    t0 = time.perf_counter()
    frames = [f.image for f in read_frames(video, max_frames=sweep.max_frames)]
    config = H264Config(rule=H264_METHODS[cell.method], channel=ChannelConfig(cell.channel),
                        seed=sweep.seed)
    report = h264_baseline(frames, probe(video).fps or 30.0, channel_uses, cell.snr, config)
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
    """One flat row (CSV-ready) of a finished cell."""
    uses, values = report.get("channel_uses_total"), report.get("source_values_total")
    frames = report["frames"]
    dropped = report.get("frames_dropped")
    lost = sum(dropped.values()) if isinstance(dropped, dict) else report.get("frames_lost", 0)
    return {"clip": clip_name(cell.clip), "method": cell.method, "variant": cell.variant,
            "channel": cell.channel, "snr": cell.snr, "frames": frames,
            "psnr": report.get("psnr_mean"), "ssim": report.get("ssim_mean"),
            "psnr_fg": report.get("psnr_fg_mean"),
            "channel_uses_per_frame": uses / frames if uses is not None else None,
            "uses_per_source_value": uses / values if uses and values else None,
            "compression_ratio": values / uses if uses and values else None,
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
    todo = [c for c in cells if not _finished(out, c, settings)]
    by_key = {c.key: c for c in cells}
    computed = 0
    videos = {c: str(prepare_clip(c, out, sweep.max_frames)) for c in sweep.clips}

    def save_cell(key: str, result: dict) -> None:
        nonlocal computed
        cell = by_key[key]
        if result["image"] is not None:
            _save_png(out / "frames" / f"{key}.png", result["image"])
        write_json(cell_path(out, cell), {"cell": asdict(cell), "settings": settings,
                                          "report": result["report"]})
        computed += 1

    if todo:
        executor = make_executor(sweep)
        try:
            libs = sorted({c.clip for c in todo if c.variant == "library"})
            missing_libs = [c for c in libs if not (library_dir(out, c) / INDEX_NAME).is_file()]
            _run_phase(executor, [(clip, build_library,
                                   (videos[clip], str(library_dir(out, clip))))
                                  for clip in missing_libs],
                       lambda name, result: None, "libraries", progress)
            jscc = [c for c in todo if c.method in JSCC_METHODS]
            _run_phase(executor, [(c.key, run_jscc_cell, (c, videos[c.clip], sweep,
                                                          _library_arg(out, c),
                                                          _figure_arg(sweep, c)))
                                  for c in jscc], save_cell, "jscc cells", progress)
            h264 = [c for c in todo if c.method in H264_METHODS]
            _run_phase(executor, [(c.key, run_h264_cell,
                                   (c, videos[c.clip], sweep, _budget(out, sweep, c)))
                                  for c in h264], save_cell, "h264 cells", progress)
        finally:
            executor.close()
    _save_originals(out, sweep, videos)
    rows = [summary_row(c, json.loads(cell_path(out, c).read_text())["report"]) for c in cells]
    return SweepResult(rows, computed, time.perf_counter() - t0)


def _finished(out: Path, cell: Cell, settings: dict) -> bool:
    """Whether ``cell`` has a result computed with these settings."""
    path = cell_path(out, cell)
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("settings") == settings
    except json.JSONDecodeError:
        return False


def _library_arg(out: Path, cell: Cell) -> str | None:
    return str(library_dir(out, cell.clip)) if cell.variant == "library" else None


def _figure_arg(sweep: SweepConfig, cell: Cell) -> int | None:
    wanted = cell.variant == "video" and cell.snr == sweep.figure_snr
    return figure_frame(sweep) if wanted else None


def _budget(out: Path, sweep: SweepConfig, cell: Cell) -> int:
    """Channel uses of the JSCC cell an H.264 cell is matched with."""
    twin = replace(cell, method=sweep.budget_method)
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

