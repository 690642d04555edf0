"""Topology of the 468-point face mesh: feature outlines, left/right mirror, named points.

Facts about the model's vertex numbering (the outlines are MediaPipe's ``FACEMESH_*`` contour sets, here as
closed loops in drawing order). Sides follow the clinical convention: ``_r`` is the subject's right, which
is the image's left in a frontal, non-mirrored photo.
"""

from __future__ import annotations

__all__ = [
    "MESH_POINTS",
    "FACE_OVAL",
    "EYE_R",
    "EYE_L",
    "BROW_R",
    "BROW_L",
    "LIPS_OUTER",
    "LIPS_INNER",
    "NOSE_LOWER",
    "MIDLINE",
    "MIRROR",
    "NAMED",
    "mirror_index",
]

#: number of face-mesh vertices
MESH_POINTS = 468

#: face outline, clockwise in the image from the top of the forehead
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
#: eye openings (lid margins), from the outer corner along the upper lid
EYE_R = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
EYE_L = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
#: eyebrows: upper margin from the tail to the head, then the lower margin back
BROW_R = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
BROW_L = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
#: red of the lips (vermilion border) and the mouth opening
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
#: lower nose outline (alae, nostrils and tip)
NOSE_LOWER = (98, 97, 2, 326, 327, 294, 278, 344, 440, 275, 4, 45, 220, 115, 48, 64)
#: vertices on the facial midline (their own mirror image)
MIDLINE = (0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 94, 151, 152, 164, 168, 175, 195,
           197, 199, 200)


def _mirror() -> tuple[int, ...]:
    """The mesh numbers one side's off-midline vertices 0–247 in the order the other side's run 248–467."""
    side = [i for i in range(248) if i not in MIDLINE]
    out = list(range(MESH_POINTS))
    for a, b in zip(side, range(248, MESH_POINTS), strict=True):
        out[a], out[b] = b, a
    return tuple(out)


#: ``MIRROR[i]`` is the vertex at the mirror position of vertex ``i`` (checked against the mesh of frontal
#: faces matched to its own reflection: every named pair of the contour sets maps onto its partner)
MIRROR = _mirror()

#: single points with a clinical name
NAMED = {
    "outer_canthus_r": 33,
    "outer_canthus_l": 263,
    "medial_canthus_r": 133,
    "medial_canthus_l": 362,
    "upper_lid_r": 159,
    "lower_lid_r": 145,
    "upper_lid_l": 386,
    "lower_lid_l": 374,
    "brow_r": 105,
    "brow_l": 334,
    "oral_commissure_r": 61,
    "oral_commissure_l": 291,
    "upper_lip_inner": 13,
    "lower_lip_inner": 14,
    "upper_lip_top": 0,
    "lower_lip_bottom": 17,
    "nose_tip": 4,
    "nasion": 168,
    "chin": 152,
    "jaw_r": 172,
    "jaw_l": 397,
    "gonion_r": 132,
    "gonion_l": 361,
    "cheek_r": 234,
    "cheek_l": 454,
    "forehead_top": 10,
}


def mirror_index(index: int) -> int:
    """The vertex at the mirror position of ``index`` (the same vertex on the midline)."""
    return MIRROR[index]
