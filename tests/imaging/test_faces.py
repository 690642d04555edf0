"""The face search: texture hits beside a real face are not a second subject; a second person still is."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.imaging import FaceMeshBackend, HaarCascadeBackend, analyze_photo
from toolkit.imaging.faces import FaceGeometry, _confirmed_faces
from toolkit.imaging.synthetic import portrait, simulate_visit


@pytest.fixture(scope="module")
def astronaut_1024() -> tuple[np.ndarray, FaceGeometry]:
    base = portrait("astronaut", long_side_px=1024)
    faces = FaceMeshBackend().detect(base).faces
    assert len(faces) == 1 and faces[0].mesh is not None
    return base, faces[0]


SEEDS = (0, 14, 1, 2, 3)
SEVERITIES = (0.6, 1.4)


def test_simulated_visits_have_exactly_one_face(astronaut_1024: tuple[np.ndarray, FaceGeometry]) -> None:
    base, face = astronaut_1024
    backend = FaceMeshBackend()
    found = {}
    for seed in SEEDS:
        for sev in SEVERITIES:
            change = {"nasolabial_l": sev - 1.0, "nasolabial_r": sev - 1.0}
            img, _ = simulate_visit(base, lift_mm=1.0, wrinkle_change=change, seed=seed, face=face)
            search = backend.detect(img)
            found[(seed, sev)] = len(search.faces)
            if len(search.faces) == 1:
                assert abs(search.faces[0].eye_midpoint[0] - face.eye_midpoint[0]) < 0.05 * face.inter_ocular_px
    assert {k: n for k, n in found.items() if n != 1} == {}


def test_a_face_small_in_a_wide_frame_is_found_in_tiles() -> None:
    from toolkit.imaging import facemesh

    canvas = np.full((2400, 2400, 3), 200, np.uint8)
    canvas[944:1456, 944:1456] = portrait("astronaut")  # a face ≈ 100 px wide in a 2400 px frame
    assert facemesh.detect_faces(canvas) == []  # BlazeFace (short range) alone misses it
    search = FaceMeshBackend().detect(canvas)
    assert len(search.faces) == 1 and search.faces[0].mesh is not None
    x, y = search.faces[0].eye_midpoint
    assert 944 + 200 < x < 944 + 260 and 944 + 80 < y < 944 + 130


def test_a_face_without_a_mesh_fails_qc_with_the_reason() -> None:
    res = analyze_photo(portrait("astronaut"), backend=HaarCascadeBackend(), overlays=False)
    assert res.qc.codes == ["no_landmarks"] and "mesh" in res.qc.reasons[0]


def _face(x: float, w: float, *, eyes: bool = True) -> FaceGeometry:
    return FaceGeometry(box=(x, 100.0, w, w), eye_right=(x + 0.3 * w, 140.0), eye_left=(x + 0.7 * w, 140.0),
                        eyes_estimated=not eyes)


@pytest.mark.parametrize(
    ("second", "votes", "kept"),
    [
        (_face(400, 200), 15.0, 2),  # a second person: as large, as well supported, own eyes, apart
        (_face(400, 80), 15.0, 1),  # much smaller
        (_face(400, 200), 4.0, 1),  # far fewer cascade votes
        (_face(400, 200, eyes=False), 15.0, 1),  # no eyes where the main face has them
        (_face(150, 200), 15.0, 1),  # overlaps the main face
    ],
)
def test_second_detection_rules(second: FaceGeometry, votes: float, kept: int) -> None:
    main = _face(100, 200)
    faces = _confirmed_faces([(second, votes), (main, 16.0)])
    assert len(faces) == kept
    assert main in faces
    assert [f.box[0] for f in faces] == sorted(f.box[0] for f in faces)
