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


def _lookup(rows: list[dict]) -> dict[tuple, dict]:
    return {(r["clip"], r["method"], r["variant"], r["channel"], r["snr"]): r for r in rows}


def _pairs(rows: list[dict], a: str, b: str, channel: str = "awgn",
           snr_max: float = np.inf) -> list[tuple[dict, dict]]:
    """(row of method a, row of method b) at each (clip, SNR) both have on ``channel``
    (video variant)."""
    index = _lookup(rows)
    out = []
    for r in rows:
        if r["method"] == a and r["variant"] == "video" and r["channel"] == channel \
                and r["snr"] <= snr_max:
            other = index.get((r["clip"], b, "video", channel, r["snr"]))
            if other is not None:
                out.append((r, other))
    return out


def _fmt(v, digits: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) \
        else f"{v:.{digits}f}"


def _beats(rows: list[dict], a: str, b: str, key: str = "psnr", channel: str = "awgn",
           snr_max: float = np.inf, label: str = "whole-frame PSNR") -> Target | None:
    """Target: method a beats b in ``key`` at every (clip, SNR) point on ``channel``."""
    pairs = _pairs(rows, a, b, channel, snr_max)
    if not pairs:
        return None
    fails = [(x["clip"], x["snr"], x[key], y[key]) for x, y in pairs
             if x[key] is None or y[key] is not None and x[key] <= y[key]]
    margins = [x[key] - y[key] for x, y in pairs if x[key] is not None and y[key] is not None]
    detail = (f"{len(pairs) - len(fails)}/{len(pairs)} (clip, SNR) points; margin "
              f"{_fmt(min(margins, default=None))} to {_fmt(max(margins, default=None))} dB")
    if fails:
        detail += "; worst: " + ", ".join(f"{c} {s:g} dB: {_fmt(p)} vs {_fmt(q)}" for c, s, p, q
                                          in sorted(fails, key=lambda f: f[2] - f[3])[:3])
    where = f" at SNR <= {snr_max:g} dB" if np.isfinite(snr_max) else " at every SNR"
    return Target(f"{channel}: {a} beats {b} in {label}{where}", not fails, detail)


def _h264_curve(rows: list[dict], rule: str = "h264-mcs") -> dict[tuple, list[tuple]]:
    """(clip, SNR) -> sorted [(channel uses per frame, PSNR)] of an H.264 rule's AWGN
    cells at the budgets of the JSCC methods."""
    curve: dict[tuple, list[tuple]] = {}
    for r in rows:
        if r["channel"] == "awgn" and r["method"].partition("@")[0] == rule \
                and r["psnr"] is not None:
            curve.setdefault((r["clip"], r["snr"]), []).append(
                (r["channel_uses_per_frame"], r["psnr"]))
    return {k: sorted(v) for k, v in curve.items()}


def uses_at_equal_psnr(rows: list[dict], method: str = "proposed",
                       rule: str = "h264-mcs") -> Target | None:
    """Target: ``method`` reaches its PSNR with fewer channel uses than H.264 ``rule``
    needs for the same PSNR (interpolated in log channel uses between H.264's points;
    below its cheapest point H.264 needs at most that, above its dearest at least that)."""
    curve = _h264_curve(rows, rule)
    points = []
    for r in rows:
        pts = curve.get((r["clip"], r["snr"]))
        if r["method"] != method or r["variant"] != "video" or r["channel"] != "awgn" \
                or not pts or r["psnr"] is None:
            continue
        uses, psnrs = np.log([u for u, _ in pts]), np.array([p for _, p in pts])
        order = np.argsort(psnrs)
        need = float(np.exp(np.interp(r["psnr"], psnrs[order], uses[order])))
        # below H.264's lowest PSNR it needs at most its cheapest budget: H.264 wins
        wins = r["psnr"] >= psnrs.min() and r["channel_uses_per_frame"] < need
        points.append((r, need, wins))
    if not points:
        return None
    ratios = [r["channel_uses_per_frame"] / need for r, need, _ in points]
    won = sum(w for _, _, w in points)
    return Target(f"awgn: {method} needs fewer channel uses than {rule} for the same PSNR",
                  won == len(points),
                  f"{won}/{len(points)} (clip, SNR) points; {method}'s channel uses / "
                  f"{rule}'s for {method}'s PSNR: {min(ratios):.2f} to {max(ratios):.2f} "
                  f"(H.264 below its cheapest budget is counted at that budget, so these "
                  f"ratios flatter {method})")


