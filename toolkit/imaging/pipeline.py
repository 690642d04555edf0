"""Photos in the system of record: ingest a file, analyse every pending photo.

The core functions of :mod:`toolkit.imaging` are pure; these two connect them with the study's store, so the
command line, the notebooks and the demo share one path.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from toolkit.paths import safe_path_part

__all__ = ["IngestedPhoto", "analyze_pending", "overlay_path", "baseline_photo_for", "baseline_photos", "ingest_photo",
           "ingest_photo_record"]

VIEWS = ("frontal", "left45", "right45")
#: an analysis run stores its results in batches: one audited transaction (one anchor) per this many photos …
WRITE_BATCH_PHOTOS = 100
#: … or per this many seconds since the batch's first result, whichever comes first
WRITE_BATCH_SECONDS = 60.0


@dataclass(frozen=True)
class IngestedPhoto:
    """A photo registered in the store by :func:`ingest_photo_record`.

    Attributes
    ----------
    photo_id : int
        Id of the photo in the store.
    path : Path
        The read-only raw copy under ``data/<study>/photos/raw/…``.
    sha256 : str
        Checksum of the raw copy.
    """

    photo_id: int
    path: Path
    sha256: str


def baseline_visit_id(study: Any) -> str:
    """Id of the study's baseline visit (the schedule's baseline, else the first visit)."""
    try:
        return study.schedule.baseline.id
    except (AttributeError, StopIteration):
        return study.visits[0].id


def baseline_photos(store: Any, study: Any) -> dict[str, Path]:
    """Each subject's first frontal photo at the baseline visit, by subject id."""
    base_visit = baseline_visit_id(study)
    out: dict[str, Path] = {}
    for rec in store.photos():
        if rec.visit_id == base_visit and rec.view == "frontal" and rec.subject_id not in out:
            out[rec.subject_id] = Path(rec.path)
    return out


def baseline_photo_for(store: Any, study: Any, subject_id: str, visit_id: str) -> Path | None:
    """The photo a new photo of ``subject_id`` at ``visit_id`` is compared with; None at the baseline visit."""
    if visit_id == baseline_visit_id(study):
        return None
    return baseline_photos(store, study).get(subject_id)


def ingest_photo_record(
    store: Any,
    study: Any,
    source: str | Path,
    *,
    subject_id: str,
    visit_id: str,
    view: str = "frontal",
    meta: dict | None = None,
    qc: dict | None = None,
    captured_at: datetime | None = None,
) -> IngestedPhoto:
    """Copy ``source`` into the raw store (read-only, SHA-256) and register it; return where it went.

    The raw copy is removed again when the store refuses the photo, so the raw folder and the database
    never disagree.

    Parameters
    ----------
    store : toolkit.store.Store
        The study's open store (``toolkit.store.open_store(study)``).
    study : toolkit.study.Study
    source : str or Path
        Photo file (JPEG, PNG, TIFF).
    subject_id, visit_id : str
        An enrolled subject and a visit of the study.
    view : {'frontal', 'left45', 'right45'}
    meta : dict, optional
        Capture metadata kept in the JSON sidecar and the store (``view`` is added).
    qc : dict, optional
        A QC verdict made at capture time (``QCReport.to_dict()``).
    captured_at : datetime, optional
        When the photo was taken (timezone-aware); the day a blinded grade of it is dated.

    Raises
    ------
    toolkit.errors.DataError
        Unsupported, unreadable, incomplete or damaged file (nothing is stored then), unknown view; or the
        store's refusal (unknown subject or visit).
    """
    from toolkit.errors import DataError
    from toolkit.imaging.raw_store import store_raw_photo

    if view not in VIEWS:
        raise DataError(f"view {view!r} not accepted; accepted: {', '.join(VIEWS)}")
    saved = store_raw_photo(source, study_id=study.id, subject_id=subject_id, visit_id=visit_id,
                            meta={"view": view, **(meta or {})})
    try:
        photo_id = store.add_photo(subject_id, visit_id=visit_id, path=saved.path, sha256=saved.sha256,
                                   view=view, meta=saved.meta, qc=qc, captured_at=captured_at)
    except BaseException:
        # any refusal or interruption (unknown subject, duplicate, lost database, Ctrl+C) undoes the raw copy
        if not saved.already_present:
            for p in (saved.path, saved.path.with_name(saved.path.name + ".json")):
                if p.exists():
                    os.chmod(p, 0o644)
                    p.unlink()
            # and the visit and subject folders it made, when nothing else is in them
            for folder in (saved.path.parent, saved.path.parent.parent):
                try:
                    folder.rmdir()
                except OSError:  # not empty (other photos), or already gone
                    break
        raise
    return IngestedPhoto(photo_id=int(photo_id), path=Path(saved.path), sha256=saved.sha256)


def ingest_photo(
    store: Any,
    study: Any,
    source: str | Path,
    *,
    subject_id: str,
    visit_id: str,
    view: str = "frontal",
    meta: dict | None = None,
    captured_at: datetime | None = None,
) -> int:
    """Store and register one photo file like :func:`ingest_photo_record`.

    Returns
    -------
    int
        The photo id in the store.
    """
    return ingest_photo_record(store, study, source, subject_id=subject_id, visit_id=visit_id, view=view,
                               meta=meta, captured_at=captured_at).photo_id


#: overlays kept for every analysed photo (the ghost blend is for the operator at capture time)
_STORED_OVERLAYS = ("wrinkles", "displacement")


