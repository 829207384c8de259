"""``semstream run``: report schema, determinism, output video, skip + interpolation, errors."""

from __future__ import annotations

import json

import pytest

from stream.cli import main

KEYS = {"frames", "psnr_mean", "ssim_mean", "psnr_fg_mean", "channel_uses_total",
        "channel_uses_per_frame", "source_values_total", "frames_dropped", "modes", "seconds",
        "rows"}


@pytest.fixture(scope="module", autouse=True)
def _weights():
    from jscc import DEFAULT_MODEL
    from jscc.export import default_weights_path

    if not default_weights_path(DEFAULT_MODEL).is_file():
        pytest.skip(f"jscc/weights/{DEFAULT_MODEL}.pt is not exported yet")


def _run(tmp_path, samples, name: str, *extra: str) -> dict:
    report = tmp_path / f"{name}.json"
    argv = ["run", str(samples / "carphone.mp4"), "--snr", "10", "--max-frames", "6",
            "--json", str(report), *extra]
    assert main(argv) == 0
    return json.loads(report.read_text())


def test_run_report_schema_and_determinism(tmp_path, samples):
    from dynbg.video import probe

    out = tmp_path / "out.mp4"
    a = _run(tmp_path, samples, "a", "--out", str(out), "--seed", "3")
    assert KEYS <= set(a)
    assert a["frames"] == 6 and a["frames_delivered"] == 6 and a["frames_dropped"] == {}
    assert a["frames_unaccounted"] == 0
    # carphone's head fills the frame: key mode sends those frames whole (direct_above)
    assert set(a["modes"]) == {"key", "direct", "skip"} and a["modes"]["direct"] == 6
    assert a["source_values_total"] == 6 * 176 * 144 * 3
    assert a["channel_uses_per_frame"] == pytest.approx(a["channel_uses_total"] / 6)
    assert 15 < a["psnr_mean"] < 60 and 0 < a["ssim_mean"] <= 1
    assert len(a["rows"]) == 6
    row = a["rows"][1]
    assert {"index", "sent", "channel_uses", "psnr", "ssim", "psnr_fg", "delivered"} <= set(row)
    assert sum(r["channel_uses"] for r in a["rows"]) == a["channel_uses_total"]
    info = probe(out)
    assert (info.width, info.height) == (176, 144)
    b = _run(tmp_path, samples, "b", "--seed", "3", "--no-rows")
    assert b["psnr_mean"] == a["psnr_mean"] and b["channel_uses_total"] == a["channel_uses_total"]
    assert "rows" not in b
    c = _run(tmp_path, samples, "c", "--seed", "4", "--no-rows")
    assert c["psnr_mean"] != a["psnr_mean"]  # another noise draw


def test_run_direct_and_skip_modes(tmp_path, samples):
    direct = _run(tmp_path, samples, "direct", "--mode", "direct", "--no-rows")
    assert direct["modes"] == {"key": 0, "direct": 6, "skip": 0}
    assert direct["channel_uses"]["backgrounds"] == 0
    skip = _run(tmp_path, samples, "skip", "--skip", "2", "--interp", "blend", "--no-rows")
    assert skip["modes"]["skip"] == 3 and skip["frames_delivered"] == 5
    assert skip["frames_dropped"] == {"skipped-tail": 1} and skip["frames_unaccounted"] == 0
    off = _run(tmp_path, samples, "off", "--skip", "2", "--interp", "off", "--no-rows")
    assert off["frames_dropped"] == {"skipped-interp-off": 2, "skipped-tail": 1}
    assert off["channel_uses_total"] == skip["channel_uses_total"]


def test_run_bad_input_is_one_line_exit_2(tmp_path, samples, capsys):
    assert main(["run", str(tmp_path / "missing.mp4"), "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.mp4" in err[0]
    assert main(["run", str(samples / "carphone.mp4"), "--max-frames", "0"]) == 2
    assert main(["run", str(samples / "carphone.mp4"), "--skip", "1"]) == 2
    assert main(["run", str(samples / "carphone.mp4"), "--segmenter", "nope",
                 "--max-frames", "1"]) == 2
