"""Background library (paper II.B): a folder of background images plus an ORB index.

The index (``library.npz`` in the folder) holds every image's ORB descriptors, computed
once; matching a frame computes the frame's descriptors with its foreground masked out
and counts N_k, the pairs under the Hamming threshold T, against each background k.
The best B* = argmax N_k is a match only when N_k >= N_min.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dynbg.image import to_rgb
from dynbg.orb import OrbConfig, OrbDescriber, count_matches

INDEX_NAME = "library.npz"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class LibraryError(ValueError):
    """A library folder is missing, empty, holds an unreadable image or a stale index."""


@dataclass(frozen=True)
class LibraryConfig:
    """ORB options (nfeatures, T) and N_min, the fewest matched pairs that count as a match."""

    orb: OrbConfig = field(default_factory=OrbConfig)
    min_matches: int = 15


@dataclass(frozen=True)
class MatchResult:
    """Best background (path, or None when N_k < N_min) with its N_k, and the runner-up."""

    path: Path | None
    matches: int
    best: Path
    runner_up: Path | None
    runner_up_matches: int

    def to_json(self) -> dict:
        """{"match": path|null, "matches": N_k, "best": path, "runner_up": path|null, ...}."""
        return {"match": None if self.path is None else str(self.path), "matches": self.matches,
                "best": str(self.best),
                "runner_up": None if self.runner_up is None else str(self.runner_up),
                "runner_up_matches": self.runner_up_matches}


def read_image(path: Path) -> np.ndarray:
    """An image file as H x W x 3 uint8 RGB; LibraryError naming the file if unreadable."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise LibraryError(f"cannot read image {path}: remove it or replace it with a "
                           "valid PNG/JPEG")
    if data.ndim == 3:
        data = cv2.cvtColor(data, cv2.COLOR_BGRA2RGBA if data.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    if data.dtype != np.uint8:
        data = (data / 257).astype(np.uint8) if data.dtype == np.uint16 else data.astype(np.uint8)
    return to_rgb(data)


def image_files(folder: Path) -> list[Path]:
    """Background image files in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def write_image(path: Path, image: np.ndarray) -> None:
    """Write an H x W x 3 uint8 RGB image (format from the suffix); OSError on failure."""
    if not cv2.imwrite(str(path), cv2.cvtColor(to_rgb(image), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write image {path}: check the folder and the file suffix")


class BackgroundLibrary:
    """Background images of one folder with their ORB descriptors."""

    def __init__(self, folder: Path, names: list[str], descriptors: list[np.ndarray],
                 config: LibraryConfig = LibraryConfig()) -> None:
        if not names:
            raise LibraryError(f"library {folder} has no background images: add PNG/JPEG files")
        self.folder = Path(folder)
        self.names = list(names)
        self.descriptors = list(descriptors)
        self.config = config
        self._orb = OrbDescriber(config.orb)

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def build(cls, folder: str | Path, config: LibraryConfig = LibraryConfig()
              ) -> BackgroundLibrary:
        """Describe every image in ``folder`` (nothing is written; see ``save``)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise LibraryError(f"library folder {folder} does not exist")
        files = image_files(folder)
        orb = OrbDescriber(config.orb)
        return cls(folder, [p.name for p in files],
                   [orb.describe(read_image(p)) for p in files], config)

    @classmethod
    def load(cls, folder: str | Path) -> BackgroundLibrary:
        """Read the index saved in ``folder``; LibraryError if absent, corrupt or stale."""
        folder = Path(folder)
        index = folder / INDEX_NAME
        if not index.is_file():
            raise LibraryError(f"{folder} has no {INDEX_NAME}: build the library first")
        try:
            with np.load(index, allow_pickle=False) as data:
                names = [str(n) for n in data["names"]]
                offsets = data["offsets"]
                flat = data["descriptors"]
                meta = json.loads(str(data["config"]))
        except (OSError, ValueError, KeyError) as exc:
            raise LibraryError(f"index {index} is unreadable ({exc}): rebuild the library"
                               ) from None
        on_disk = [p.name for p in image_files(folder)]
        if sorted(on_disk) != sorted(names):
            raise LibraryError(f"index {index} does not list the images in {folder}: "
                               "rebuild the library")
        config = LibraryConfig(OrbConfig(**meta["orb"]), meta["min_matches"])
        desc = [flat[offsets[i]:offsets[i + 1]] for i in range(len(names))]
        return cls(folder, names, desc, config)

    @classmethod
    def open(cls, folder: str | Path, config: LibraryConfig = LibraryConfig()
             ) -> BackgroundLibrary:
        """The saved index if it is current, else describe the folder's images now."""
        try:
            return cls.load(folder)
        except LibraryError:
            return cls.build(folder, config)

    def save(self) -> Path:
        """Write the index into the library folder atomically; returns its path."""
        offsets = np.cumsum([0] + [len(d) for d in self.descriptors])
        flat = (np.concatenate(self.descriptors) if offsets[-1]
                else np.zeros((0, 32), np.uint8))
        meta = json.dumps({"orb": asdict(self.config.orb), "min_matches": self.config.min_matches})
        target = self.folder / INDEX_NAME
        fd, tmp = tempfile.mkstemp(prefix=".library-", suffix=".npz", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, names=np.array(self.names), offsets=offsets, descriptors=flat,
                         config=np.array(meta))
            os.chmod(tmp, 0o644)  # mkstemp makes it private
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def path(self, i: int) -> Path:
        """Path of background ``i``."""
        return self.folder / self.names[i]

    def counts(self, frame: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """N_k for every background k (int array, library order) for ``frame`` (H x W (x C)
        uint8) with ``exclude`` (H x W, >0 = foreground) masked out."""
        desc = self._orb.describe(frame, exclude)
        t = self.config.orb.hamming_threshold
        return np.array([count_matches(desc, d, t) for d in self.descriptors], dtype=np.int64)

    def match(self, frame: np.ndarray, exclude: np.ndarray | None = None) -> MatchResult:
        """Best background for ``frame`` (foreground ``exclude`` masked out), with runner-up."""
        n = self.counts(frame, exclude)
        order = np.argsort(-n, kind="stable")
        best = int(order[0])
        second = int(order[1]) if len(order) > 1 else None
        ok = n[best] >= self.config.min_matches
        return MatchResult(self.path(best) if ok else None, int(n[best]), self.path(best),
                           None if second is None else self.path(second),
                           0 if second is None else int(n[second]))
