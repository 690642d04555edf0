"""The mesh's mirror map pairs every named left/right contour with its partner."""

from __future__ import annotations

from toolkit.imaging import mesh_topology as topo


def test_mirror_is_an_involution_fixing_exactly_the_midline() -> None:
    assert len(topo.MIRROR) == topo.MESH_POINTS
    assert all(topo.MIRROR[topo.MIRROR[i]] == i for i in range(topo.MESH_POINTS))
    assert {i for i in range(topo.MESH_POINTS) if topo.MIRROR[i] == i} == set(topo.MIDLINE)


def test_named_contours_map_onto_their_partners() -> None:
    for right, left in ((topo.EYE_R, topo.EYE_L), (topo.BROW_R, topo.BROW_L)):
        assert [topo.mirror_index(i) for i in right] == list(left)
    for name, index in topo.NAMED.items():
        if name.endswith("_r"):
            assert topo.mirror_index(index) == topo.NAMED[name[:-2] + "_l"], name
    for contour in (topo.FACE_OVAL, topo.LIPS_OUTER, topo.LIPS_INNER, topo.NOSE_LOWER):
        assert {topo.mirror_index(i) for i in contour} == set(contour)  # symmetric outlines
