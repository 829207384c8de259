"""`semstream bg build|match` end to end on a real clip, and its one-line errors."""

from __future__ import annotations

import json

from stream.cli import main


def test_build_then_match(tmp_path, samples, capsys):
    out, report = tmp_path / "lib", tmp_path / "report.json"
    video = samples / "asl-help.mkv"
    assert main(["bg", "build", str(video), "--out", str(out), "--samples", "8",
                 "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert [(s["start"], s["end"]) for s in data["segments"]] == [(0, 57)]
    seg = data["segments"][0]
    assert (out / "bg-000.png").is_file() and (out / "library.npz").is_file()
    assert 0 < seg["unseen_fraction"] < 0.5  # the signer hardly moves: some never seen
    hit = tmp_path / "hit.json"
    assert main(["bg", "match", str(out / "bg-000.png"), "--library", str(out),
                 "--segmenter", "none", "--json", str(hit)]) == 0
    result = json.loads(hit.read_text())
    assert result["match"] == seg["background"] and result["runner_up"] is None
    # Existing output is refused; nothing is left half-written.
    assert main(["bg", "build", str(video), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_errors_are_one_line_and_leave_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"junk" * 50)
    out = tmp_path / "lib"
    assert main(["bg", "build", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.mp4" in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.mp4"]
    empty = tmp_path / "empty"
    empty.mkdir()
    img = tmp_path / "x.png"
    img.write_bytes(b"not png")
    assert main(["bg", "match", str(img), "--library", str(empty)]) == 2
    assert "no background images" in capsys.readouterr().err
