"""Face-mesh landmarks against MediaPipe's own runtime, on the shipped portraits at 1×, 2× and 4×.

The reference (``data/mediapipe_reference.json``) was made by the full MediaPipe 0.10.14 runtime in a
throw-away environment (``data/make_mediapipe_reference.py`` says how), not by the toolkit's code. Errors are
in percent of the reference's outer-canthal distance (vertices 33 and 263), so they mean the same at every
image size.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.imaging import facemesh
from toolkit.imaging.faces import FaceMeshBackend
from toolkit.imaging.synthetic import portrait

REFERENCE = json.loads((Path(__file__).parent / "data" / "mediapipe_reference.json").read_text(encoding="utf-8"))
CASES = [(name, up) for name in ("astronaut", "grace_hopper") for up in (1, 2, 4)]
#: outer eye corners in the 468-point topology (subject's right, left)
OUTER_CANTHI = (33, 263)


@pytest.fixture(scope="module")
def portraits() -> dict[str, np.ndarray]:
    return {name: portrait(name) for name in ("astronaut", "grace_hopper")}


def _case(portraits: dict[str, np.ndarray], name: str, up: int) -> tuple[np.ndarray, np.ndarray]:
    image = portraits[name]
    if up > 1:  # as the reference's generator did
        image = cv2.resize(image, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
    entry = REFERENCE["faces"][f"{name}@{up}x"]
    assert list(image.shape[:2]) == entry["shape"] and entry["n_faces"] == 1
    return image, np.asarray(entry["landmarks_px"], dtype=float)


def _errors_pct(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    canthal = np.linalg.norm(reference[OUTER_CANTHI[0]] - reference[OUTER_CANTHI[1]])
    return 100.0 * np.linalg.norm(points[:, :2] - reference, axis=1) / canthal


def test_reference_comes_from_mediapipe_itself() -> None:
    assert REFERENCE["generator"].startswith("mediapipe 0.10.14 solutions.face_mesh.FaceMesh(static_image_mode=True")
    assert sorted(REFERENCE["faces"]) == sorted(f"{n}@{u}x" for n, u in CASES)
    for entry in REFERENCE["faces"].values():
        assert len(entry["landmarks_px"]) == facemesh.MESH_POINTS


@pytest.mark.parametrize(("name", "up"), CASES)
def test_first_pass_reproduces_mediapipe(portraits: dict[str, np.ndarray], name: str, up: int) -> None:
    # MediaPipe's static-image graph: BlazeFace, then one crop from the detection through the mesh model
    image, reference = _case(portraits, name, up)
    detections = facemesh.detect_faces(image)
    assert len(detections) == 1
    mesh = facemesh.fit_mesh(image, detections[0], passes=1)
    err = _errors_pct(mesh.points, reference)
    assert err.mean() <= 0.1, f"mean {err.mean():.3f} % of the outer-canthal distance"
    assert mesh.presence > 0.9


@pytest.mark.parametrize(("name", "up"), CASES)
def test_default_two_pass_mesh_stays_close_to_mediapipe(portraits: dict[str, np.ndarray], name: str,
                                                         up: int) -> None:
    # the second pass re-centres the crop on the first pass's points (and averages large photos down), so it
    # differs from MediaPipe's single pass by what a steadier crop changes, not by a misplaced face
    image, reference = _case(portraits, name, up)
    faces = FaceMeshBackend().detect(image).faces
    assert len(faces) == 1 and faces[0].mesh is not None
    err = _errors_pct(faces[0].mesh, reference)
    assert err.mean() <= 2.5, f"mean {err.mean():.2f} %"
    assert np.percentile(err, 95) <= 4.0, f"95th percentile {np.percentile(err, 95):.2f} %"


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_averaged_down_crop_is_placed_where_the_plain_crop_is(portraits: dict[str, np.ndarray], name: str) -> None:
    # On a smoothly upscaled photo a plain bilinear crop barely aliases, so the averaged-down crop of the
    # later passes must give the same points: a misplaced reduced grid would shift all of them together.
    image = cv2.resize(portraits[name], None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)
    first = facemesh.fit_mesh(image, facemesh.detect_faces(image)[0], passes=1).points
    centre, side, angle = facemesh._roi_from_points(first)
    assert side > 4 * 192  # averaged down by 4 or more
    averaged = facemesh._mesh_pass(image, centre, side, angle, antialias=True).points
    plain = facemesh._mesh_pass(image, centre, side, angle, antialias=False).points
    canthal = np.linalg.norm(first[OUTER_CANTHI[0], :2] - first[OUTER_CANTHI[1], :2])
    shift = np.linalg.norm((averaged[:, :2] - plain[:, :2]).mean(axis=0))
    assert 100 * shift / canthal <= 0.25
