"""Make ``mediapipe_reference.json``: MediaPipe's own face-mesh landmarks on the shipped portraits.

The landmark test (``tests/imaging/test_landmarks.py``) compares the toolkit's face mesh, which runs
MediaPipe's model files in OpenCV's dnn module, with what the full MediaPipe runtime finds on the same
images. That runtime cannot live in the project's environment (its dependencies replace OpenCV 4 with 5
and pin protobuf below 5), so this script runs in a throw-away virtual environment, and only its output,
the JSON fixture, is committed:

    python3.11 -m venv /tmp/mpref
    /tmp/mpref/bin/pip install mediapipe==0.10.14 scikit-image matplotlib
    /tmp/mpref/bin/python tests/imaging/data/make_mediapipe_reference.py tests/imaging/data/mediapipe_reference.json
    rm -rf /tmp/mpref

(mediapipe 0.10.14 has wheels for CPython 3.9–3.12.) The portraits are the ones
``toolkit.imaging.synthetic.portrait`` loads: scikit-image's ``astronaut`` and matplotlib's
``grace_hopper.jpg`` sample, each at its native size and upscaled 2× and 4× with OpenCV's cubic
interpolation, as the test does.

MediaPipe runs as ``solutions.face_mesh.FaceMesh`` in static-image mode without iris refinement: BlazeFace
(short range) finds the face, one crop from the detection goes through the 468-point mesh model. The
fixture keeps, per image, its size, the number of faces found and the first face's landmarks in pixels
(x right, y down, pixel centres at integer coordinates as MediaPipe's normalised coordinates times the
image size).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

UPSCALES = (1, 2, 4)


def portraits() -> dict:
    """The two portraits as RGB uint8 arrays, loaded as ``toolkit.imaging.synthetic.portrait`` does."""
    import cv2
    import numpy as np
    from matplotlib import cbook
    from skimage import data

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return {
        "astronaut": np.ascontiguousarray(data.astronaut()),
        "grace_hopper": cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB),
    }


def main(out_path: str) -> None:
    """Run MediaPipe's face mesh on every portrait and upscale and write the fixture to ``out_path``."""
    import cv2
    import mediapipe as mp
    import numpy as np

    settings = {"static_image_mode": True, "refine_landmarks": False, "max_num_faces": 2,
                "min_detection_confidence": 0.5}
    fixture: dict = {
        "generator": f"mediapipe {mp.__version__} solutions.face_mesh.FaceMesh(static_image_mode=True, "
                     "refine_landmarks=False, max_num_faces=2)",
        "upscale_interpolation": "cv2.INTER_CUBIC",
        "versions": {"mediapipe": mp.__version__, "opencv": cv2.__version__, "numpy": np.__version__},
        "faces": {},
    }
    with mp.solutions.face_mesh.FaceMesh(**settings) as mesh:
        for name, image in portraits().items():
            for up in UPSCALES:
                img = image if up == 1 else cv2.resize(image, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
                h, w = img.shape[:2]
                found = mesh.process(img).multi_face_landmarks or []
                points = [[[round(p.x * w, 3), round(p.y * h, 3)] for p in face.landmark] for face in found]
                fixture["faces"][f"{name}@{up}x"] = {"shape": [h, w], "landmarks_px": points[0] if points else None,
                                                     "n_faces": len(found)}
                print(f"{name} ×{up}: {w}×{h} px, {len(found)} face(s)")
    Path(out_path).write_text(json.dumps(fixture), encoding="utf-8")
    print(f"written {out_path}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {Path(sys.argv[0]).name} OUTPUT.json  (run in a throw-away venv; see the docstring)")
    main(sys.argv[1])
