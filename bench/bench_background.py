"""A background sent once per segment: the digital link against JSCC at equal channel uses.

For the first frame of each clip (the background a segment starts from, foreground
inpainted as the sender does) and each SNR: the JSCC model's own transmission (policy
rate, through AWGN) and the digital link of ``jscc.digital.background_link`` given the same
channel uses (best of JPEG/WebP/HEVC-intra at the MCS rate 1 dB below the SNR). Reports
PSNR against the sent image, channel uses and the codec picked. JSON to stdout, and to
``--json PATH``.

    .venv/bin/python bench/bench_background.py --json docs/results/stream/background-link.json
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from jsonreport import emit  # noqa: E402

from dynbg.background import OnlineBackground  # noqa: E402
from dynbg.segmenters import make_segmenter  # noqa: E402
from dynbg.video import read_frames  # noqa: E402
from jscc.channel import ChannelConfig  # noqa: E402
from jscc.codec import JSCCCodec  # noqa: E402
from jscc.digital.background_link import code_background  # noqa: E402
from jscc.metrics import psnr  # noqa: E402

CLIPS = ("asl-again.mkv", "asl-help.mkv", "asl-please.mkv", "asl-walk.mkv", "asl-yes.mkv",
         "one-by-one-person.mp4")


def first_background(path: Path) -> np.ndarray:
    """The first frame of ``path`` with its selfie foreground inpainted (H x W x 3 uint8)."""
    image = next(iter(read_frames(path, max_frames=1))).image
    with make_segmenter("selfie") as seg:
        mask = seg.binary(image)
    online = OnlineBackground()
    online.update(image, mask)
    return online.background().image


def compare(image: np.ndarray, snr: float, codec: JSCCCodec, seed: int) -> dict:
    """JSCC and the digital link on ``image`` at ``snr`` dB with JSCC's channel uses."""
    generator = torch.Generator().manual_seed(seed)
    decoded, tx = codec.transmit(image, snr, ChannelConfig(), generator=generator,
                                 max_pixels=640 * 480)  # the sender's resolution check
    digital = code_background(image, snr, tx.channel_uses)
    return {"snr": snr, "channel_uses": tx.channel_uses,
            "jscc_psnr": round(psnr(image, decoded), 2),
            "digital_psnr": None if digital is None else round(psnr(image, digital.image), 2),
            "digital_codec": None if digital is None else digital.codec,
            "digital_channel_uses": None if digital is None else digital.channel_uses}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--snr", default="-5,0,5,10,20", help="SNRs in dB, comma-separated")
    p.add_argument("--json", type=Path, metavar="PATH")
    args = p.parse_args(argv)
    snrs = [float(s) for s in args.snr.split(",")]
    codec = JSCCCodec.load()
    rows = []
    for clip in CLIPS:
        image = first_background(ROOT / "samples" / clip)
        for snr in snrs:
            rows.append({"clip": clip, **compare(image, snr, codec, seed=len(rows))})
    mean = {}
    for snr in snrs:
        at = [r for r in rows if r["snr"] == snr]
        digital = [r["digital_psnr"] for r in at if r["digital_psnr"] is not None]
        mean[f"{snr:g}"] = {"jscc_psnr": round(float(np.mean([r["jscc_psnr"] for r in at])), 2),
                            "digital_psnr": round(float(np.mean(digital)), 2) if digital
                            else None, "digital_sent": f"{len(digital)}/{len(at)}"}
    emit({"what": "first background of each clip, JSCC vs digital link at JSCC's channel uses",
          "mean_over_clips": mean, "rows": rows}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
