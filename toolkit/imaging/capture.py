"""Guided capture from a camera, stream URL or video file, with a baseline "ghost" and live alignment score.

Each frame gets a fast QC (one face, sharpness, skin clipping) and an alignment score against the
subject's baseline (eye positions and size, 1 = same framing). The operator sees the frame with the
baseline blended over it (the ghost) and the score: in a window when a display exists, otherwise as
preview images and log lines. The first frame that passes QC at the required score is saved; if none
does, a frame is saved only when the operator gives an override reason, which is recorded with it.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from toolkit.errors import DataError
from toolkit.imaging.faces import FaceGeometry, HaarCascadeBackend
from toolkit.imaging.qc import QCReport, QCThresholds, blur_score

__all__ = ["CaptureResult", "alignment_score", "compose_preview", "frame_qc", "capture_photo"]


@dataclass
class CaptureResult:
    """Outcome of a capture: the saved file (if any), the chosen frame's QC and score."""

    saved_path: Path | None
    sha256: str | None
    qc: QCReport
    alignment_score: float
    frames_seen: int
    override_reason: str | None = None
    log: list[str] = field(default_factory=list)


def alignment_score(face: FaceGeometry, frame_shape: tuple[int, ...], base: FaceGeometry, base_shape: tuple[int, ...]) -> float:
    """1 when the eyes sit where they sat in the baseline (positions as fractions of the frame), 0 when
    they are off by half an inter-ocular distance or more."""
    fh, fw = frame_shape[:2]
    bh, bw = base_shape[:2]
    err = 0.0
    for p, q in ((face.eye_right, base.eye_right), (face.eye_left, base.eye_left)):
        err += math.hypot(p[0] / fw - q[0] / bw, p[1] / fh - q[1] / bh)
    iod = base.inter_ocular_px / bw
    return float(max(0.0, 1.0 - (err / 2) / (0.5 * iod)))


def frame_qc(rgb: np.ndarray, backend: HaarCascadeBackend, thresholds: QCThresholds) -> tuple[QCReport, FaceGeometry | None]:
    """Fast per-frame QC: exactly one frontal face, sharp face crop, little clipping on the face."""
    qc = QCReport()
    search = backend.detect(rgb)
    if len(search.faces) != 1:
        qc.fail("no_face" if not search.faces else "multiple_faces",
                "no face found" if not search.faces else f"{len(search.faces)} faces found")
        return qc, None
    face = search.faces[0]
    x, y, w, h = (int(round(v)) for v in face.box)
    crop = rgb[max(0, y):y + h, max(0, x):x + w]
    blur = blur_score(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY))
    clipped = float(np.mean(np.any(crop >= 253, axis=2) | np.all(crop <= 2, axis=2)))
    qc.metrics.update(blur_score=blur, clipped_fraction=clipped, yaw_index=face.yaw_index)
    if blur < thresholds.min_blur_score:
        qc.fail("blur", f"blurred (Laplacian variance {blur:.1f} < {thresholds.min_blur_score})")
    if clipped > thresholds.max_clipped_fraction:
        qc.fail("exposure", f"exposure clipping on {100 * clipped:.1f} % of the face")
    if abs(face.yaw_index) > thresholds.max_yaw_index:
        qc.fail("not_frontal", f"head turned (yaw index {face.yaw_index:+.2f})")
    return qc, face


def compose_preview(rgb: np.ndarray, baseline: np.ndarray | None, score: float, qc: QCReport, *, ghost_alpha: float = 0.35) -> np.ndarray:
    """The operator's view: the frame with the baseline ghost blended in, the score and the QC verdict."""
    out = rgb.copy()
    if baseline is not None:
        ghost = cv2.resize(baseline, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)
        out = cv2.addWeighted(out, 1 - ghost_alpha, ghost, ghost_alpha, 0)
    colour = (40, 200, 40) if qc.passed else (230, 50, 50)
    text = f"align {score:.2f}  " + ("QC pass" if qc.passed else "QC: " + ", ".join(qc.codes))
    cv2.putText(out, text, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7, colour, 2, cv2.LINE_AA)
    return out


def _open(source: str | int) -> cv2.VideoCapture:
    src: str | int = int(source) if isinstance(source, str) and source.isdigit() else source
    cap = cv2.VideoCapture(src)
    if not cap.isOpened():
        raise DataError(f"cannot open video source {source!r}; accepted: a camera index (0, 1, …), a stream URL "
                        "or a video file path")
    return cap


