"""Every stored photo of a study with its QC status (passed, failed, not analysed yet) and the reasons.

The verdicts come from each photo's latest measurement run in the store; a photo that has none is listed as
not analysed yet, so the listing shows the whole study, not only what was measured. A verdict made at
capture time (a frame saved with an override) is carried into the notes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LIST_COLUMNS", "QC_LISTING_COLUMNS", "STATUS_FAILED", "STATUS_PASSED", "STATUS_PENDING", "flat_qc_listing",
           "qc_listing"]

STATUS_PASSED = "passed"
STATUS_FAILED = "failed"
STATUS_PENDING = "not analysed yet"

#: columns of :func:`qc_listing`, in order
QC_LISTING_COLUMNS = (
    "subject_id", "visit_id", "view", "photo_id", "file", "status", "codes", "reasons", "flag_codes", "flags",
    "notes", "algorithm_version", "analysed_at",
)
#: columns holding lists of strings (a reason, a flag or a note may itself contain commas and semicolons)
LIST_COLUMNS = ("codes", "reasons", "flag_codes", "flags", "notes")
_VIEW_ORDER = {"frontal": 0, "left45": 1, "right45": 2}


def _strings(values: Any) -> list[str]:
    return [str(v) for v in (values or [])]


def _capture_notes(meta: dict, capture_qc: dict | None) -> list[str]:
    notes = []
    if capture_qc and not capture_qc.get("passed", True):
        why = " | ".join(_strings(capture_qc.get("reasons"))) or "no reason recorded"
        notes.append(f"capture QC failed ({why})")
    if meta.get("override_reason"):
        notes.append(f"saved by override: {meta['override_reason']}")
    return notes


def qc_listing(store: Any, study: Any) -> Any:
    """One row per stored photo with its QC status, failure codes and reasons, flags and notes.

    Parameters
    ----------
    store : toolkit.store.Store
        The study's open store.
    study : toolkit.study.Study
        Gives the visits' order.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`QC_LISTING_COLUMNS`, ordered by subject, visit (the study's schedule), view and photo.
        ``status`` is ``"passed"``, ``"failed"`` or ``"not analysed yet"``; the :data:`LIST_COLUMNS` hold
        lists of strings; ``analysed_at`` is the latest run's time (UTC, ISO 8601), empty when not analysed.
    """
    import pandas as pd

    runs = store.latest_measurement_runs()
    order = {v.id: i for i, v in enumerate(getattr(study, "visits", ()))}
    keyed = []
    for rec in store.photos():
        run = runs.get(rec.photo_id)
        qc = run.qc if run is not None else {}
        if run is None:
            status = STATUS_PENDING
        else:
            status = STATUS_PASSED if qc.get("passed") else STATUS_FAILED
        key = (rec.subject_id, order.get(rec.visit_id, len(order)), _VIEW_ORDER.get(rec.view, 9), rec.photo_id)
        keyed.append((key, {
            "subject_id": rec.subject_id,
            "visit_id": rec.visit_id,
            "view": rec.view,
            "photo_id": rec.photo_id,
            "file": rec.path.name,
            "status": status,
            "codes": _strings(qc.get("codes")),
            "reasons": _strings(qc.get("reasons")),
            "flag_codes": _strings(qc.get("flag_codes")),
            "flags": _strings(qc.get("flags")),
            "notes": [*_strings(qc.get("notes")), *_capture_notes(rec.meta, rec.qc)],
            "algorithm_version": run.algorithm_version if run is not None else "",
            "analysed_at": run.created_at.isoformat(timespec="seconds") if run and run.created_at else "",
        }))
    keyed.sort(key=lambda item: item[0])
    return pd.DataFrame([row for _, row in keyed], columns=list(QC_LISTING_COLUMNS))


def flat_qc_listing(listing: Any) -> Any:
    """:func:`qc_listing` with every list column joined by ``" | "``, for a CSV file or a spreadsheet."""
    flat = listing.copy()
    for col in LIST_COLUMNS:
        flat[col] = flat[col].map(" | ".join)
    return flat