def _mean_over(rows: list[dict], method: str, channel: str, key: str) -> dict[str, float]:
    """clip -> mean of ``key`` over the SNRs (receivers) of ``method`` on ``channel``."""
    by: dict[str, list[float]] = {}
    for r in rows:
        if r["method"] == method and r["channel"] == channel and r["variant"] == "video" \
                and r[key] is not None:
            by.setdefault(r["clip"], []).append(r[key])
    return {c: float(np.mean(v)) for c, v in by.items()}


def multicast_target(rows: list[dict], a: str = "proposed", b: str = "h264-mcs") -> Target | None:
    """Target: a's mean PSNR over the multicast receivers beats b's, on every clip."""
    x, y = _mean_over(rows, a, "multicast", "psnr"), _mean_over(rows, b, "multicast", "psnr")
    clips = sorted(set(x) & set(y))
    if not clips:
        return None
    wins = [c for c in clips if x[c] > y[c]]
    return Target(f"multicast: {a}'s mean PSNR over the receivers beats {b}'s",
                  len(wins) == len(clips),
                  f"{len(wins)}/{len(clips)} clips; mean over clips {np.mean(list(x.values())):.2f}"
                  f" vs {np.mean(list(y.values())):.2f} dB")


def check_targets(rows: list[dict], wall_seconds: float | None) -> list[Target]:
    """The targets, each a comparison that can fail (skipped when its methods are absent)."""
    targets = [_beats(rows, "proposed", "direct"),
               _beats(rows, "proposed-bg-jscc", "direct",
                      label="whole-frame PSNR (the crop's gain alone)")]
    for m in ("direct", "proposed", "proposed-fg-latent"):
        twin = "h264-mcs" if m == "proposed" else f"h264-mcs@{m}"
        targets.append(_beats(rows, m, twin, label="PSNR at equal channel uses"))
    targets += [_beats(rows, "proposed", "h264-capacity", snr_max=5.0,
                       label="PSNR at equal channel uses (capacity: an upper bound)"),
                uses_at_equal_psnr(rows)]
    for channel in ("fading", "jakes"):
        targets.append(_beats(rows, "proposed", "h264-mcs", "psnr_p5", channel, 10.0,
                              "5th-percentile frame PSNR"))
    targets.append(multicast_target(rows))
    lowest = min((r["snr"] for r in rows if r["channel"] == "awgn"), default=None)
    cliff = [r for r in rows if r["method"] == "proposed" and r["snr"] == lowest
             and r["channel"] == "awgn"]
    if cliff:
        lost = sum(r["frames_lost"] or 0 for r in cliff)
        targets.append(Target(f"awgn: proposed has no cliff (frames lost at {lowest:g} dB)",
                              lost == 0, f"{lost} frames lost over {len(cliff)} runs"))
    if wall_seconds is not None:
        targets.append(Target("this sweep (every cell computed) under 30 minutes",
                              wall_seconds < 1800,
                              f"{wall_seconds / 60:.1f} min wall time"))
    return [t for t in targets if t is not None]