def overlay_path(study_data: Path, subject_id: str, visit_id: str, view: str, name: str,
                 visit_number: float | None = None) -> Path:
    """Where :func:`analyze_pending` keeps one overlay: names sort in visit order within a subject."""
    order = f"{int(visit_number):03d}_" if visit_number is not None else ""
    return Path(study_data) / "photos" / "derived" / safe_path_part(subject_id) / f"{order}{safe_path_part(visit_id)}_{safe_path_part(view)}_{name}.jpg"


def _write_overlays(study_data: Path, rec: Any, numbers: dict, overlays: dict[str, bytes]) -> int:
    """Write a photo's overlays (replacing older ones atomically); return how many were written."""
    import logging

    written = 0
    for name, data in overlays.items():
        path = overlay_path(study_data, rec.subject_id, rec.visit_id, rec.view, name, numbers.get(rec.visit_id))
        tmp = path.with_name(path.name + ".part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, path)
            written += 1
        except OSError as exc:
            logging.getLogger(__name__).warning("overlay %s of photo #%s not written: %s", name, rec.photo_id, exc)
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
    return written


def analyze_pending(
    store: Any,
    study: Any,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    executor: str = "processes",
    mm_per_px: float | None = None,
    marker_side_mm: float | None = None,
    progress: bool = True,
    overlays: bool = True,
) -> dict[str, int]:
    """Analyse every photo of the study that has no measurements yet and write the results to the store.

    Follow-up photos are registered to the subject's baseline photo (lift needs it); a photo that fails QC is
    recorded with its reasons and never stops the batch. A study may keep its own ROI template in
    ``studies/<id>/roi_template.yaml``, and make some of the analysis's warnings failures in its
    ``study.yaml`` (``photo_qc: {fail_on_flags: [...]}``).

    Results are stored in batches, each one audited transaction with one anchor
    (:meth:`~toolkit.store.Store.add_measurement_runs`): every :data:`WRITE_BATCH_PHOTOS` photos or
    :data:`WRITE_BATCH_SECONDS` seconds, and at the end (also when the run is interrupted). Photos of a batch
    that was not stored stay pending for the next run.

    With ``overlays``, each analysed photo's wrinkle overlay (and a follow-up's displacement field) is
    written as ``<study data>/photos/derived/<subject>/<visit number>_<visit>_<view>_<overlay>.jpg``,
    where the report finds them, as soon as the photo is analysed: an overlay that cannot be written is
    counted in ``overlays_failed`` and loses nothing else.

    Returns
    -------
    dict
        ``{"analysed": n, "passed": n, "failed": n, "overlays": n, "overlays_failed": n}``.
    """
    from toolkit.imaging.analysis import METRIC_COLUMNS
    from toolkit.imaging.batch import BatchItem, analyze_batch

    options: dict = {}
    template = Path(study.path) / "roi_template.yaml"
    if template.is_file():
        options["regions"] = str(template)
    if mm_per_px:
        options["mm_per_px"] = mm_per_px
    if marker_side_mm:
        options["marker_side_mm"] = marker_side_mm
    fail_on = tuple(getattr(getattr(study, "photo_qc", None), "fail_on_flags", ()))
    if fail_on:
        # the study's protocol makes these warnings failures (study.yaml, photo_qc.fail_on_flags)
        from toolkit.imaging.qc import QCThresholds

        options["qc_thresholds"] = QCThresholds(fail_on_flags=fail_on)
    pending = store.pending_photos()
    counts = {"analysed": 0, "passed": 0, "failed": 0, "overlays": 0, "overlays_failed": 0}
    if not pending:
        return counts
    records = {rec.photo_id: rec for rec in pending}
    numbers = {v.id: v.number for v in getattr(study, "visits", ())}
    baselines = baseline_photos(store, study)
    items = []
    for rec in pending:
        base = baselines.get(rec.subject_id)
        is_base = base is not None and Path(base) == Path(rec.path)
        items.append(BatchItem(photo=str(rec.path), baseline=None if is_base or base is None else str(base),
                               key=rec.photo_id, options=options,
                               overlays=_STORED_OVERLAYS if overlays else False))

    batch: list[Any] = []
    started = [0.0]

    def store_batch() -> None:
        done = batch[:]
        batch.clear()  # tried once: a refused batch is not retried on the way out
        by_version: dict[str, list[Any]] = {}
        for res in done:
            by_version.setdefault(res.algorithm_version, []).append(res)
        for version, results in by_version.items():
            store.add_measurement_runs(
                [(res.key, res.frame[["region", *METRIC_COLUMNS]], res.qc) for res in results],
                algorithm_version=version,
            )
        for res in done:
            counts["analysed"] += 1
            counts["passed" if res.qc.get("passed") else "failed"] += 1

    def write(res: Any) -> None:
        if res.overlays:
            written = _write_overlays(Path(store.study_dir), records[res.key], numbers, res.overlays)
            counts["overlays"] += written
            counts["overlays_failed"] += len(res.overlays) - written
            res.overlays = {}
        if not batch:
            started[0] = time.monotonic()
        batch.append(res)
        if len(batch) >= WRITE_BATCH_PHOTOS or time.monotonic() - started[0] >= WRITE_BATCH_SECONDS:
            store_batch()

    try:
        analyze_batch(items, executor=executor, workers=workers, scheduler=scheduler, progress=progress,
                      on_result=write)
    finally:
        if batch:
            store_batch()
    return counts
