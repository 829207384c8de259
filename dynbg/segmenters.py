"""Foreground segmenters behind one interface.

Every segmenter maps a frame (H x W, H x W x 1, x 3 or x 4 uint8; see ``image.to_rgb``)
to a soft foreground mask: H x W float32 in [0, 1], 1 = foreground (person/object).
A frame without a person gives an all-zero (or near-zero) mask, not an error.

- ``selfie``: Mediapipe selfie segmentation (model inside the mediapipe wheel).
- ``rembg:<model>``: a rembg session, kept for the segmenter's lifetime; ``u2netp`` is read
  from the model zoo (``jscc.zoo.require("u2netp")``), other names are left to rembg.
- ``pose-hull``: Mediapipe pose landmarks -> convex hull H, filled with 1 (the paper's
  background mask M is ``1 - mask``: 0 inside the hull).
- ``motion`` (``motion:knn``): background subtraction for anything that moves
  (``dynbg.motion``; stateful: frames in order).
- ``auto``: selfie masks where people are, motion regions elsewhere (``dynbg.motion``).
- ``a+b``: the per-pixel maximum of several segmenters, e.g. ``selfie+pose-hull`` (selfie
  misses feet and far-away limbs that the pose hull covers; offline use, pose is slow) or
  ``selfie+motion``.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass

import cv2
import numpy as np

from dynbg.image import to_rgb

SEGMENTER_NAMES = ("selfie", "motion", "motion:knn", "auto", "rembg:<model>", "pose-hull",
                   "<name>+<name>")
# rembg sessions whose network output is already a per-pixel probability (sigmoid).
_PROBABILITY_OUTPUT = {"u2net", "u2netp", "u2net_human_seg", "silueta"}


class SegmenterError(ValueError):
    """A segmenter name is unknown or its model cannot be loaded (one line)."""


def binary_mask(soft: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Binary foreground mask (H x W bool) of a soft mask (H x W float in [0, 1])."""
    return np.asarray(soft) >= threshold


