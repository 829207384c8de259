"""Markdown report of an experiment sweep, and the README's generated results section.

The README section lies between the markers ``<!-- results:start -->`` and
``<!-- results:end -->``; :func:`update_readme` rewrites only what is between them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

START, END = "<!-- results:start -->", "<!-- results:end -->"


@dataclass(frozen=True)
class Target:
    """One target of the issue: whether it was met (None: not measured) and the evidence."""

    name: str
    met: bool | None
    detail: str


def _is_asl(clip: str) -> bool:
    return clip.startswith("asl")


def _lookup(rows: list[dict]) -> dict[tuple, dict]:
    return {(r["clip"], r["method"], r["variant"], r["snr"]): r for r in rows}


def _pairs(rows: list[dict], a: str, b: str, clips: Callable[[str], bool] = lambda c: True,
           snr_max: float = np.inf) -> list[tuple[dict, dict]]:
    """(row of method a, row of method b) at each (clip, SNR) both have (video variant)."""
    index = _lookup(rows)
    out = []
    for r in rows:
        if r["method"] == a and r["variant"] == "video" and clips(r["clip"]) \
                and r["snr"] <= snr_max:
            other = index.get((r["clip"], b, "video", r["snr"]))
            if other is not None:
                out.append((r, other))
    return out


def _fmt(v, digits: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) \
        else f"{v:.{digits}f}"


def _beats(rows: list[dict], a: str, b: str, snr_max: float = np.inf) -> Target | None:
    pairs = _pairs(rows, a, b, snr_max=snr_max)
    if not pairs:
        return None
    fails = [(x["clip"], x["snr"], x["psnr"], y["psnr"]) for x, y in pairs
             if x["psnr"] is None or y["psnr"] is not None and x["psnr"] <= y["psnr"]]
    margins = [x["psnr"] - y["psnr"] for x, y in pairs if x["psnr"] and y["psnr"]]
    detail = (f"{len(pairs) - len(fails)}/{len(pairs)} (clip, SNR) points; PSNR margin "
              f"{_fmt(min(margins))} to {_fmt(max(margins))} dB")
    if fails:
        detail += "; worst: " + ", ".join(f"{c} {s:g} dB: {_fmt(p)} vs {_fmt(q)}"
                                          for c, s, p, q in fails[:3])
    where = f" at SNR <= {snr_max:g} dB" if np.isfinite(snr_max) else " at every SNR"
    return Target(f"{a} beats {b} in whole-frame PSNR{where}", not fails, detail)


def check_targets(rows: list[dict], wall_seconds: float | None) -> list[Target]:
    """The issue's targets, each checked on the rows (skipped when its methods are absent)."""
    targets = [_beats(rows, "proposed", "direct"), _beats(rows, "proposed", "h264-capacity", 5.0)]
    pairs = _pairs(rows, "proposed", "direct")
    if pairs:
        fewer = [x["channel_uses_per_frame"] < y["channel_uses_per_frame"] for x, y in pairs]
        ratio = [x["channel_uses_per_frame"] / y["channel_uses_per_frame"] for x, y in pairs]
        targets.append(Target("proposed uses fewer channel uses per frame than direct",
                              all(fewer), f"{sum(fewer)}/{len(fewer)} points; proposed/direct "
                              f"{min(ratio):.2f} to {max(ratio):.2f}"))
    lowest = min((r["snr"] for r in rows), default=None)
    cliff = [r for r in rows if r["method"] == "proposed" and r["snr"] == lowest]
    if cliff:
        lost = sum(r["frames_lost"] or 0 for r in cliff)
        targets.append(Target(f"proposed has no cliff (frames lost at {lowest:g} dB)",
                              lost == 0, f"{lost} frames lost over {len(cliff)} runs"))
    for method, floor, clips, label in (
            ("proposed", 10.0, _is_asl, "ASL clips"),
            ("proposed-fg-latent", 20.0, lambda c: True, "ASL clips and one-by-one-person")):
        sel = [r for r in rows if r["method"] == method and r["variant"] == "video"
               and clips(r["clip"]) and r["compression_ratio"]]
        if sel:
            low = min(sel, key=lambda r: r["compression_ratio"])
            targets.append(Target(
                f"{method}: compression >= {floor:g}x at every SNR ({label})",
                low["compression_ratio"] >= floor,
                f"lowest {low['compression_ratio']:.1f}x ({low['clip']}, {low['snr']:g} dB); "
                f"highest {max(r['compression_ratio'] for r in sel):.1f}x"))
    if wall_seconds is not None:
        targets.append(Target("whole sweep (every cell computed) under 30 minutes",
                              wall_seconds < 1800,
                              f"{wall_seconds / 60:.1f} min wall time"))
    return [t for t in targets if t is not None]


def _methods(rows: list[dict]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r["method"], r["variant"]) for r in rows))


def metric_table(rows: list[dict], key: str, digits: int = 2,
                 clips: Callable[[str], bool] = lambda c: True) -> str:
    """Markdown table: one line per (method, variant), one column per SNR, cells the mean
    of ``key`` over the selected clips."""
    snrs = sorted({r["snr"] for r in rows})
    lines = ["| method | " + " | ".join(f"{s:g} dB" for s in snrs) + " |",
             "|---|" + "---|" * len(snrs)]
    for method, variant in _methods(rows):
        cells = []
        for s in snrs:
            vals = [r[key] for r in rows if r["method"] == method and r["variant"] == variant
                    and r["snr"] == s and clips(r["clip"]) and r[key] is not None]
            cells.append(_fmt(float(np.mean(vals)), digits) if vals else "–")
        name = method if variant == "video" else f"{method} ({variant})"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(targets: list[Target]) -> str:
    """Markdown table of the targets."""
    mark = {True: "met", False: "**not met**", None: "not measured"}
    return "\n".join(["| target | result | evidence |", "|---|---|---|",
                      *[f"| {t.name} | {mark[t.met]} | {t.detail} |" for t in targets]])


