"""Facial photos: QC, calibration, regions, registration, wrinkle and lift metrics, batches.

The main entry point is :func:`analyze_photo` (one photo, optionally against its baseline, in; a
:class:`PhotoAnalysis` with ``.qc``, ``.regions``, ``.overlays`` and ``.to_frame()`` out). It is pure and
picklable, so :func:`analyze_batch` runs it in a loop, a local process pool or on a Dask cluster.

Faces are found by :class:`FaceMeshBackend` (BlazeFace and MediaPipe's 468-point face mesh, run offline in
OpenCV's dnn); regions are polygons on mesh vertices (:mod:`toolkit.imaging.regions`), measured on skin only
(:mod:`toolkit.imaging.skin`). Another landmark model plugs in as a class with ``name`` and
``detect(image) -> FaceSearch`` (see :class:`LandmarkBackend`) whose faces carry a mesh in the same vertex
order; pass it as ``analyze_photo(..., backend=MyBackend())``.
"""

from toolkit.imaging.analysis import ALGORITHM_VERSION, METRIC_COLUMNS, PhotoAnalysis, analyze_photo
from toolkit.imaging.batch import BatchItem, BatchResult, analyze_batch
from toolkit.imaging.calibration import (
    Calibration,
    ColourChart,
    chart_correction,
    detect_scale_marker,
    gray_world,
)
from toolkit.imaging.faces import (
    FaceGeometry,
    FaceMeshBackend,
    FaceSearch,
    HaarCascadeBackend,
    LandmarkBackend,
    find_faces,
)
from toolkit.imaging.photo_io import PhotoRejected, load_photo, read_photo_header
from toolkit.imaging.qc import QCReport, QCThresholds
from toolkit.imaging.regions import (
    REGION_NAMES,
    RoiTemplate,
    load_roi_template,
    save_roi_template,
    study_roi_template,
)
from toolkit.imaging.ridges import ridge_response, ridge_strength
from toolkit.imaging.wrinkles import WrinkleParams, measure_wrinkles, wrinkle_map

__all__ = [
    "ALGORITHM_VERSION",
    "METRIC_COLUMNS",
    "REGION_NAMES",
    "BatchItem",
    "BatchResult",
    "Calibration",
    "ColourChart",
    "FaceGeometry",
    "FaceSearch",
    "HaarCascadeBackend",
    "LandmarkBackend",
    "FaceMeshBackend",
    "PhotoAnalysis",
    "PhotoRejected",
    "QCReport",
    "QCThresholds",
    "RoiTemplate",
    "WrinkleParams",
    "analyze_batch",
    "analyze_photo",
    "chart_correction",
    "detect_scale_marker",
    "find_faces",
    "gray_world",
    "load_photo",
    "load_roi_template",
    "measure_wrinkles",
    "read_photo_header",
    "ridge_response",
    "ridge_strength",
    "save_roi_template",
    "study_roi_template",
    "wrinkle_map",
]