def verdict(rows: list[dict]) -> str:
    """Plain bullet lines: where proposed wins and where H.264 wins, with the figures
    (means over clips per SNR)."""
    lines = []
    for channel, b, key, what in (
            ("awgn", "h264-mcs", "psnr", "mean PSNR at equal channel uses (static AWGN, SNR "
                                         "known to the sender)"),
            ("awgn", "h264-capacity", "psnr", "mean PSNR against the capacity upper bound"),
            ("fading", "h264-mcs", "psnr_p5", "5th-percentile frame PSNR, per-frame Rayleigh "
                                              "fading, one-frame-old channel knowledge"),
            ("fading", "h264-mcs", "psnr", "mean PSNR, per-frame Rayleigh fading"),
            ("jakes", "h264-mcs", "psnr_p5", "5th-percentile frame PSNR, Jakes fading at "
                                             "pedestrian Doppler"),
            ("multicast", "h264-mcs", "psnr", "PSNR per multicast receiver (one MCS for "
                                              "all)")):
        pairs = _pairs(rows, "proposed", b, channel)
        if not pairs:
            continue
        per_snr: dict[float, list[tuple[float, float]]] = {}
        for x, y in pairs:
            if x[key] is not None and y[key] is not None:
                per_snr.setdefault(x["snr"], []).append((x[key], y[key]))
        wins, losses = [], []
        for snr, vals in sorted(per_snr.items()):
            a, c = np.mean([v[0] for v in vals]), np.mean([v[1] for v in vals])
            (wins if a > c else losses).append(f"{snr:g} dB: {a:.1f} vs {c:.1f}")
        head = f"- **{what}**: proposed vs {b}: "
        parts = []
        if wins:
            parts.append("proposed wins at " + "; ".join(wins))
        if losses:
            parts.append(f"{b} wins at " + "; ".join(losses))
        lines.append(head + " — ".join(parts) + " dB.")
    return "\n".join(lines)


def _methods(rows: list[dict]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r["method"], r["variant"]) for r in rows))


def _name(method: str, variant: str) -> str:
    return method if variant == "video" else f"{method} ({variant})"


def _grid(rows: list[dict], render: Callable[[list[dict]], str]) -> str:
    """Markdown table: one line per (method, variant), one column per SNR; each cell is
    ``render`` of the rows (one per clip) at that point, "–" where there are none."""
    snrs = sorted({r["snr"] for r in rows})
    lines = ["| method | " + " | ".join(f"{s:g} dB" for s in snrs) + " |",
             "|---|" + "---|" * len(snrs)]
    for method, variant in _methods(rows):
        at = [[r for r in rows if r["method"] == method and r["variant"] == variant
               and r["snr"] == s] for s in snrs]
        lines.append(f"| {_name(method, variant)} | "
                     + " | ".join(render(a) if a else "–" for a in at) + " |")
    return "\n".join(lines)


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r[key] is not None]
    return float(np.mean(vals)) if vals else None


def metric_table(rows: list[dict], key: str, digits: int = 2,
                 fmt: Callable[[float], str] | None = None) -> str:
    """Markdown table: one line per (method, variant), one column per SNR, cells the mean
    of ``key`` over the clips (formatted by ``fmt`` when given)."""
    def render(at: list[dict]) -> str:
        mean = _mean(at, key)
        return "–" if mean is None else fmt(mean) if fmt else _fmt(mean, digits)

    return _grid(rows, render)


ABLATION = (("direct", "no", "no"), ("proposed-bg-jscc", "yes", "no (JSCC)"),
            ("proposed", "yes", "yes"))


