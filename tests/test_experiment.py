"""``semstream experiment``: a tiny sweep writes rows, plots and a report, and resumes
without recomputing; configuration errors; the README section rewrite; the Ray path."""

from __future__ import annotations

import csv
import json

import pytest

from stream.cli import main
from stream.experiment import Cell, SweepConfig, run_sweep
from stream.report import END, START, update_readme


@pytest.fixture(scope="module", autouse=True)
def _weights():
    from jscc.export import default_weights_path

    if not default_weights_path("edge").is_file():
        pytest.skip("jscc/weights/edge.pt is not exported yet")


def test_tiny_sweep_writes_everything_and_resumes(tmp_path, samples, capsys):
    out = tmp_path / "exp"
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{START}\nold\n{END}\nafter\n")
    argv = ["experiment", "--out", str(out), "--clips", str(samples / "asl-yes.mkv"),
            "--snr", "0,10", "--methods", "direct,proposed,h264-capacity",
            "--variants", "video", "--max-frames", "4", "--figure-snr", "10",
            "--bs-trials", "5", "--readme", str(readme), "--no-progress"]
    assert main(argv) == 0
    assert "(6 computed)" in capsys.readouterr().out
    with (out / "rows.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {(r["method"], float(r["snr"])) for r in rows} == {
        (m, s) for m in ("direct", "proposed", "h264-capacity") for s in (0.0, 10.0)}
    by = {(r["method"], float(r["snr"])): r for r in rows}
    # H.264 got exactly proposed's channel uses; proposed sends fewer than direct
    for snr in (0.0, 10.0):
        assert float(by["h264-capacity", snr]["channel_uses_per_frame"]) == pytest.approx(
            float(by["proposed", snr]["channel_uses_per_frame"]))
        assert float(by["proposed", snr]["channel_uses_per_frame"]) < \
            float(by["direct", snr]["channel_uses_per_frame"])
        assert 1 < float(by["direct", snr]["compression_ratio"]) < 20
    for png in ("psnr-awgn.png", "channel-uses-awgn.png", "compression-awgn.png",
                "frames.png", "basestation.png", "frames/asl-yes__original.png"):
        assert (out / png).stat().st_size > 1000, png
    report = (out / "report.md").read_text()
    assert "| proposed |" in report and "![psnr (awgn)](psnr-awgn.png)" in report
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith(f"{END}\nafter\n")
    assert "old" not in text and "| h264-capacity |" in text
    # second run: every cell is already there, nothing is recomputed
    cells = sorted((out / "cells").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in cells]
    assert main(argv) == 0
    assert "(0 computed)" in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in cells] == stamps
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["computed"] == 6 and meta["wall_seconds_full"] is not None  # kept
    # a cell computed with other settings (e.g. older weights) is stale: recomputed
    stale = out / "cells" / "asl-yes__h264-capacity__video__awgn__snr0.json"
    data = json.loads(stale.read_text())
    data["settings"]["weights_sha256"] = "0" * 16
    stale.write_text(json.dumps(data))
    assert main(argv) == 0
    assert "(1 computed)" in capsys.readouterr().out
    assert json.loads(stale.read_text())["settings"] != data["settings"]


def test_sweep_config_errors(samples):
    clip = str(samples / "carphone.mp4")
    with pytest.raises(ValueError, match="unknown or no methods"):
        SweepConfig(clips=(clip,), methods=("jpeg",))
    with pytest.raises(FileNotFoundError, match="clip not found"):
        SweepConfig(clips=("nope.mp4",))
    with pytest.raises(ValueError, match="add one of them"):
        SweepConfig(clips=(clip,), methods=("h264-mcs",))
    cells = SweepConfig(clips=(clip,), snrs=(5.0,)).cells()
    assert cells[-1].method.startswith("h264")  # H.264 cells come after the JSCC cells
    assert Cell(clip, "direct", "awgn", 5.0, "library") not in cells  # direct: video only
    assert main(["experiment", "--clips", clip, "--methods", "nope", "--out", "/tmp/x"]) == 2


def test_clip_spec_with_start_frame(tmp_path, samples):
    from dynbg.video import read_frames
    from stream.experiment import clip_name, clip_source, prepare_clip

    spec = f"{samples / 'carphone.mp4'}@100"
    assert clip_source(spec) == (samples / "carphone.mp4", 100)
    assert clip_name(spec) == "carphone@100" and clip_name("a/b@x.mp4") == "b@x"
    copy = prepare_clip(spec, tmp_path, 5)
    got = [f.image for f in read_frames(copy)]
    want = [f.image for f in read_frames(samples / "carphone.mp4", start=100, max_frames=5)]
    assert len(got) == 5 and all((a == b).all() for a, b in zip(got, want, strict=True))
    assert prepare_clip(str(samples / "carphone.mp4"), tmp_path, 5) == samples / "carphone.mp4"


def test_update_readme_needs_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="lacks the markers"):
        update_readme(readme, "x")
    assert readme.read_text() == "# no markers\n"


def test_ray_executor_runs_cells(tmp_path, samples):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        sweep = SweepConfig(clips=(str(samples / "carphone.mp4"),), snrs=(10.0,),
                            methods=("direct", "h264-mcs"), variants=("video",),
                            max_frames=3, ray_address="auto")
        result = run_sweep(sweep, tmp_path, progress=False)
    finally:
        ray.shutdown()
    assert result.computed == 2
    assert {r["method"] for r in result.rows} == {"direct", "h264-mcs"}
