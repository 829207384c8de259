"""Shared fixtures: sample paths, the optional ../shared data, and a private HOME.

mediapipe and onnxruntime write caches into $HOME on import, so the whole session
gets a temporary HOME and MPLCONFIGDIR; the model cache keeps pointing at the real
one (SEMSTREAM_HOME) so fetched weights are found.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SHARED = ROOT.parent / "shared"

_tmp_home = tempfile.mkdtemp(prefix="semstream-test-home-")
if "SEMSTREAM_HOME" not in os.environ:
    from jscc import zoo

    os.environ["SEMSTREAM_HOME"] = str(zoo.home())
os.environ["HOME"] = _tmp_home
os.environ["MPLCONFIGDIR"] = os.path.join(_tmp_home, "mpl")


@pytest.fixture(scope="session")
def samples() -> Path:
    """The project's own sample folder (always present)."""
    return SAMPLES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip the test where it does not exist (a user's machine)."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip("needs ../shared/data (the larger training data), absent here")
    return path


def require_model(name: str) -> Path:
    """Path of a fetched model file, or skip with the command that fetches it."""
    from jscc import zoo

    try:
        return zoo.require(name)
    except zoo.ModelFileError as exc:
        pytest.skip(str(exc))
