"""Training images from a folder or a zip of images, served as random crops with flips.

Images are decoded once into RGB uint8 arrays. When every image has the same size (the
CIFAR-10 case) the decoded stack is cached as one ``.npy`` file keyed by the source path,
size and modification time, so later runs skip the decoding.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _decode(data: bytes, name: str) -> np.ndarray:
    """Encoded image bytes -> H x W x 3 uint8 RGB."""
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot decode image {name}: not a readable image file")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _sources(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every image in a folder (recursive) or a zip, sorted by name."""
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                yield str(p), p.read_bytes()
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for name in sorted(zf.namelist()):
                if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    yield name, zf.read(name)
    elif path.exists():
        raise ValueError(f"{path} is neither a folder nor a zip of images")
    else:
        raise FileNotFoundError(f"training data {path} does not exist: give a folder or a zip")


def _cache_file(path: Path, cache_dir: Path) -> Path:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return cache_dir / f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npy"


def load_images(
    path: str | Path, cache_dir: str | Path | None = None
) -> list[np.ndarray] | np.ndarray:
    """All images under ``path`` (folder or zip) as RGB uint8.

    Returns an N x H x W x 3 array when every image has the same size (cached under
    ``cache_dir`` when given), else a list of H x W x 3 arrays. Raises ValueError when
    there is no image.
    """
    path = Path(path)
    cache = _cache_file(path, Path(cache_dir)) if cache_dir and path.is_file() else None
    if cache is not None and cache.exists():
        return np.load(cache)
    images = [_decode(data, name) for name, data in _sources(path)]
    if not images:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {path}")
    if len({im.shape for im in images}) > 1:
        return images
    stack = np.stack(images)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, stack)
        os.replace(tmp, cache)
    return stack


class CropSampler:
    """Random crop x flip batches from decoded images.

    images: N x H x W x 3 uint8 array or list of H x W x 3 arrays, each at least
    ``crop`` pixels on both sides. ``batches(batch_size, rng)`` yields one epoch of
    (B, 3, crop, crop) float32 arrays in [0, 1]; an epoch visits each image once.
    """

    def __init__(self, images: np.ndarray | list[np.ndarray], crop: int):
        small = [im.shape[:2] for im in images if min(im.shape[:2]) < crop]
        if small:
            raise ValueError(f"{len(small)} images are smaller than the crop size {crop} "
                             f"(e.g. {small[0]}): lower --crop")
        self.images = images
        self.crop = crop

    def __len__(self) -> int:
        return len(self.images)

    def _crop(self, im: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = im.shape[:2]
        y = int(rng.integers(0, h - self.crop + 1))
        x = int(rng.integers(0, w - self.crop + 1))
        return im[y : y + self.crop, x : x + self.crop]

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        order = rng.permutation(len(self.images))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            batch = np.stack([self._crop(self.images[i], rng) for i in idx])
            flip = rng.random(len(idx)) < 0.5
            batch[flip] = batch[flip, :, ::-1]
            yield batch.transpose(0, 3, 1, 2).astype(np.float32) / 255.0

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches in one epoch (the last partial batch is dropped)."""
        return len(self.images) // batch_size


class PhotoCropSampler:
    """Batches of video-like crops from large photos, at a fixed pixel budget per batch.

    Each batch draws one crop side s from ``sides`` and one zoom per crop in ``zoom``
    (a crop covers s / zoom pixels of the photo and is resized to s x s, so zoom < 1
    shows more of the scene, like a person crop from a distant camera), plus flips.
    The batch holds max(1, pixels // s^2) crops of (3, s, s) float32 in [0, 1], so its
    cost matches a batch of small images with the same pixel count.
    """

    def __init__(self, images: list[np.ndarray], pixels: int,
                 sides: tuple[int, ...] = (96, 128, 160, 192, 256),
                 zoom: tuple[float, float] = (0.35, 1.0)):
        if not images:
            raise ValueError("PhotoCropSampler needs at least one photo")
        small = [im.shape[:2] for im in images if min(im.shape[:2]) < max(sides)]
        if small:
            raise ValueError(f"{len(small)} photos are smaller than the largest crop side "
                             f"{max(sides)} (e.g. {small[0]})")
        self.images, self.pixels, self.sides, self.zoom = images, pixels, sides, zoom

    def _crop(self, im: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
        import cv2

        h, w = im.shape[:2]
        zoom = float(rng.uniform(*self.zoom))
        span = min(h, w, max(side, round(side / zoom)))
        y = int(rng.integers(0, h - span + 1))
        x = int(rng.integers(0, w - span + 1))
        crop = im[y:y + span, x:x + span]
        if span != side:
            crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        return crop

    def patches(self, n: int, side: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` crops of side ``side`` (random photo, zoom and flip): (n, 3, side, side)
        float32 in [0, 1]."""
        idx = rng.integers(0, len(self.images), n)
        batch = np.stack([self._crop(self.images[i], side, rng) for i in idx])
        flip = rng.random(n) < 0.5
        batch[flip] = batch[flip, :, ::-1]
        return batch.transpose(0, 3, 1, 2).astype(np.float32) / 255.0

    def batch(self, rng: np.random.Generator) -> np.ndarray:
        """One (N, 3, s, s) float32 batch at a side s drawn from ``sides``."""
        side = int(rng.choice(self.sides))
        return self.patches(max(1, self.pixels // (side * side)), side, rng)


class MixedSampler:
    """One epoch = one pass over the small images (``CropSampler``); with probability
    ``photo_share`` a step serves a ``PhotoCropSampler`` batch of the same pixel count
    instead. With ``patches`` (a ``PhotoCropSampler`` whose side is the small crop's), a
    share ``patch_share`` of every small-image batch is replaced by photo patches of the
    same size, so both kinds meet in one batch (and in its BatchNorm statistics).
    Yields (B, 3, s, s) float32 batches in [0, 1]."""

    def __init__(self, small: CropSampler, photos: PhotoCropSampler | None,
                 photo_share: float, patches: PhotoCropSampler | None = None,
                 patch_share: float = 0.0):
        if not 0 <= photo_share < 1:
            raise ValueError(f"photo share must be in [0, 1), got {photo_share}")
        if not 0 <= patch_share < 1:
            raise ValueError(f"photo patch share must be in [0, 1), got {patch_share}")
        self.small, self.photos, self.patches = small, photos, patches
        self.photo_share = photo_share if photos is not None else 0.0
        self.patch_share = patch_share if patches is not None else 0.0

    def __len__(self) -> int:
        return len(self.small)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Steps in one epoch: full small-image batches, plus the photo steps mixed in."""
        return round(self.small.steps_per_epoch(batch_size) / (1 - self.photo_share))

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        small = self.small.batches(batch_size, rng)
        while True:
            if self.photo_share and rng.random() < self.photo_share:
                yield self.photos.batch(rng)
                continue
            try:
                batch = next(small)
            except StopIteration:
                small = self.small.batches(batch_size, rng)
                batch = next(small)
            k = round(self.patch_share * len(batch))
            if k:
                batch[-k:] = self.patches.patches(k, batch.shape[-1], rng)
            yield batch
