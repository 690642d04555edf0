"""A nod between visits is caught: it moves the lower face in the photo and reads as lift.

The head's turn between two photos comes from their 3-D face meshes (:func:`face_qc.head_rotation`), checked
first on a mesh rotated by a known rotation (exact), then on real portraits whose own mesh was tilted and the
skin carried with it (:func:`synthetic.tilt_head`): the nod is recovered with the right sign, the false lift it
causes is shown, and the photo fails. A true lift of the lower face, which the mesh reads as a small nod the
other way, does not fail (see also ``test_covered_at_visit``: re-captures with 0–3 mm lift pass).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from toolkit.imaging import analyze_photo
from toolkit.imaging.face_qc import head_rotation
from toolkit.imaging.faces import FaceMeshBackend
from toolkit.imaging.synthetic import portrait, tilt_head


def _rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    a, b, c = (math.radians(v) for v in (pitch, yaw, roll))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_a_known_rotation_of_a_real_mesh_is_recovered_exactly() -> None:
    mesh = FaceMeshBackend().detect(portrait("grace_hopper")).faces[0].mesh
    assert mesh.shape[1] == 3
    for angles in [(5.0, -3.0, 2.0), (-8.0, 0.0, 0.0), (0.0, 10.0, -4.0)]:
        # rotated about an arbitrary point, scaled and shifted: only the rotation is read
        moved = 1.3 * (mesh - 40.0) @ _rotation(*angles).T + np.array([12.0, -7.0, 3.0])
        np.testing.assert_allclose(head_rotation(mesh, moved), angles, atol=1e-6)
    with pytest.raises(ValueError, match="depth"):
        head_rotation(mesh[:, :2], mesh[:, :2])


# the astronaut at its native 512 px: a 4° nod up reads as 1.9°, inside the 2° limit (missed); 6° is caught
@pytest.mark.parametrize(("name", "scale", "size"), [("astronaut", 2, 4.0), ("grace_hopper", 2, 4.0),
                                                     ("astronaut", 1, 6.0)])
def test_a_nod_is_measured_and_fails_the_photo(name: str, scale: int, size: float) -> None:
    img = portrait(name)
    if scale > 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    face = FaceMeshBackend().detect(img).faces[0]
    base = tilt_head(img, face=face)  # the same rendering, untilted: only the nod differs
    level = analyze_photo(tilt_head(img, pitch_deg=0.0, face=face), baseline=base, overlays=False)
    assert level.qc.passed and abs(level.qc.metrics["pitch_change_deg"]) < 0.2, level.qc.reasons
    for nod in (size, -size):
        res = analyze_photo(tilt_head(img, pitch_deg=nod, face=face), baseline=base, overlays=False)
        pitch = res.qc.metrics["pitch_change_deg"]
        # the mesh recovers much of the nod, with its sign (the model reads depth from one photo: 60-100 % of
        # it at 2×, 45-60 % on the 512-px astronaut)
        assert 0.4 * abs(nod) < abs(pitch) < 1.3 * abs(nod) and pitch * nod > 0, pitch
        # what the nod does to lift: the jawline moves by more than a millimetre, the way the nod says
        jaw = res.regions.set_index("region").lift_mm[["jawline_l", "jawline_r"]].to_numpy()
        assert np.all(jaw * nod > 0) and np.all(np.abs(jaw) > 1.0), jaw
        assert "pose" in res.qc.codes, (nod, pitch, res.qc.reasons)
        assert any("tipped" in r and "reads as lift" in r for r in res.qc.reasons), res.qc.reasons