def basestation_table(result: dict) -> str:
    """Markdown table of mean total quality per scheduler and P_max."""
    lines = ["| P_max | DP | greedy | everyone direct |", "|---|---|---|---|"]
    for i, p in enumerate(result["p_max"]):
        lines.append(f"| {p:g} | " + " | ".join(f"{result[n]['mean'][i]:.2f}"
                                                for n in ("dp", "greedy", "direct")) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class ReportInputs:
    """Everything a report is made of: rows, sweep facts, figures (name -> PNG path),
    base-station result (or None) and the command that reproduces it all."""

    rows: list[dict]
    meta: dict
    figures: dict[str, Path]
    basestation: dict | None
    command: str


def _figure_links(figures: dict[str, Path], base: Path) -> str:
    return "\n\n".join(f"![{name}]({os.path.relpath(path, base)})"
                       for name, path in figures.items())


def _settings(meta: dict) -> str:
    return (f"Clips: {', '.join(meta['clips'])}; first {meta['max_frames']} frames of each; "
            f"SNR {', '.join(f'{s:g}' for s in meta['snrs'])} dB; channel "
            f"{', '.join(meta['channels'])}; JSCC weights: {meta['weights']}. "
            f"{meta['cells']} cells; the last run that computed any computed "
            f"{meta['computed']} of them in {meta['wall_seconds'] / 60:.1f} min wall time "
            f"({meta['executor']}).")


CAVEATS = """\
- The JSCC model is the narrow `edge` model trained on this 2-core machine (see its model
  card); figures will change when a better model is exported. Re-run the command above.
- H.264 at capacity gets `log2(1+SNR)` error-free bits per channel use: no real channel code
  reaches that at finite block length, so it is an upper bound for separate coding. H.264
  with the LTE MCS table gets zero bits below -6.7 dB (the cliff); then every frame is lost
  and shows mid-grey. It also gets up to 1 s of rate-control buffering; JSCC gets none.
- Compression ratio = source values (3 x H x W per frame) / channel uses, counting frame
  symbols, background updates and side information (1 bit per channel use).
- Video variant (paper V.B): the background is built from the clip (first frame with its
  foreground inpainted, refreshed as more of it is seen) and sent through the channel over
  a digital link: the best of JPEG/WebP/HEVC-intra that fits 1/12 channel uses per source
  value at the LTE-like MCS rate 1 dB below the SNR (JSCC below the MCS cliff); its channel
  uses are counted. Library variant (V.A): a library built beforehand from the clip is held
  by both ends."""


def markdown_report(inputs: ReportInputs, base: Path) -> str:
    """The full report (links relative to ``base``, the folder the report is written to)."""
    rows, meta = inputs.rows, inputs.meta
    parts = ["# Offline experiments", "", f"Reproduce: `{inputs.command}`", "",
             _settings(meta), "", "## Targets", "",
             targets_table(check_targets(rows, meta.get("wall_seconds_full"))), "",
             "## Whole-frame PSNR (dB), mean over clips", "", metric_table(rows, "psnr"), "",
             "## Compression ratio (source values / channel uses), mean over clips", "",
             metric_table([r for r in rows if not r["method"].startswith("h264")],
                          "compression_ratio", 1), ""]
    for clip in sorted({r["clip"] for r in rows}):
        one = [r for r in rows if r["clip"] == clip]
        jscc = [r for r in one if not r["method"].startswith("h264")]
        parts += [f"## {clip}", "", "PSNR (dB):", "", metric_table(one, "psnr"), "",
                  "Channel uses per frame:", "", metric_table(jscc, "channel_uses_per_frame", 0),
                  "", "Compression ratio (source values / channel uses):", "",
                  metric_table(jscc, "compression_ratio", 1), ""]
    if inputs.basestation is not None:
        parts += ["## Base-station experiment", "", basestation_table(inputs.basestation), ""]
    parts += ["## Figures", "", _figure_links(inputs.figures, base), "", "## Notes", "",
              CAVEATS, ""]
    return "\n".join(parts)


def readme_section(inputs: ReportInputs, base: Path, report: Path) -> str:
    """The README's results section (links relative to ``base``, the README's folder)."""
    rows = inputs.rows
    parts = [f"Generated by `{inputs.command}` (full report: "
             f"[{os.path.relpath(report, base)}]({os.path.relpath(report, base)})).", "",
             _settings(inputs.meta), "", targets_table(
                 check_targets(rows, inputs.meta.get("wall_seconds_full"))), "",
             "Whole-frame PSNR (dB), mean over clips:", "", metric_table(rows, "psnr"), "",
             "Compression ratio against raw video, all costs counted, mean over clips:", "",
             metric_table([r for r in rows if not r["method"].startswith("h264")],
                          "compression_ratio", 1), ""]
    if inputs.basestation is not None:
        parts += ["Base station: mean total quality of the users served (`semstream "
                  "experiment` runs it too):", "", basestation_table(inputs.basestation), ""]
    parts += [_figure_links(inputs.figures, base), "", CAVEATS]
    return "\n".join(parts)


def update_readme(readme: str | Path, section: str) -> None:
    """Replace what lies between the results markers of ``readme`` with ``section``."""
    path = Path(readme)
    text = path.read_text()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{path} lacks the markers {START} ... {END}: add them first")
    path.write_text(f"{text[:start + len(START)]}\n{section}\n{text[end:]}")
