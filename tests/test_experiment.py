"""``semstream experiment``: a tiny sweep writes rows, plots and a report, and resumes
without recomputing; configuration errors; the README section rewrite; the Ray path."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from stream.cli import main
from stream.experiments.report import END, START, update_readme
from stream.experiments.sweep import (
    H264_REVISION,
    MULTICAST_SNRS,
    Cell,
    SweepConfig,
    h264_parts,
    run_sweep,
)


@pytest.fixture(scope="module", autouse=True)
def _weights():
    from jscc import DEFAULT_MODEL
    from jscc.export import default_weights_path

    if not default_weights_path(DEFAULT_MODEL).is_file():
        pytest.skip(f"jscc/weights/{DEFAULT_MODEL}.pt is not exported yet")


def test_tiny_sweep_writes_everything_and_resumes(tmp_path, samples, capsys):
    out = tmp_path / "exp"
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{START}\nold\n{END}\nafter\n")
    argv = ["experiment", "--out", str(out), "--clips", str(samples / "asl-yes.mkv"),
            "--snr", "0,10", "--methods", "direct,proposed,h264-capacity",
            "--channels", "awgn", "--variants", "video", "--max-frames", "4", "--figure-snr", "10",
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
    for png in ("psnr-awgn.png", "channel-uses-awgn.png", "psnr-vs-channel-uses.png",
                "frames.png", "basestation.png", "frames/asl-yes__original.png"):
        assert (out / png).stat().st_size > 1000, png
    report = (out / "report.md").read_text()
    assert "| proposed |" in report and "![psnr (awgn)](psnr-awgn.png)" in report
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith(f"{END}\nafter\n")
    assert "\nold\n" not in text and "| h264-capacity |" in text
    # second run: every cell is already there, nothing is recomputed
    cells = sorted((out / "cells").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in cells]
    assert main(argv) == 0
    assert "(0 computed)" in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in cells] == stamps
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["computed"] == 6 and meta["wall_seconds_full"] is not None  # kept
    # the base-station experiment takes alpha and the key fraction from the sweep
    bs = json.loads((out / "basestation.json").read_text())
    fractions = [float(by["proposed", s]["channel_uses_per_frame"])
                 / float(by["direct", s]["channel_uses_per_frame"]) for s in (0.0, 10.0)]
    assert bs["config"]["key_fraction"] == pytest.approx(np.mean(fractions))
    assert 0 < bs["config"]["alpha"] < 1 and "measured by the sweep" in bs["source"]
    # a cell computed with other settings (e.g. older weights) is stale: recomputed
    stale = out / "cells" / "asl-yes__h264-capacity__video__awgn__snr0.json"
    data = json.loads(stale.read_text())
    data["settings"]["weights_sha256"] = "0" * 16
    stale.write_text(json.dumps(data))
    assert main(argv) == 0
    assert "(1 computed)" in capsys.readouterr().out
    assert json.loads(stale.read_text())["settings"] != data["settings"]
    # a change of the H.264 baseline alone redoes its cells, not the JSCC ones
    data = json.loads(stale.read_text())
    assert data["settings"].pop("h264_revision") == H264_REVISION
    stale.write_text(json.dumps(data))
    assert main(argv) == 0
    assert "(1 computed)" in capsys.readouterr().out
    jscc_cell = out / "cells" / "asl-yes__proposed__video__awgn__snr0.json"
    assert "h264_revision" not in json.loads(jscc_cell.read_text())["settings"]
    # the JSCC arithmetic is part of the settings; cells from before it was recorded ran
    # fp32, so they stand for an fp32 sweep and are redone for a bf16 one
    data = json.loads(jscc_cell.read_text())
    assert data["settings"]["jscc_precision"] == data["report"]["jscc_precision"]
    data["settings"].pop("jscc_precision")
    jscc_cell.write_text(json.dumps(data))
    assert main([*argv, "--precision", "fp32"]) == 0
    fp32_run = capsys.readouterr().out
    if data["report"]["jscc_precision"] == "fp32":
        assert "(0 computed)" in fp32_run
    else:  # a bf16 machine: the fp32 sweep redoes every cell but the stripped one
        assert "(5 computed)" in fp32_run


def test_sweep_config_errors(samples):
    clip = str(samples / "carphone.mp4")
    with pytest.raises(ValueError, match="unknown or no methods"):
        SweepConfig(clips=(clip,), methods=("jpeg",))
    with pytest.raises(FileNotFoundError, match="clip not found"):
        SweepConfig(clips=("nope.mp4",))
    with pytest.raises(ValueError, match="add proposed"):
        SweepConfig(clips=(clip,), methods=("h264-mcs",))
    with pytest.raises(ValueError, match="add direct"):
        SweepConfig(clips=(clip,), channel_methods=("proposed", "h264-mcs@direct"))
    with pytest.raises(ValueError, match="unknown or no channels"):
        SweepConfig(clips=(clip,), channels=("awgn", "rician"))
    cells = SweepConfig(clips=(clip,), snrs=(5.0,), channels=("awgn", "multicast")).cells()
    assert cells[-1].method.startswith("h264")  # H.264 cells come after the JSCC cells
    assert Cell(clip, "direct", "awgn", 5.0, "library") not in cells  # direct: video only
    # the default sweep separates the crop's gain from the digital background's (fault 3)
    # and gives direct, proposed and fg-latent each an H.264 at its own channel uses (4)
    default = SweepConfig(clips=(clip,))
    assert "proposed-bg-jscc" in default.methods
    assert {h264_parts(m)[1] for m in default.methods if h264_parts(m)} >= {
        "direct", "proposed", "proposed-fg-latent"}
    # multicast: the receivers' SNRs, the channel methods only
    assert {(c.method, c.snr) for c in cells if c.channel == "multicast"} == {
        (m, s) for m in ("proposed", "h264-mcs") for s in MULTICAST_SNRS}
    assert main(["experiment", "--clips", clip, "--methods", "nope", "--out", "/tmp/x"]) == 2


def test_clip_spec_with_start_frame(tmp_path, samples):
    from dynbg.video import read_frames
    from stream.experiments.sweep import clip_name, clip_source, prepare_clip

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
                            methods=("direct", "h264-mcs@direct"), variants=("video",),
                            max_frames=3, ray_address="auto")
        result = run_sweep(sweep, tmp_path, progress=False)
    finally:
        ray.shutdown()
    assert result.computed == 2
    assert {r["method"] for r in result.rows} == {"direct", "h264-mcs@direct"}


def test_library_is_built_from_material_outside_the_scored_frames(samples):
    """Fault 2 of issue 14: the library came from the clip being scored."""
    from stream.experiments.sweep import library_source

    asl = [str(samples / f"asl-{n}.mkv") for n in ("again", "help", "yes")]
    later = f"{samples / 'one-by-one-person.mp4'}@60"
    sweep = SweepConfig(clips=(*asl, later, str(samples / "carphone.mp4")))
    for clip in asl:  # another clip of the same room, never itself
        source = library_source(sweep, clip)
        assert source.video != samples / clip and source.video.name.startswith("asl-")
        assert source.frames is None and "another clip of the same room" in source.description
    source = library_source(sweep, later)  # the frames before the scored part
    assert (source.video.name, source.frames) == ("one-by-one-person.mp4", 60)
    assert library_source(sweep, str(samples / "carphone.mp4")) is None  # nothing else
    assert all(c.clip != str(samples / "carphone.mp4") for c in sweep.cells()
               if c.variant == "library")


def test_frame_links_share_one_draw_and_know_only_the_past():
    from stream.experiments.sweep import frame_link

    a, b = frame_link("fading", 5.0, 40, 30.0, 0), frame_link("fading", 5.0, 60, 30.0, 0)
    assert np.allclose(a.gains, b.gains[:40])  # JSCC and H.264 cells see the same fades
    assert a.expected_db[0] == 5.0 and np.allclose(a.expected_db[1:], a.realised_db[:-1])
    slow = frame_link("jakes", 5.0, 40, 30.0, 0)
    assert abs(np.corrcoef(slow.realised_db[1:], slow.realised_db[:-1])[0, 1]) > \
        abs(np.corrcoef(a.realised_db[1:], a.realised_db[:-1])[0, 1])
    m = frame_link("multicast", 13.0, 10, 30.0, 0)
    assert m.snr == 13.0 and m.sender_snr == min(MULTICAST_SNRS)
    assert np.all(m.expected_db == min(MULTICAST_SNRS)) and np.all(m.realised_db == 13.0)


def test_direct_is_sent_at_full_resolution(samples, tmp_path):
    """Fault 6: direct downscaled every 768x432 frame to the 307,200-pixel cap while
    proposed sent its background at full size; the sweep now sends both at full size."""
    from stream.experiments.sweep import prepare_clip, run_jscc_cell

    spec = f"{samples / 'one-by-one-person.mp4'}@60"
    sweep = SweepConfig(clips=(spec,), max_frames=2)
    video = str(prepare_clip(spec, tmp_path, 2))
    report = run_jscc_cell(Cell(spec, "direct", "awgn", 10.0), video, sweep, None,
                           None)["report"]
    # 1/12 of the full frame's source values at least (the cap would give 76,800)
    assert report["channel_uses_total"] / 2 >= 768 * 432 * 3 / 12


def test_fading_and_multicast_cells_report_tails_and_frozen_frames(tmp_path, samples):
    sweep = SweepConfig(clips=(str(samples / "asl-yes.mkv"),), snrs=(5.0,),
                        channels=("fading", "multicast"), variants=("video",), max_frames=6)
    result = run_sweep(sweep, tmp_path, progress=False)
    rows = {(r["method"], r["channel"], r["snr"]): r for r in result.rows}
    assert len(rows) == 2 + 2 * len(MULTICAST_SNRS)
    jscc, h264 = rows["proposed", "fading", 5.0], rows["h264-mcs", "fading", 5.0]
    assert jscc["frozen_fraction"] == 0 and jscc["psnr_p5"] <= jscc["psnr"]
    assert h264["channel_uses_per_frame"] == pytest.approx(jscc["channel_uses_per_frame"])
    assert 0 <= h264["frozen_fraction"] <= 1 and h264["psnr_p5"] <= h264["psnr"]
    # multicast: one transmission coded for the weakest receiver, same uses for all
    uses = {rows["proposed", "multicast", s]["channel_uses_per_frame"] for s in MULTICAST_SNRS}
    assert len(uses) == 1
    h264_psnr = {round(rows["h264-mcs", "multicast", s]["psnr"], 6) for s in MULTICAST_SNRS}
    assert len(h264_psnr) == 1  # every receiver decodes the one MCS picked for 0 dB
    assert rows["proposed", "multicast", 20.0]["psnr"] > rows["proposed", "multicast", 0.0][
        "psnr"]


def test_targets_can_fail():
    """Every target compares two measured figures: rows where proposed loses fail them."""
    from stream.experiments.report import check_targets

    def row(method, channel, snr, psnr, p5=None, uses=1000.0):
        return {"clip": "c", "method": method, "variant": "video", "channel": channel,
                "snr": snr, "psnr": psnr, "psnr_p5": p5, "channel_uses_per_frame": uses,
                "frames_lost": 0, "budget_of": None}

    rows = [row("direct", "awgn", 0.0, 30.0, uses=2000.0), row("proposed", "awgn", 0.0, 29.0),
            row("h264-mcs", "awgn", 0.0, 35.0), row("h264-mcs@direct", "awgn", 0.0, 38.0,
                                                    uses=2000.0),
            row("proposed", "fading", 0.0, 28.0, 20.0), row("h264-mcs", "fading", 0.0, 30.0,
                                                            25.0),
            row("proposed", "multicast", 0.0, 28.0), row("h264-mcs", "multicast", 0.0, 30.0)]
    rows[1]["frames_lost"] = 2  # a cliff
    targets = {t.name: t.met for t in check_targets(rows, 2000.0)}
    assert targets and not any(targets.values())
    assert "awgn: proposed needs fewer channel uses than h264-mcs for the same PSNR" in targets
