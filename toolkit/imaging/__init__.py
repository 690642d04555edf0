"""Facial photos: QC, calibration, regions, registration, wrinkle and lift metrics, batches.

The main entry point is :func:`analyze_photo` (one photo, optionally against its baseline, in; a
:class:`PhotoAnalysis` with ``.qc``, ``.regions``, ``.overlays`` and ``.to_frame()`` out). It is pure and
picklable, so :func:`analyze_batch` runs it in a loop, a local process pool or on a Dask cluster.

Plugging in a landmark model: write a class with ``name`` and ``detect(image) -> FaceSearch`` (see
:class:`LandmarkBackend`) returning :class:`FaceGeometry` objects with eye centres and, if the model has
them, named ``landmarks`` (``brow_l``, ``medial_canthus_l``, ``limbus_l``, ``oral_commissure_l``, ``jaw_l``,
``chin`` …); pass it as ``analyze_photo(..., backend=MyBackend())``. :class:`MediaPipeLandmarkerBackend`
adapts a MediaPipe Face Landmarker ``.task`` file that the lab installs itself.
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
    FaceSearch,
    HaarCascadeBackend,
    LandmarkBackend,
    MediaPipeLandmarkerBackend,
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
    "MediaPipeLandmarkerBackend",
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