def capture_photo(
    source: str | int,
    *,
    store: Callable[[Path, dict], tuple[Path, str]],
    baseline: np.ndarray | None = None,
    min_score: float = 0.8,
    max_frames: int = 150,
    override_reason: str | None = None,
    preview_dir: Path | None = None,
    thresholds: QCThresholds | None = None,
    log: Callable[[str], None] | None = None,
    display: bool | None = None,
) -> CaptureResult:
    """Read frames until one passes QC and aligns with the baseline, then hand it to ``store``.

    Parameters
    ----------
    source : str or int
        Camera index, stream URL or video file.
    store : callable
        ``store(png_path, meta) -> (stored_path, sha256)``; called once with a lossless PNG of the chosen
        frame (e.g. :func:`toolkit.imaging.raw_store.store_raw_photo` bound to a subject and visit).
    baseline : (M, N, 3) uint8 ndarray, optional
        The subject's baseline photo (ghost and alignment); without it the score is 1.
    min_score : float
        Alignment score a frame needs.
    max_frames : int
        Frames to try before giving up (or saving the best one under an override).
    override_reason : str, optional
        Save the best frame even though no frame passed; the reason is recorded in the metadata.
    preview_dir : Path, optional
        Headless preview: composed frames are written here (every 10th and the chosen one).
    log : callable, optional
        Receives one line per frame (frame number, score, QC).
    display : bool, optional
        Show a window (default: when ``$DISPLAY`` is set and OpenCV has a GUI backend).
    """
    thresholds = thresholds or QCThresholds()
    backend = HaarCascadeBackend(detect_long_side_px=640)
    lines: list[str] = []

    def say(msg: str) -> None:
        lines.append(msg)
        if log:
            log(msg)

    base_face = None
    if baseline is not None:
        search = backend.detect(baseline)
        if len(search.faces) != 1:
            raise DataError("the baseline photo has no single detectable face; capture cannot align to it")
        base_face = search.faces[0]
    show = bool(os.environ.get("DISPLAY")) if display is None else display
    if preview_dir is not None:
        preview_dir.mkdir(parents=True, exist_ok=True)
    cap = _open(source)
    best: tuple[float, int, np.ndarray, QCReport] | None = None
    chosen = None
    n = 0
    try:
        while n < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            n += 1
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            qc, face = frame_qc(rgb, backend, thresholds)
            score = 0.0 if face is None else (1.0 if base_face is None else alignment_score(face, rgb.shape, base_face, baseline.shape))
            qc.metrics["alignment_score"] = score
            if face is not None and score < min_score:
                qc.fail("alignment", f"alignment score {score:.2f} < {min_score}")
            say(f"frame {n}: alignment {score:.2f}, QC {'pass' if qc.passed else 'fail: ' + '; '.join(qc.reasons)}")
            preview = compose_preview(rgb, baseline, score, qc)
            if show:
                try:
                    cv2.imshow("toolkit capture", cv2.cvtColor(preview, cv2.COLOR_RGB2BGR))
                    cv2.waitKey(1)
                except cv2.error:  # headless OpenCV build: fall back to preview files
                    show = False
            if preview_dir is not None and (n % 10 == 1 or qc.passed):
                cv2.imwrite(str(preview_dir / f"preview_{n:04d}.jpg"), cv2.cvtColor(preview, cv2.COLOR_RGB2BGR))
            rank = score + (1.0 if qc.passed else 0.0) + (0.5 if face is not None else 0.0)
            if best is None or rank > best[0]:
                best = (rank, n, rgb, qc)
            if qc.passed:
                chosen = (n, rgb, qc, score)
                break
    finally:
        cap.release()
        if show:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
    if n == 0:
        raise DataError(f"video source {source!r} delivered no frames")
    reason = None
    if chosen is None:
        if override_reason is None or best is None:
            qc = best[3] if best else QCReport(passed=False)
            say(f"no frame passed QC in {n} frames; nothing saved (give an override reason to save the best frame)")
            return CaptureResult(None, None, qc, float(qc.metrics.get("alignment_score", 0.0)), n, log=lines)
        _, idx, rgb, qc = best
        chosen = (idx, rgb, qc, float(qc.metrics.get("alignment_score", 0.0)))
        reason = override_reason
        say(f"saving frame {idx} under operator override: {override_reason}")
    idx, rgb, qc, score = chosen
    meta = {"capture_source": str(source), "frame_index": idx, "alignment_score": score, "qc": qc.to_dict(),
            "override_reason": reason}
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / f"capture_frame{idx:04d}.png"
        cv2.imwrite(str(png), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        stored, digest = store(png, meta)
    say(f"saved frame {idx} as {stored}")
    return CaptureResult(stored, digest, qc, score, n, override_reason=reason, log=lines)
