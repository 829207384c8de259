"""Runtime switch, method registry and the ``semstream interp`` command on a short clip."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from interp.methods import METHOD_NAMES, make_interpolator, make_with_fallback
from interp.switch import InterpolationSwitch
from stream.cli import main
from tests.conftest import require_model


def test_switch_toggles_between_frames_and_sets_the_rate():
    sw = InterpolationSwitch(make_interpolator("blend"), skip=3)
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 30, np.uint8)
    made = sw.fill(a, b)
    assert [f[0, 0, 0] for f in made] == [10, 20]
    assert sw.output_fps(10.0) == 30.0
    assert sw.toggle() is False
    assert sw.fill(a, b) == [] and sw.output_fps(10.0) == 10.0
    sw.set_enabled(True)
    assert len(sw.fill(a, b)) == 2


def test_switch_is_safe_to_flip_from_other_threads():
    sw = InterpolationSwitch(make_interpolator("repeat"), skip=2, enabled=False)
    threads = [threading.Thread(target=lambda: [sw.toggle() for _ in range(1000)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sw.enabled is False  # 4000 flips: back where it started


def test_registry_names_and_fallback(tmp_path):
    with pytest.raises(ValueError, match="unknown interpolation method"):
        make_interpolator("magic")
    from interp.methods import MethodConfig

    absent = MethodConfig(weights=tmp_path / "none.pkl")
    method, note = make_with_fallback("rife", "dis", absent)
    assert method.name == "dis" and "rife unavailable" in note
    method, note = make_with_fallback("blend")
    assert method.name == "blend" and note is None


@pytest.mark.weights
def test_cli_report_schema(samples, tmp_path, capsys):
    require_model("rife-hdv3")
    report_path, out = tmp_path / "r.json", tmp_path / "out.mp4"
    code = main(["interp", str(samples / "asl-again.mkv"), "--skip", "2", "--max-frames", "3",
                 "--out", str(out), "--json", str(report_path), "--foreground", "motion"])
    assert code == 0
    report = json.loads(report_path.read_text())
    assert set(report["methods"]) == set(METHOD_NAMES)
    for scores in report["methods"].values():
        assert {"psnr", "ssim", "ms_per_frame"} <= set(scores)
        assert scores["frames"] == 1
    m = report["methods"]
    assert m["rife"]["psnr"] > m["blend"]["psnr"] > m["repeat"]["psnr"]
    assert report["input_fps"] == 15.0 and report["output_fps"] == 30.0
    import av

    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 3


def test_cli_errors_are_one_line(samples, tmp_path, capsys):
    assert main(["interp", str(tmp_path / "missing.mp4"), "--methods", "blend"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["interp", str(samples / "carphone.mp4"), "--methods", "blend",
                 "--max-frames", "2", "--skip", "3", "--json", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text())["ground_truth"] is False
    assert main(["interp", str(samples / "carphone.mp4"), "--skip", "1"]) == 2
