"""Figures of the offline experiments (matplotlib, Agg backend, PNG files).

Rows are the flat dicts of :func:`stream.experiments.sweep.summary_row`. Figures: PSNR vs
SNR per clip and method (the paper's Figs. 6, 7, 9), channel uses per frame vs SNR, PSNR
against channel uses, frame PSNR against time, original / direct / proposed frames side by
side and the built backgrounds (Figs. 4, 5, 8), and the base-station experiment.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

STYLE = {"direct": ("tab:blue", "o"), "proposed": ("tab:red", "s"),
         "proposed-bg-jscc": ("tab:orange", "P"),
         "proposed-fg-latent": ("tab:purple", "^"), "proposed-skip2": ("tab:brown", "v"),
         "proposed-fg-latent-skip2": ("tab:pink", "<"),
         "h264-capacity": ("tab:green", "D"), "h264-mcs": ("tab:olive", "x")}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(rows: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    """Rows grouped by (clip, method, variant), each sorted by SNR."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["clip"], r["method"], r["variant"]), []).append(r)
    return {k: sorted(v, key=lambda r: r["snr"]) for k, v in groups.items()}


def _label(method: str, variant: str) -> str:
    return method if variant == "video" else f"{method} ({variant})"


def _per_clip(rows: list[dict], path: Path, value: Callable[[dict], float | None],
              ylabel: str, title: str, methods: tuple[str, ...] | None = None,
              log: bool = False) -> Path:
    """One panel per clip (channel of the first row), one line per method and variant."""
    plt = _pyplot()
    clips = sorted({r["clip"] for r in rows})
    cols = min(3, len(clips))
    nrows = math.ceil(len(clips) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.3 * nrows), squeeze=False)
    for ax, clip in zip(axes.flat, clips, strict=False):
        for (c, method, variant), series in _series(rows).items():
            if c != clip or (methods is not None and method not in methods):
                continue
            xs = [r["snr"] for r in series]
            ys = [value(r) for r in series]
            ys = [np.nan if y is None else y for y in ys]
            color, marker = STYLE.get(method.partition("@")[0], ("k", "."))
            ax.plot(xs, ys, marker=marker, color=color,
                    linestyle="-" if variant == "video" else "--",
                    label=_label(method, variant))
        ax.set_title(clip, fontsize=10)
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(clips):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def psnr_vs_snr(rows: list[dict], path: Path) -> Path:
    """Whole-frame PSNR (dB) vs SNR per clip and method."""
    return _per_clip(rows, path, lambda r: r["psnr"], "PSNR (dB)",
                     f"Whole-frame PSNR vs SNR ({rows[0]['channel']})")


def channel_uses(rows: list[dict], path: Path) -> Path:
    """Channel uses per frame vs SNR per clip (JSCC methods; each H.264 row gets its
    JSCC method's)."""
    jscc = tuple(sorted({r["method"] for r in rows if not r["method"].startswith("h264")}))
    return _per_clip(rows, path, lambda r: r["channel_uses_per_frame"],
                     "channel uses per frame", "Channel uses per frame, all costs counted",
                     methods=jscc, log=True)


def psnr_vs_channel_uses(rows: list[dict], path: Path) -> Path:
    """One panel per SNR (AWGN): mean whole-frame PSNR over clips against mean channel
    uses per frame, every method a point; H.264's points at the JSCC methods' budgets
    joined into a curve per rule."""
    plt = _pyplot()
    snrs = sorted({r["snr"] for r in rows})
    fig, axes = plt.subplots(1, len(snrs), figsize=(3.6 * len(snrs), 3.6), squeeze=False)
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in rows:
        if r["variant"] == "video" and r["psnr"] is not None:
            groups.setdefault((r["method"], r["snr"]), []).append(r)
    for ax, snr in zip(axes.flat, snrs, strict=True):
        curves: dict[str, list[tuple[float, float]]] = {}
        for (method, s), sel in groups.items():
            if s != snr:
                continue
            x = float(np.mean([r["channel_uses_per_frame"] for r in sel]))
            y = float(np.mean([r["psnr"] for r in sel]))
            base = method.partition("@")[0]
            if base.startswith("h264"):
                curves.setdefault(base, []).append((x, y))
                continue
            color, marker = STYLE.get(method, ("k", "."))
            ax.plot([x], [y], marker=marker, color=color, linestyle="none", label=method)
        for base, pts in curves.items():
            color, marker = STYLE.get(base, ("k", "."))
            xs, ys = zip(*sorted(pts), strict=True)
            ax.plot(xs, ys, marker=marker, color=color, label=base)
        ax.set_xscale("log")
        ax.set_title(f"{snr:g} dB", fontsize=10)
        ax.set_xlabel("channel uses per frame")
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylabel("whole-frame PSNR (dB)")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("PSNR against channel uses, AWGN, mean over clips")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def psnr_vs_time(series: dict[str, list[dict]], path: Path, title: str) -> Path:
    """Frame PSNR (dB) against frame index, one line per method: {method: report rows}
    (frozen H.264 frames marked)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for method, frame_rows in series.items():
        color, _ = STYLE.get(method.partition("@")[0], ("k", "."))
        xs = [r["index"] for r in frame_rows]
        ys = [np.nan if r.get("psnr") is None else r["psnr"] for r in frame_rows]
        ax.plot(xs, ys, color=color, label=method)
        frozen = [(x, y) for x, y, r in zip(xs, ys, frame_rows, strict=True) if r.get("frozen")]
        if frozen:
            ax.plot(*zip(*frozen, strict=True), "x", color=color, markersize=4,
                    label=f"{method}: frozen")
    ax.set_xlabel("frame")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def side_by_side(frames: dict[str, dict[str, Path]], path: Path, title: str) -> Path:
    """Grid of images: one row per clip, one column per kind (original, direct, ...).

    frames: {clip: {column title: PNG path}}."""
    from dynbg.library import read_image

    plt = _pyplot()
    columns = list(dict.fromkeys(k for f in frames.values() for k in f))
    fig, axes = plt.subplots(len(frames), len(columns), squeeze=False,
                             figsize=(3.2 * len(columns), 2.5 * len(frames)))
    for row, (clip, images) in zip(axes, frames.items(), strict=True):
        for ax, column in zip(row, columns, strict=True):
            ax.axis("off")
            if column in images:
                ax.imshow(read_image(images[column]))
            ax.set_title(f"{clip}: {column}", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def backgrounds(libraries: dict[str, list[Path]], path: Path) -> Path:
    """The backgrounds built per scene of each clip: {clip: [PNG paths]}."""
    return side_by_side({clip: {f"background {i}": p for i, p in enumerate(paths)}
                         for clip, paths in libraries.items()}, path,
                        "Backgrounds built per scene (library variant)")


def basestation(result: dict, path: Path) -> Path:
    """Mean total quality (± standard error) vs P_max for the three schedulers."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    x = np.array(result["p_max"], dtype=float)
    for name, label in (("dp", "DP (exact)"), ("greedy", "greedy"),
                        ("direct", "everyone direct")):
        mean, sem = np.array(result[name]["mean"]), np.array(result[name]["sem"])
        ax.plot(x, mean, marker="o", label=label)
        ax.fill_between(x, mean - sem, mean + sem, alpha=0.2)
    cfg = result["config"]
    ax.set_xscale("log")
    ax.set_xlabel(f"P_max (at 1 the mean SNR is {cfg['mean_snr_db']:g} dB)")
    ax.set_ylabel("total quality (sum of rho)")
    ax.set_title(f"{cfg['users']} users, {cfg['trials']} trials, alpha={cfg['alpha']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