class ForegroundSegmenter(ABC):
    """A foreground segmenter; use ``mask`` per frame and ``close`` (or ``with``) at the end."""

    name: str

    def mask(self, frame: np.ndarray) -> np.ndarray:
        """Soft foreground mask of ``frame``: H x W float32 in [0, 1] (1 = foreground)."""
        rgb = to_rgb(frame)
        out = self._predict(rgb)
        return np.clip(out, 0.0, 1.0, out=out)

    def binary(self, frame: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Binary foreground mask of ``frame``: H x W bool, ``mask(frame) >= threshold``."""
        return binary_mask(self.mask(frame), threshold)

    @abstractmethod
    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        """Soft mask (H x W float32) of an H x W x 3 uint8 RGB frame."""

    @abstractmethod
    def close(self) -> None:
        """Release the model (idempotent)."""

    def reset(self) -> None:  # noqa: B027 - stateless segmenters have nothing to forget
        """Forget what earlier frames taught a stateful segmenter (motion); others: nothing."""

    def __enter__(self) -> ForegroundSegmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SelfieSegmenter(ForegroundSegmenter):
    """Mediapipe selfie segmentation; ``landscape`` picks the faster 144x256 model."""

    def __init__(self, landscape: bool = True) -> None:
        import mediapipe as mp

        self.name = "selfie"
        self._model = mp.solutions.selfie_segmentation.SelfieSegmentation(
            model_selection=1 if landscape else 0)

    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        result = self._model.process(rgb)
        return np.array(result.segmentation_mask, dtype=np.float32, copy=True)

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None


@dataclass(frozen=True)
class PoseHullConfig:
    """Pose-hull options.

    visibility: landmarks below this visibility are left out of the hull.
    grow: the hull is dilated by this fraction of its larger side (landmarks are joints,
    the body reaches past them). static: treat every frame as a still image (no tracking).
    """

    visibility: float = 0.5
    grow: float = 0.12
    static: bool = False


class PoseHullSegmenter(ForegroundSegmenter):
    """Mediapipe pose (model_complexity=1, the one that works offline) -> filled convex hull."""

    def __init__(self, config: PoseHullConfig = PoseHullConfig()) -> None:
        import mediapipe as mp

        self.name = "pose-hull"
        self.config = config
        self._model = mp.solutions.pose.Pose(static_image_mode=config.static,
                                             model_complexity=1, enable_segmentation=False)

    def hull(self, frame: np.ndarray) -> np.ndarray | None:
        """Convex hull of the visible landmarks, K x 2 int32 pixel (x, y), or None if no pose."""
        rgb = to_rgb(frame)
        result = self._model.process(rgb)
        if result.pose_landmarks is None:
            return None
        h, w = rgb.shape[:2]
        pts = np.array([(lm.x * w, lm.y * h) for lm in result.pose_landmarks.landmark
                        if lm.visibility >= self.config.visibility], dtype=np.float32)
        if len(pts) < 3:
            return None
        return cv2.convexHull(np.round(pts).astype(np.int32)).reshape(-1, 2)

    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        out = np.zeros(rgb.shape[:2], np.float32)
        hull = self.hull(rgb)
        if hull is None:
            return out
        cv2.fillConvexPoly(out, hull, 1.0)
        side = max(np.ptp(hull[:, 0]), np.ptp(hull[:, 1]))
        r = int(round(self.config.grow * side))
        if r > 0:
            out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
        return out

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None


@contextlib.contextmanager
def _u2net_home(path: str | None):
    """Point rembg at ``path`` for model files while a session is created."""
    if path is None:
        yield
        return
    old = os.environ.get("U2NET_HOME")
    os.environ["U2NET_HOME"] = path
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("U2NET_HOME", None)
        else:
            os.environ["U2NET_HOME"] = old


class RembgSegmenter(ForegroundSegmenter):
    """A rembg session (one per segmenter, reused for every frame); ``device`` (a
    ``--device`` value) picks onnxruntime's CUDA provider when it is installed, else CPU."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        from rembg import new_session

        from jscc import zoo
        from jscc.device import onnx_providers, resolve_device

        self.name = f"rembg:{model}"
        self.model = model
        home = str(zoo.require("u2netp").parent) if model == "u2netp" else None
        try:
            with _u2net_home(home):
                self._session = new_session(
                    model, providers=onnx_providers(str(resolve_device(device)))[0])
        except ValueError:
            raise SegmenterError(f"rembg has no model {model!r}: try rembg:u2netp") from None
        except Exception as exc:  # network or file errors from pooch/onnxruntime
            raise SegmenterError(
                f"cannot load rembg model {model!r} ({type(exc).__name__}): it is not on this "
                "machine and could not be downloaded; use rembg:u2netp") from None

    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        from PIL import Image

        h, w = rgb.shape[:2]
        image = Image.fromarray(rgb)
        if self.model in _PROBABILITY_OUTPUT:
            # Raw probabilities: rembg's predict() stretches each mask to [0, 1], which
            # would turn an empty scene into a "foreground".
            inputs = self._session.normalize(image, (0.485, 0.456, 0.406),
                                             (0.229, 0.224, 0.225), (320, 320))
            prob = self._session.inner_session.run(None, inputs)[0][0, 0]
            return cv2.resize(prob.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        soft = np.asarray(self._session.predict(image)[0], dtype=np.float32) / 255.0
        return cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR)

    def close(self) -> None:
        self._session = None


class UnionSegmenter(ForegroundSegmenter):
    """Per-pixel maximum of several segmenters' soft masks."""

    def __init__(self, parts: list[ForegroundSegmenter]) -> None:
        self.name = "+".join(p.name for p in parts)
        self.parts = parts

    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        out = self.parts[0].mask(rgb)
        for part in self.parts[1:]:
            np.maximum(out, part.mask(rgb), out=out)
        return out

    def reset(self) -> None:
        for part in self.parts:
            part.reset()

    def close(self) -> None:
        for part in self.parts:
            part.close()


def _make_one(name: str, device: str = "cpu") -> ForegroundSegmenter:
    if name == "selfie":
        return SelfieSegmenter()
    if name == "pose-hull":
        return PoseHullSegmenter()
    if name.startswith("motion"):
        from dynbg.motion import MotionConfig, MotionSegmenter, check_motion_name

        check_motion_name(name)
        return MotionSegmenter(MotionConfig(method="knn" if name.endswith(":knn") else "mog2"))
    if name == "auto":
        from dynbg.motion import AutoSegmenter, MotionSegmenter

        return AutoSegmenter(SelfieSegmenter(), MotionSegmenter())
    if name.startswith("rembg:") and len(name) > len("rembg:"):
        return RembgSegmenter(name[len("rembg:"):], device)
    raise SegmenterError(f"unknown segmenter {name!r}: choose one of {', '.join(SEGMENTER_NAMES)}")


def make_segmenter(name: str, device: str = "cpu") -> ForegroundSegmenter:
    """Segmenter for ``name``: "selfie", "motion" ("motion:knn"), "auto", "rembg:<model>"
    (e.g. "rembg:u2netp"), "pose-hull", or several joined by "+" (their per-pixel maximum,
    e.g. "selfie+motion")."""
    names = name.split("+")
    if len(names) == 1:
        return _make_one(name, device)
    parts: list[ForegroundSegmenter] = []
    try:
        for n in names:
            parts.append(_make_one(n, device))
    except Exception:
        for p in parts:
            p.close()
        raise
    return UnionSegmenter(parts)
