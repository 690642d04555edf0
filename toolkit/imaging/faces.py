"""Finding the face and its geometry: a 468-point face mesh by default, Haar cascades as a fallback.

The default :class:`FaceMeshBackend` runs MediaPipe's BlazeFace detector and FaceMesh model in OpenCV's dnn
(:mod:`toolkit.imaging.facemesh`; the model files ship in the mediapipe wheel, nothing is downloaded). Every
face it returns carries its ``mesh`` (468 × 3), from which the regions are placed
(:mod:`toolkit.imaging.regions`), the skin is found (:mod:`toolkit.imaging.skin`) and expression, eyes and
pose are checked (:mod:`toolkit.imaging.face_qc`). When BlazeFace finds no face, OpenCV's Haar cascades
(shipped in the 4.x wheels) look for one, and the mesh is fitted to what they find.

:class:`HaarCascadeBackend` alone gives only a face box and the eye centres (no mesh); faces without a mesh
cannot be measured and fail QC with that reason.

A lab with another landmark model plugs it in by writing a class with the same ``detect`` method (the
:class:`LandmarkBackend` protocol) returning faces with a 468-point ``mesh`` in the same vertex order.

Sides follow the clinical convention: ``left`` is the subject's left, which is the image's right in a
frontal, non-mirrored photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from toolkit.errors import ConfigurationError
from toolkit.imaging import mesh_topology as topo

__all__ = [
    "FaceGeometry",
    "FaceSearch",
    "LandmarkBackend",
    "HaarCascadeBackend",
    "FaceMeshBackend",
    "find_faces",
]

Point = tuple[float, float]


@dataclass(frozen=True)
class FaceGeometry:
    """One face in image pixel coordinates.

    Attributes
    ----------
    box : (x, y, w, h)
        Face box.
    eye_right, eye_left : (x, y)
        Centres of the subject's right eye (image left) and left eye (image right): the centroid of each
        eye's lid outline when there is a mesh.
    eyes_estimated : bool
        True when the eyes were not found and were placed from the face box proportions.
    mesh : (468, 3) ndarray or None
        Face-mesh vertices (x, y in pixels, z relative depth in pixels); None for a Haar-only face.
    presence : float
        The mesh model's face-presence probability (NaN without a mesh).
    """

    box: tuple[float, float, float, float]
    eye_right: Point
    eye_left: Point
    eyes_estimated: bool = False
    mesh: np.ndarray | None = field(default=None, compare=False)
    presence: float = float("nan")

    @classmethod
    def from_mesh(cls, points: np.ndarray, presence: float = float("nan")) -> FaceGeometry:
        """A face from its mesh: box from the vertices, eye centres from the lid outlines."""
        pts = np.asarray(points, dtype=np.float64)
        er = pts[list(topo.EYE_R), :2].mean(axis=0)
        el = pts[list(topo.EYE_L), :2].mean(axis=0)
        x0, y0 = pts[:, :2].min(axis=0)
        x1, y1 = pts[:, :2].max(axis=0)
        return cls(box=(float(x0), float(y0), float(x1 - x0), float(y1 - y0)), eye_right=(float(er[0]), float(er[1])),
                   eye_left=(float(el[0]), float(el[1])), mesh=pts, presence=float(presence))

    @property
    def landmarks(self) -> dict[str, Point]:
        """Named points of the mesh (:data:`toolkit.imaging.mesh_topology.NAMED`); empty without a mesh."""
        if self.mesh is None:
            return {}
        return {k: (float(self.mesh[i, 0]), float(self.mesh[i, 1])) for k, i in topo.NAMED.items()}

    @property
    def inter_ocular_px(self) -> float:
        """Distance between the eye centres in pixels."""
        return math.dist(self.eye_right, self.eye_left)

    @property
    def roll_deg(self) -> float:
        """Angle of the eye line against the image horizontal, degrees (clockwise positive)."""
        dx = self.eye_left[0] - self.eye_right[0]
        dy = self.eye_left[1] - self.eye_right[1]
        return math.degrees(math.atan2(dy, dx))

    @property
    def eye_midpoint(self) -> Point:
        """Midpoint between the eye centres."""
        return ((self.eye_right[0] + self.eye_left[0]) / 2, (self.eye_right[1] + self.eye_left[1]) / 2)

    @property
    def yaw_index(self) -> float:
        """Horizontal offset of the nose from the middle of the face, in face widths (≈0 frontal).

        With a mesh: the nose tip against the midpoint of the two cheek contour points, along the eye
        line; without one, the eye midpoint against the face-box centre.
        """
        if self.mesh is not None:
            axis = np.subtract(self.eye_left, self.eye_right)
            axis = axis / max(float(np.linalg.norm(axis)), 1e-9)
            m = self.mesh[:, :2]
            r, l_, tip = m[topo.NAMED["cheek_r"]], m[topo.NAMED["cheek_l"]], m[topo.NAMED["nose_tip"]]
            width = float((l_ - r) @ axis)
            return float((tip - (r + l_) / 2) @ axis) / max(width, 1e-9)
        x, _, w, _ = self.box
        return (self.eye_midpoint[0] - (x + w / 2)) / w

    def transformed(self, matrix: np.ndarray) -> FaceGeometry:
        """Map every point through a 2×3 affine ``matrix`` (box mapped by its corners)."""
        m = np.asarray(matrix, dtype=float)

        def tp(p: Point) -> Point:
            return (m[0, 0] * p[0] + m[0, 1] * p[1] + m[0, 2], m[1, 0] * p[0] + m[1, 1] * p[1] + m[1, 2])

        x, y, w, h = self.box
        corners = np.array([tp((x, y)), tp((x + w, y)), tp((x, y + h)), tp((x + w, y + h))])
        x0, y0 = corners.min(axis=0)
        x1, y1 = corners.max(axis=0)
        mesh = None
        if self.mesh is not None:
            mesh = self.mesh.copy()
            mesh[:, :2] = self.mesh[:, :2] @ m[:, :2].T + m[:, 2]
            mesh[:, 2] = self.mesh[:, 2] * math.sqrt(abs(np.linalg.det(m[:, :2])))
        return replace(
            self,
            box=(float(x0), float(y0), float(x1 - x0), float(y1 - y0)),
            eye_right=tp(self.eye_right),
            eye_left=tp(self.eye_left),
            mesh=mesh,
        )


@dataclass(frozen=True)
class FaceSearch:
    """What a backend found in one image.

    Attributes
    ----------
    faces : list of FaceGeometry
        The faces the backend stands behind (zero, one, or more for a photo with several people).
    profile_seen : bool
        A profile view was found where no frontal face was.
    ignored_detections : int
        Raw detections set aside as unconfirmed (much smaller than, overlapping, or far weaker than the main
        face, or without eyes where the main face has them); recorded as a QC note, never a failure.
    """

    faces: list[FaceGeometry]
    profile_seen: bool = False
    ignored_detections: int = 0


@runtime_checkable
class LandmarkBackend(Protocol):
    """The interface a face/landmark model implements to be used by the toolkit.

    ``detect`` takes an RGB ``uint8`` image and returns a :class:`FaceSearch`. A backend must be picklable
    (load heavy models lazily inside ``detect``) so batches can ship it to worker processes.
    """

    #: short name recorded with the results (e.g. ``"haar"``, ``"mediapipe"``)
    name: str

    def detect(self, image: np.ndarray) -> FaceSearch:
        """Find faces in an (M, N, 3) RGB ``uint8`` image."""
        ...


@lru_cache(maxsize=8)
def _cascade(filename: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / filename
    clf = cv2.CascadeClassifier(str(path))
    if clf.empty():
        raise ConfigurationError(
            f"OpenCV Haar cascade {path} could not be loaded; install opencv-python-headless 4.x "
            "(5.x wheels no longer ship the cascades)"
        )
    return clf


def _estimated_eyes(box: tuple[float, float, float, float]) -> tuple[Point, Point]:
    # average proportions of a frontal Haar face box: eyes at 30 % / 70 % width, 38 % height
    x, y, w, h = box
    return (x + 0.30 * w, y + 0.38 * h), (x + 0.70 * w, y + 0.38 * h)


#: a second detection is a second subject only if it is at least this large (box width) relative to the main face
_MIN_RELATIVE_SIZE = 0.5
#: ... and carries at least this fraction of the main face's cascade votes (neighbouring hits)
_MIN_RELATIVE_VOTES = 0.4
#: ... and overlaps the main face by less than this fraction of the smaller box
_MAX_OVERLAP = 0.3


def _overlap_fraction(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / max(1e-9, min(aw * ah, bw * bh))


def _confirmed_faces(candidates: list[tuple[FaceGeometry, float]]) -> list[FaceGeometry]:
    """Keep the detections that are plausibly separate people.

    Haar cascades fire on texture (a patterned suit, a flag, hair) now and then, and which frame they fire
    on changes with noise and JPEG blocking, so a raw count would reject good frontal photos at random. The
    main face is the one with eyes confirmed and the most cascade votes; another detection counts only when
    it is about as large, about as well supported, does not overlap the main face and, when the main face's
    eyes were found, has its own eyes too. Two real people pass all four (see the ``multiple_faces`` QC
    test); a texture hit fails at least one.
    """
    if len(candidates) <= 1:
        return [f for f, _ in candidates]
    ranked = sorted(candidates, key=lambda c: (not c[0].eyes_estimated, c[1], c[0].box[2]), reverse=True)
    main, main_votes = ranked[0]
    kept = [main]
    for face, votes in ranked[1:]:
        if face.box[2] < _MIN_RELATIVE_SIZE * main.box[2]:
            continue
        if votes < _MIN_RELATIVE_VOTES * main_votes:
            continue
        if not main.eyes_estimated and face.eyes_estimated:
            continue
        if any(_overlap_fraction(face.box, k.box) > _MAX_OVERLAP for k in kept):
            continue
        kept.append(face)
    # keep image order (left to right) for reproducible reports
    return sorted(kept, key=lambda f: f.box[0])


class HaarCascadeBackend:
    """Offline default: OpenCV Haar cascades for the frontal face, eyes and profile views.

    Parameters
    ----------
    detect_long_side_px : int
        Faces are searched on a copy downscaled to this long side (speed; faces are large in clinical
        photos).
    min_face_fraction : float
        Smallest face box accepted, as a fraction of the image's short side.
    """

    name = "haar"

    def __init__(self, *, detect_long_side_px: int = 480, min_face_fraction: float = 0.12) -> None:
        self.detect_long_side_px = int(detect_long_side_px)
        self.min_face_fraction = float(min_face_fraction)

    def __repr__(self) -> str:
        return f"HaarCascadeBackend(detect_long_side_px={self.detect_long_side_px})"

    def detect(self, image: np.ndarray) -> FaceSearch:
        """Find frontal faces and their eyes; report a profile view when only a profile is found."""
        gray_full = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, self.detect_long_side_px / max(gray_full.shape))
        small = (
            cv2.resize(gray_full, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            if scale < 1.0
            else gray_full
        )
        small = cv2.equalizeHist(small)
        min_side = max(24, int(self.min_face_fraction * min(small.shape)))
        boxes, neighbours = _cascade("haarcascade_frontalface_default.xml").detectMultiScale2(
            small, scaleFactor=1.15, minNeighbors=5, minSize=(min_side, min_side)
        )
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        neighbours = np.asarray(neighbours, dtype=float).reshape(-1)
        candidates = [
            (self._with_eyes(gray_full, tuple(float(v) / scale for v in bx)), float(nb))
            for bx, nb in zip(boxes, neighbours, strict=True)
        ]
        faces = _confirmed_faces(candidates)
        ignored = len(candidates) - len(faces)
        profile = False
        if not faces:
            prof = _cascade("haarcascade_profileface.xml")
            for img in (small, np.ascontiguousarray(small[:, ::-1])):
                hits = prof.detectMultiScale(img, scaleFactor=1.1, minNeighbors=4, minSize=(min_side, min_side))
                if len(hits):
                    profile = True
                    break
        return FaceSearch(faces=faces, profile_seen=profile, ignored_detections=ignored)

    def _with_eyes(self, gray: np.ndarray, box: tuple[float, float, float, float]) -> FaceGeometry:
        x, y, w, h = box
        # eyes sit in the upper ~60 % of the box; search at a fixed face width so thresholds are stable
        x0, y0 = int(max(0, x)), int(max(0, y + 0.15 * h))
        x1, y1 = int(min(gray.shape[1], x + w)), int(min(gray.shape[0], y + 0.60 * h))
        roi = gray[y0:y1, x0:x1]
        k = 240.0 / max(1.0, w)
        roi = cv2.resize(roi, None, fx=k, fy=k, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        pair = None
        for name in ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml"):
            hits = _cascade(name).detectMultiScale(roi, scaleFactor=1.1, minNeighbors=3, minSize=(20, 20))
            pair = self._best_pair(np.asarray(hits).reshape(-1, 4), roi.shape[1])
            if pair is not None:
                break
        if pair is None:
            er, el = _estimated_eyes(box)
            return FaceGeometry(box=box, eye_right=er, eye_left=el, eyes_estimated=True)
        (ax, ay), (bx_, by_) = pair
        er = (x0 + ax / k, y0 + ay / k)
        el = (x0 + bx_ / k, y0 + by_ / k)
        return FaceGeometry(box=box, eye_right=er, eye_left=el, eyes_estimated=False)

    @staticmethod
    def _best_pair(hits: np.ndarray, roi_w: int) -> tuple[Point, Point] | None:
        centres = [(hx + hw / 2, hy + hh / 2, hw) for hx, hy, hw, hh in hits]
        best, best_cost = None, math.inf
        for i, a in enumerate(centres):
            for b in centres[i + 1 :]:
                left, right = (a, b) if a[0] < b[0] else (b, a)
                sep = right[0] - left[0]
                # one eye in each half, separated by 25–65 % of the face width, nearly level, similar size
                if not (left[0] < roi_w / 2 < right[0] and 0.25 * roi_w < sep < 0.65 * roi_w):
                    continue
                tilt = abs(right[1] - left[1]) / sep
                if tilt > 0.3:
                    continue
                cost = tilt + abs(left[2] - right[2]) / max(left[2], right[2]) + abs(sep / roi_w - 0.42)
                if cost < best_cost:
                    best, best_cost = ((left[0], left[1]), (right[0], right[1])), cost
        return best


class FaceMeshBackend:
    """Default: BlazeFace detection and the 468-point face mesh in OpenCV's dnn, Haar cascades as fallback.

    Parameters
    ----------
    passes : int
        Mesh passes per face (the second re-centres the crop on the first pass's points; steadier).
    min_presence : float
        Faces whose mesh crop the model does not recognise as a face (presence below this) are dropped.
    """

    name = "facemesh"

    def __init__(self, *, passes: int = 2, min_presence: float = 0.5) -> None:
        self.passes = int(passes)
        self.min_presence = float(min_presence)

    def __repr__(self) -> str:
        return f"FaceMeshBackend(passes={self.passes})"

    def detect(self, image: np.ndarray) -> FaceSearch:
        """Find faces, fit the mesh to each, and keep the faces the mesh model confirms."""
        from toolkit.imaging import facemesh

        detections = facemesh.detect_faces(image)
        haar_search = None
        if not detections:
            # BlazeFace (short range) misses faces that fill little of a wide frame: look again in
            # overlapping tiles, then ask the cascades
            detections = _tiled_detections(image)
        if not detections:
            haar_search = HaarCascadeBackend(min_face_fraction=0.05).detect(image)
            detections = [_detection_from_haar(f) for f in haar_search.faces]
        faces, dropped = [], 0
        for det in detections:
            fit = facemesh.fit_mesh(image, det, passes=self.passes)
            if fit.presence < self.min_presence:
                dropped += 1
                continue
            face = FaceGeometry.from_mesh(fit.points, fit.presence)
            if any(_overlap_fraction(face.box, f.box) > _MAX_OVERLAP for f in faces):
                dropped += 1  # the same face found twice
                continue
            faces.append(face)
        faces.sort(key=lambda f: f.box[0])
        profile = bool(haar_search.profile_seen) if haar_search is not None and not faces else False
        return FaceSearch(faces=faces, profile_seen=profile, ignored_detections=dropped)


def _tiled_detections(image: np.ndarray) -> list:
    """BlazeFace on overlapping tiles (a third and a half of the short side), mapped back to the image."""
    from toolkit.imaging import facemesh

    h, w = image.shape[:2]
    found = []
    for frac in (0.5, 0.33):
        side = max(64, int(min(h, w) * frac))
        step = side // 2
        for y in range(0, max(1, h - side) + step, step):
            for x in range(0, max(1, w - side) + step, step):
                y0, x0 = min(y, max(0, h - side)), min(x, max(0, w - side))
                for det in facemesh.detect_faces(image[y0:y0 + side, x0:x0 + side]):
                    bx, by, bw, bh = det.box
                    found.append(facemesh.Detection(box=(bx + x0, by + y0, bw, bh), score=det.score,
                                                    keypoints=det.keypoints + np.array([x0, y0])))
        if found:
            break
    # one face seen by several overlapping tiles: keep the best-scoring box of each
    found.sort(key=lambda d: -d.score)
    kept: list = []
    for det in found:
        if all(_overlap_fraction(det.box, k.box) < _MAX_OVERLAP for k in kept):
            kept.append(det)
    return kept


def _detection_from_haar(face: FaceGeometry):
    """A BlazeFace-like detection (box, eye keypoints) from a Haar face, for the mesh's first crop."""
    from toolkit.imaging.facemesh import Detection

    x, y, w, h = face.box
    kp = np.zeros((6, 2))
    kp[0], kp[1] = face.eye_right, face.eye_left
    kp[2:] = (x + w / 2, y + 0.6 * h)
    # Haar boxes are tighter than BlazeFace's around the eyes and mouth: grow to the same proportions
    return Detection(box=(x - 0.05 * w, y + 0.05 * h, 1.1 * w, 1.1 * w), score=0.5, keypoints=kp)


def find_faces(image: np.ndarray, backend: LandmarkBackend | None = None) -> FaceSearch:
    """Find faces in an RGB ``uint8`` image with ``backend`` (default :class:`FaceMeshBackend`)."""
    return (backend or FaceMeshBackend()).detect(image)
