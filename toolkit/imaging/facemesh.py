"""Dense facial landmarks offline: BlazeFace detection and the 468-point face mesh in OpenCV's dnn.

Both models are MediaPipe's (Apache-2.0) and ship inside the ``mediapipe==0.10.14`` wheel, which the
project installs *without its dependencies* (only the model files are used; the MediaPipe runtime is
never imported). OpenCV's own dnn module runs them (``cv2.dnn.readNetFromTFLite``):

- ``face_detection_short_range.tflite`` (BlazeFace): 128×128 input in [-1, 1], 896 anchor boxes with six
  keypoints each (eyes, nose tip, mouth centre, tragions). It finds the faces and their roll.
- ``face_landmark.tflite`` (FaceMesh): a 192×192 crop in [0, 1] around the face, rotated so the eyes are
  level; 468 points (x, y, z) in crop pixels and a face-presence logit. The crop comes from the detection
  first, then once more from the first pass's own points (a steadier, re-centred crop), as MediaPipe's own
  graph does from one video frame to the next.

Nothing is downloaded: when the wheel is missing the error says how to install it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np

from toolkit.errors import ConfigurationError
from toolkit.imaging.mesh_topology import MESH_POINTS

__all__ = [
    "MESH_POINTS",
    "Detection",
    "MeshResult",
    "model_path",
    "detect_faces",
    "fit_mesh",
]


_WHEEL = "mediapipe"
_WHEEL_VERSION = "0.10.14"
_MODELS = {
    "detector": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "mesh": "mediapipe/modules/face_landmark/face_landmark.tflite",
}

_DETECT_SIZE = 128
_MESH_SIZE = 192
#: MediaPipe's crop around a face: 1.5 × the box, square on its long side
_CROP_SCALE = 1.5
#: detections below this score are not faces (MediaPipe's own threshold)
_MIN_DETECTION_SCORE = 0.5
#: overlap above which two detections are the same face (weighted non-maximum suppression)
_NMS_IOU = 0.3
#: outer eye corners (subject's right, left): they set the roll of the second crop
_EYE_OUTER = (33, 263)


def model_path(kind: str) -> Path:
    """Path of a bundled model file (``"detector"`` or ``"mesh"``) inside the installed wheel.

    The wheel's Python package is never imported (its runtime needs other versions of OpenCV and
    protobuf); :mod:`importlib.metadata` locates the file without importing anything.

    Raises
    ------
    ConfigurationError
        The wheel is not installed, or it lacks the file.
    """
    rel = _MODELS[kind]
    try:
        dist = metadata.distribution(_WHEEL)
    except metadata.PackageNotFoundError as exc:
        raise ConfigurationError(
            f"the face-mesh model files come from the {_WHEEL}=={_WHEEL_VERSION} wheel, which is not installed; "
            f"install it without its dependencies: pip install --no-deps {_WHEEL}=={_WHEEL_VERSION} "
            "(make env does this)"
        ) from exc
    path = Path(str(dist.locate_file(rel)))
    if not path.is_file():
        raise ConfigurationError(
            f"{path} is missing: the installed {_WHEEL} {dist.version} does not ship the model files; "
            f"install {_WHEEL}=={_WHEEL_VERSION} without its dependencies (newer releases download them)"
        )
    return path


_LOCAL = threading.local()


def _net(kind: str) -> cv2.dnn.Net:
    """One network per model and thread (a cv2.dnn.Net is not safe to share between threads)."""
    nets = getattr(_LOCAL, "nets", None)
    if nets is None:
        nets = _LOCAL.nets = {}
    if kind not in nets:
        net = cv2.dnn.readNetFromTFLite(str(model_path(kind)))
        nets[kind] = (net, net.getUnconnectedOutLayersNames())
    return nets[kind]


@lru_cache(maxsize=1)
def _anchors() -> np.ndarray:
    """BlazeFace short-range anchor centres (896, 2) in [0, 1]: 16×16 cells × 2, then 8×8 cells × 6."""
    out = []
    for cells, per_cell in ((16, 2), (8, 6)):
        c = (np.arange(cells) + 0.5) / cells
        yy, xx = np.meshgrid(c, c, indexing="ij")
        centres = np.column_stack([xx.ravel(), yy.ravel()])
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.vstack(out)


@dataclass(frozen=True)
class Detection:
    """One BlazeFace detection in image pixels.

    Attributes
    ----------
    box : (x, y, w, h)
    score : float
        Face probability.
    keypoints : (6, 2) ndarray
        Subject's right eye, left eye, nose tip, mouth centre, right tragion, left tragion.
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray

    @property
    def roll_rad(self) -> float:
        """Angle of the eye line (right eye to left eye) against the image x axis."""
        (x0, y0), (x1, y1) = self.keypoints[0], self.keypoints[1]
        return math.atan2(y1 - y0, x1 - x0)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box ``a`` (x0, y0, x1, y1) against boxes ``b`` (K, 4)."""
    iw = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = iw * ih
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(area, 1e-12)


def detect_faces(image: np.ndarray, *, min_score: float = _MIN_DETECTION_SCORE) -> list[Detection]:
    """Faces in an RGB ``uint8`` image by BlazeFace (short range), strongest first.

    The image is letterboxed to a square (so faces keep their shape), scaled to 128×128, and the
    overlapping anchor hits of one face are merged by score-weighted averaging (MediaPipe's weighted
    non-maximum suppression).
    """
    h, w = image.shape[:2]
    side = max(h, w)
    pad_x, pad_y = (side - w) / 2, (side - h) / 2
    k = _DETECT_SIZE / side
    m = np.array([[k, 0, pad_x * k], [0, k, pad_y * k]], dtype=np.float64)
    square = cv2.warpAffine(image, m, (_DETECT_SIZE, _DETECT_SIZE), flags=cv2.INTER_AREA,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    blob = cv2.dnn.blobFromImage(square.astype(np.float32) / 127.5 - 1.0)
    net, names = _net("detector")
    net.setInput(blob)
    outs = dict(zip(names, net.forward(names), strict=True))
    scores_raw = outs["classificators"].reshape(-1)
    raw = outs["regressors"].reshape(-1, 16)
    scores = 1.0 / (1.0 + np.exp(-np.clip(scores_raw.astype(np.float64), -100.0, 100.0)))
    keep = np.flatnonzero(scores >= min_score)
    if keep.size == 0:
        return []
    anchors = _anchors()[keep]
    r = raw[keep] / _DETECT_SIZE
    centre = anchors + r[:, 0:2]
    size = r[:, 2:4]
    boxes = np.column_stack([centre - size / 2, centre + size / 2])  # normalised x0, y0, x1, y1
    kps = anchors[:, None, :] + r[:, 4:16].reshape(-1, 6, 2)
    sc = scores[keep]
    order = np.argsort(-sc)
    boxes, kps, sc = boxes[order], kps[order], sc[order]
    used = np.zeros(len(sc), dtype=bool)
    found: list[Detection] = []
    to_px = lambda pts: (pts * _DETECT_SIZE - np.array([pad_x * k, pad_y * k])) / k  # noqa: E731
    for i in range(len(sc)):
        if used[i]:
            continue
        group = (~used) & (_iou(boxes[i], boxes) >= _NMS_IOU)
        used |= group
        wts = sc[group][:, None]
        box = (boxes[group] * wts).sum(axis=0) / wts.sum()
        kp = (kps[group] * wts[:, :, None]).sum(axis=0) / wts.sum()
        (x0, y0), (x1, y1) = to_px(box[:2]), to_px(box[2:])
        found.append(Detection(box=(float(x0), float(y0), float(x1 - x0), float(y1 - y0)), score=float(sc[i]),
                               keypoints=to_px(kp)))
    return found


@dataclass(frozen=True)
class MeshResult:
    """A fitted face mesh.

    Attributes
    ----------
    points : (468, 3) float ndarray
        x, y in image pixels; z in image pixels too (relative depth, smaller is nearer the camera).
    presence : float
        The model's face-presence probability for its crop (low when the crop holds no face).
    """

    points: np.ndarray
    presence: float


def _crop_matrix(centre: np.ndarray, side: float, angle: float) -> np.ndarray:
    """2×3 affine from image pixels to a ``_MESH_SIZE`` crop of ``side`` pixels, rotated by ``angle``."""
    k = _MESH_SIZE / side
    c, s = math.cos(-angle) * k, math.sin(-angle) * k
    a = np.array([[c, -s], [s, c]])
    t = np.array([_MESH_SIZE / 2, _MESH_SIZE / 2]) - a @ centre
    return np.hstack([a, t[:, None]])


def _reduced_for_crop(image: np.ndarray, m: np.ndarray, centre: np.ndarray, side: float,
                      angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The part of ``image`` under a crop, averaged down for a bilinear warp; and the warp for it.

    A crop of a large photo is a strong reduction, which a bilinear warp would alias. The crop's bounding
    box is averaged down by the smallest power of two ``f`` that brings the crop to at most twice the
    model's size, by exact halvings (a bilinear resize to exactly half the size averages 2×2 blocks, the
    fastest way OpenCV has to do it). Reduced pixel (u, v) is the mean of image pixels
    ``x0 + f·u … x0 + f·u + f - 1``, centred on ``x0 + f·u + (f - 1) / 2``.

    Returns ``(image, m)`` unchanged when no reduction is needed.
    """
    factor = 1
    while side / factor > 2 * _MESH_SIZE:
        factor *= 2
    if factor == 1:
        return image, m
    hh, ww = image.shape[:2]
    half = side / 2 * (abs(math.cos(angle)) + abs(math.sin(angle))) + 2 * factor  # bounding box, with margin
    x0, y0 = max(0, math.floor(centre[0] - half)), max(0, math.floor(centre[1] - half))
    nx = (min(ww, math.ceil(centre[0] + half)) - x0) // factor
    ny = (min(hh, math.ceil(centre[1] + half)) - y0) // factor
    if nx < 1 or ny < 1:  # the crop lies outside the image: nothing to average
        return image, m
    sub = image[y0:y0 + ny * factor, x0:x0 + nx * factor]
    while sub.shape[0] > ny or sub.shape[1] > nx:
        sub = cv2.resize(sub, (sub.shape[1] // 2, sub.shape[0] // 2), interpolation=cv2.INTER_LINEAR)
    origin = np.array([x0 + (factor - 1) / 2, y0 + (factor - 1) / 2])
    return sub, np.hstack([m[:, :2] * factor, (m[:, :2] @ origin + m[:, 2])[:, None]])


def _mesh_pass(image: np.ndarray, centre: np.ndarray, side: float, angle: float, *,
               antialias: bool) -> MeshResult:
    """One run of the mesh model on the crop of ``side`` pixels around ``centre``, rotated by ``angle``.

    Without ``antialias`` the crop is a plain bilinear warp of the image, as MediaPipe's own graph makes
    it; with it, large crops are averaged down first (:func:`_reduced_for_crop`).
    """
    m = _crop_matrix(centre, side, angle)
    src, m_src = _reduced_for_crop(image, m, centre, side, angle) if antialias else (image, m)
    crop = cv2.warpAffine(src, m_src, (_MESH_SIZE, _MESH_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    net, names = _net("mesh")
    net.setInput(cv2.dnn.blobFromImage(crop, scalefactor=1.0 / 255.0))
    outs = [o.reshape(-1) for o in net.forward(names)]
    pts_raw = next(o for o in outs if o.size == MESH_POINTS * 3).reshape(MESH_POINTS, 3)
    logit = float(next(o for o in outs if o.size == 1)[0])
    inv = cv2.invertAffineTransform(m)
    xy = pts_raw[:, :2] @ inv[:, :2].T + inv[:, 2]
    z = pts_raw[:, 2] * (side / _MESH_SIZE)
    return MeshResult(points=np.column_stack([xy, z]), presence=1.0 / (1.0 + math.exp(-logit)))


def _roi_from_points(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Crop centre, side and roll from mesh points, as MediaPipe derives the next crop from landmarks."""
    p_r, p_l = points[_EYE_OUTER[0], :2], points[_EYE_OUTER[1], :2]
    angle = math.atan2(p_l[1] - p_r[1], p_l[0] - p_r[0])
    # box of the points in the face's own (rotated) frame
    c, s = math.cos(-angle), math.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    local = points[:, :2] @ rot.T
    lo, hi = local.min(axis=0), local.max(axis=0)
    centre = ((lo + hi) / 2) @ rot  # back to image frame (rot is orthonormal)
    side = float(max(hi - lo)) * _CROP_SCALE
    return centre, side, angle


def fit_mesh(image: np.ndarray, detection: Detection, *, passes: int = 2) -> MeshResult:
    """Fit the 468-point face mesh to one detected face.

    The first crop comes from the detection's box and eye keypoints and is made exactly as MediaPipe's
    graph makes it (a plain bilinear warp), so the first pass gives MediaPipe's landmarks. Each further
    pass re-centres the crop on the previous pass's points, from the photo averaged down to the crop's
    scale (no aliasing on large photos).
    """
    x, y, w, h = detection.box
    centre = np.array([x + w / 2, y + h / 2])
    side = max(w, h) * _CROP_SCALE
    result = _mesh_pass(image, centre, side, detection.roll_rad, antialias=False)
    for _ in range(passes - 1):
        centre, side, angle = _roi_from_points(result.points)
        result = _mesh_pass(image, centre, side, angle, antialias=True)
    return result