def ablation_table(rows: list[dict]) -> str:
    """What each idea buys on AWGN: whole-frame / foreground PSNR (dB) and channel uses
    per frame of direct, the crop alone and the crop with the digital background."""
    awgn = [r for r in rows if r["channel"] == "awgn" and r["variant"] == "video"]
    snrs = sorted({r["snr"] for r in awgn})
    lines = ["| method | crop | digital background | " + " | ".join(
        f"{s:g} dB: PSNR / fg PSNR / uses per frame" for s in snrs) + " |",
        "|---|---|---|" + "---|" * len(snrs)]
    for method, crop, background in ABLATION:
        sel = [r for r in awgn if r["method"] == method]
        if not sel:
            continue
        cells = []
        for s in snrs:
            at = [r for r in sel if r["snr"] == s]
            cells.append(" / ".join(_fmt(_mean(at, k), d) for k, d in (
                ("psnr", 2), ("psnr_fg", 2), ("channel_uses_per_frame", 0))))
        lines.append(f"| {method} | {crop} | {background} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def equal_uses_table(rows: list[dict]) -> str:
    """PSNR (dB) of each JSCC method minus that of H.264 + MCS at the same channel uses
    (AWGN, mean over clips; negative: H.264 wins)."""
    out = []
    for m in ("direct", "proposed", "proposed-bg-jscc", "proposed-fg-latent"):
        twin = "h264-mcs" if m == "proposed" else f"h264-mcs@{m}"
        pairs = _pairs(rows, m, twin)
        for x, y in pairs:
            out.append({**x, "method": f"{m} − {twin}",
                        "psnr": None if x["psnr"] is None or y["psnr"] is None
                        else x["psnr"] - y["psnr"]})
    return metric_table(out, "psnr", fmt=lambda v: f"{v:+.2f}") if out else ""


def fading_table(rows: list[dict]) -> str:
    """Mean PSNR / 5th-percentile frame PSNR (dB) / frozen frames (%) per method and SNR."""
    def render(at: list[dict]) -> str:
        frozen = _mean(at, "frozen_fraction")
        return (f"{_fmt(_mean(at, 'psnr'))} / {_fmt(_mean(at, 'psnr_p5'))} / "
                f"{'–' if frozen is None else f'{100 * frozen:.0f} %'}")

    return _grid(rows, render)


def multicast_table(rows: list[dict]) -> str:
    """PSNR (dB) per multicast receiver SNR and its mean over receivers, per method."""
    sel = [r for r in rows if r["channel"] == "multicast"]
    if not sel:
        return ""
    table = metric_table(sel, "psnr").split("\n")
    table[0] += " mean over receivers |"
    table[1] += "---|"
    for i, (method, variant) in enumerate(_methods(sel)):
        means = _mean_over([r for r in sel if r["variant"] == variant], method, "multicast",
                           "psnr")
        table[i + 2] += f" {_fmt(float(np.mean(list(means.values()))) if means else None)} |"
    return "\n".join(table)


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
    libraries = "; ".join(f"{k}: {v}" for k, v in meta.get("libraries", {}).items())
    return (f"Clips: {', '.join(meta['clips'])}; first {meta['max_frames']} frames of each; "
            f"SNR {', '.join(f'{s:g}' for s in meta['snrs'])} dB; channels "
            f"{', '.join(meta['channels'])} (multicast receivers at "
            f"{', '.join(f'{s:g}' for s in meta.get('multicast_snrs', []))} dB); JSCC "
            f"weights: {meta['weights']}. Library variant built from: {libraries or '–'}. "
            f"{meta['cells']} cells; the last run that computed any computed "
            f"{meta['computed']} of them in {meta['wall_seconds'] / 60:.1f} min wall time "
            f"({meta['executor']}).")


CAVEATS = """\
- Every method puts unit average energy per channel use on the channel (measured per
  message in `tests/test_channel_power.py`); every JSCC method sends at the clip's full
  resolution; each H.264 row gets exactly the channel uses of the JSCC method it names
  (`h264-mcs` = at proposed's, `h264-mcs@direct` = at direct's, ...).
- One margin rule for every digital link (H.264, backgrounds, the image baseline): the
  sender picks the LTE MCS for the SNR it expects minus 1 dB; a block whose realised SNR
  falls below the threshold of the scheme picked is lost. H.264 at capacity gets
  `log2(1+SNR)` error-free bits per channel use: an upper bound no real code reaches.
- H.264 (libx264 veryfast, zerolatency, up to 1 s of rate-control buffering; JSCC gets
  none) places keyframes as a low-latency sender does: one a second, plus one requested by
  the receiver after each loss, 2 frames later (about a round trip). A lost frame and the
  frames that predict from it until the next keyframe are concealed by repeating the last
  good frame (frozen); mid-grey before the first.
- Fading (`fading`: Rayleigh, independent per frame; `jakes`: Jakes' model at 5.56 Hz,
  3 km/h at 2 GHz): the digital sender picks frame t's MCS from frame t-1's realised SNR;
  JSCC encodes at the mean SNR (it cannot know the fade either) and its receiver equalises
  with the frame's gain (MMSE). Backgrounds over the digital link are assumed to arrive
  (sent once per segment, their MCS uses the realised gain): optimistic for proposed.
- Multicast: one transmission; JSCC's encoder and the digital link's MCS are set for the
  weakest receiver (0 dB), each receiver decodes at its own SNR.
- Library variant (paper V.A): the library is built beforehand from material the scored
  frames do not contain (listed above) and held by both ends.
- Compression ratio = source values (3 x H x W per frame) / channel uses, counting frame
  symbols, background updates and side information (1 bit per channel use). SSIM is the
  standard Gaussian 11 x 11 (sigma 1.5) SSIM.
- The JSCC model is the one the report names, trained on this 2-core machine (its model
  card: `jscc/weights/MODEL_CARD-<name>.md`); it runs in the arithmetic each cell records
  (`jscc_precision`). Figures change when a better model is exported: re-run the command
  above."""


def _sections(rows: list[dict], heading: str) -> list[str]:
    """The result tables (``heading``: markdown prefix of their titles)."""
    awgn = [r for r in rows if r["channel"] == "awgn"]
    parts = [f"{heading} Where proposed wins and where H.264 wins", "", verdict(rows), "",
             f"{heading} Ablation (AWGN): what the crop and the digital background each buy",
             "", ablation_table(rows), "",
             "A digital background on direct mode is not meaningful: direct sends every frame "
             "whole, so there is no background to send.", "",
             f"{heading} Whole-frame PSNR (dB), AWGN, mean over clips", "",
             metric_table(awgn, "psnr"), ""]
    equal = equal_uses_table(rows)
    if equal:
        parts += [f"{heading} PSNR difference at equal channel uses (dB), AWGN", "", equal, ""]
    parts += [f"{heading} Channel uses per frame, AWGN, mean over clips", "",
              metric_table([r for r in awgn if r["budget_of"] is None],
                           "channel_uses_per_frame", 0), ""]
    for channel, what in (("rayleigh", "Rayleigh block fading (64 symbols), known to both"),
                          ("fading", "per-frame Rayleigh fading, one-frame-old channel "
                                     "knowledge"),
                          ("jakes", "Jakes fading at pedestrian Doppler, one-frame-old "
                                    "channel knowledge")):
        sel = [r for r in rows if r["channel"] == channel]
        if sel:
            parts += [f"{heading} {what}: mean PSNR / 5th-percentile frame PSNR (dB) / "
                      f"frozen frames, by mean SNR", "", fading_table(sel), ""]
    multicast = multicast_table(rows)
    if multicast:
        parts += [f"{heading} Multicast: PSNR (dB) per receiver SNR", "", multicast, ""]
    return parts


def markdown_report(inputs: ReportInputs, base: Path) -> str:
    """The full report (links relative to ``base``, the folder the report is written to)."""
    rows, meta = inputs.rows, inputs.meta
    parts = ["# Offline experiments", "", f"Reproduce: `{inputs.command}`", "",
             _settings(meta), "", "## Targets", "",
             targets_table(check_targets(rows, meta.get("wall_seconds_full"))), "",
             *_sections(rows, "##")]
    for clip in sorted({r["clip"] for r in rows}):
        one = [r for r in rows if r["clip"] == clip and r["channel"] == "awgn"]
        parts += [f"## {clip} (AWGN)", "", "PSNR (dB):", "", metric_table(one, "psnr"), "",
                  "Channel uses per frame:", "",
                  metric_table([r for r in one if r["budget_of"] is None],
                               "channel_uses_per_frame", 0), ""]
    if inputs.basestation is not None:
        parts += ["## Base-station experiment", "", basestation_note(inputs.basestation), "",
                  basestation_table(inputs.basestation), ""]
    parts += ["## Figures", "", _figure_links(inputs.figures, base), "", "## Notes", "",
              CAVEATS, ""]
    return "\n".join(parts)


def basestation_note(result: dict) -> str:
    """Where the base-station experiment's alpha and key fraction came from."""
    cfg = result["config"]
    return (f"alpha = {cfg['alpha']:.3f}, key_fraction = {cfg['key_fraction']:.3f}: "
            f"{result.get('source', 'as configured')}.")


def readme_section(inputs: ReportInputs, base: Path, report: Path) -> str:
    """The README's results section (links relative to ``base``, the README's folder)."""
    rows = inputs.rows
    parts = [f"Generated by `{inputs.command}` (full report: "
             f"[{os.path.relpath(report, base)}]({os.path.relpath(report, base)})).", "",
             _settings(inputs.meta), "", targets_table(
                 check_targets(rows, inputs.meta.get("wall_seconds_full"))), "",
             *_sections(rows, "###")]
    if inputs.basestation is not None:
        parts += ["Base station: mean total quality of the users served (`semstream "
                  "experiment` runs it too); " + basestation_note(inputs.basestation), "",
                  basestation_table(inputs.basestation), ""]
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
