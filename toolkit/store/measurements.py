"""Photo measurements: one run per photo and algorithm version, one row per region and metric."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.audited_inserts import insert_records, insert_rows
from toolkit.store.base import StoreBase
from toolkit.store.records import MeasurementRunRecord
from toolkit.store.values import json_ready

__all__ = ["Measurements"]

_PHOTOS_KNOWN = select(m.PhotoRow.__table__.c.id).where(
    m.PhotoRow.__table__.c.id.in_(bindparam("ids", expanding=True))
)


class Measurements(StoreBase):
    """Metrics computed from photos, with the algorithm version that computed them."""

    def add_measurements(self, photo_id: int, frame: Any, *, algorithm_version: str, qc: dict) -> int:
        """Store the metrics of one photo from one algorithm run; return the run id.

        Parameters
        ----------
        photo_id : int
        frame : pandas.DataFrame
            Long form with columns ``region``, ``metric``, ``value`` (optional ``unit``), or wide form with a
            ``region`` column (or index) and one numeric column per metric.
        algorithm_version : str
            Version of the code that computed the metrics (e.g. ``"toolkit 0.1.0 / wrinkles 2"``).
        qc : dict
            Quality-control results of the photo for this run.
        """
        self._require("measure", "store photo measurements")
        rows = _measurement_rows(frame)
        if not str(algorithm_version).strip():
            raise DataError("algorithm_version is required (the code version that computed the metrics)")
        with self.session() as s:
            self._check_photos(s, [int(photo_id)])
            (run_id,) = insert_records(s, m.MeasurementRunRow, [_run(int(photo_id), algorithm_version, qc)])
            for r in rows:
                r["run_id"] = run_id
            insert_rows(s, m.MeasurementRow, rows)
            return run_id

    def latest_measurement_runs(self) -> dict[int, MeasurementRunRecord]:
        """The latest measurement run of every analysed photo, with its QC verdict, by photo id."""
        latest = select(func.max(m.MeasurementRunRow.id)).group_by(m.MeasurementRunRow.photo_id).scalar_subquery()
        stmt = (
            select(m.MeasurementRunRow)
            .join(m.PhotoRow, m.PhotoRow.id == m.MeasurementRunRow.photo_id)
            .join(m.SubjectRow, m.SubjectRow.id == m.PhotoRow.subject_pk)
            .where(m.SubjectRow.study_id == self.study_id, m.MeasurementRunRow.id.in_(latest))
        )
        with self.reading() as s:
            return {
                run.photo_id: MeasurementRunRecord(run_id=run.id, photo_id=run.photo_id,
                                                   algorithm_version=run.algorithm_version, qc=dict(run.qc or {}),
                                                   created_at=run.created_at)
                for run in s.scalars(stmt)
            }

    def add_measurement_runs(
        self, runs: Iterable[tuple[int, Any, dict]], *, algorithm_version: str
    ) -> list[int]:
        """Store the metrics of many photos in one transaction (faster than one call per photo).

        Parameters
        ----------
        runs : iterable of (photo_id, frame, qc)
            As for :meth:`add_measurements`, one item per photo.
        algorithm_version : str

        Returns
        -------
        list of int
            The run ids, in input order. Either every run is stored or none.
        """
        self._require("measure", "store photo measurements")
        items = [(int(pid), _measurement_rows(frame), qc) for pid, frame, qc in runs]
        if not str(algorithm_version).strip():
            raise DataError("algorithm_version is required (the code version that computed the metrics)")
        with self.session() as s:
            self._check_photos(s, [i[0] for i in items])
            run_ids = insert_records(
                s, m.MeasurementRunRow, [_run(pid, algorithm_version, qc) for pid, _, qc in items]
            )
            rows = []
            for run_id, (_, measured, _) in zip(run_ids, items, strict=True):
                for r in measured:
                    r["run_id"] = run_id
                rows.extend(measured)
            insert_rows(s, m.MeasurementRow, rows)
            return run_ids

    def _check_photos(self, s: Session, photo_ids: list[int]) -> None:
        known = set(s.connection().scalars(_PHOTOS_KNOWN, {"ids": photo_ids}))
        missing = sorted(set(photo_ids) - known)
        if missing:
            raise StoreError(f"no photo #{', #'.join(map(str, missing))} in {self.database}")

    def measurements(self) -> Any:
        """All measurements with subject, visit, photo and algorithm version (DataFrame, latest runs only)."""
        self._require("read_records", "read photo measurements")
        import pandas as pd

        latest = (
            select(func.max(m.MeasurementRunRow.id).label("run_id"))
            .group_by(m.MeasurementRunRow.photo_id)
            .scalar_subquery()
        )
        stmt = (
            select(
                m.SubjectRow.subject_id,
                m.VisitRow.visit_id,
                m.PhotoRow.id.label("photo_id"),
                m.PhotoRow.view,
                m.MeasurementRunRow.algorithm_version,
                m.MeasurementRow.region,
                m.MeasurementRow.metric,
                m.MeasurementRow.value,
                m.MeasurementRow.unit,
            )
            .join(m.MeasurementRunRow, m.MeasurementRunRow.id == m.MeasurementRow.run_id)
            .join(m.PhotoRow, m.PhotoRow.id == m.MeasurementRunRow.photo_id)
            .join(m.VisitRow, m.VisitRow.id == m.PhotoRow.visit_pk)
            .join(m.SubjectRow, m.SubjectRow.id == m.PhotoRow.subject_pk)
            .where(m.SubjectRow.study_id == self.study_id, m.MeasurementRunRow.id.in_(latest))
        )
        with self.connect() as conn:
            result = conn.execute(stmt)
            return pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))


def _run(photo_id: int, algorithm_version: str, qc: dict | None) -> dict[str, Any]:
    return {
        "photo_id": photo_id, "algorithm_version": str(algorithm_version), "qc": json_ready(qc or {}, "qc"),
        "created_at": m.utcnow(),
    }  # fmt: skip


def _texts(column: Any) -> list[str]:
    values = column.tolist()
    if all(type(v) is str for v in values):
        return values
    return column.astype(str).tolist()


def _measurement_rows(frame: Any) -> list[dict[str, Any]]:
    import numpy as np
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"measurements must be a pandas DataFrame, not {type(frame).__name__}")
    df = frame
    if "region" not in df.columns and df.index.name == "region":
        df = df.reset_index()
    if "region" not in df.columns:
        raise DataError(f"measurements need a 'region' column; found {', '.join(map(str, df.columns))}")
    if not {"metric", "value"} <= set(df.columns):
        id_cols = ["region"] + (["unit"] if "unit" in df.columns else [])
        value_cols = [c for c in df.columns if c not in id_cols]
        bad = [c for c in value_cols if not pd.api.types.is_numeric_dtype(df[c])]
        if bad:
            raise DataError(f"measurement columns {', '.join(map(str, bad))} are not numeric")
        df = df.melt(id_vars=id_cols, value_vars=value_cols, var_name="metric", value_name="value")
    regions, metrics = _texts(df["region"]), _texts(df["metric"])
    pairs = list(zip(regions, metrics, strict=True))
    if len(set(pairs)) != len(pairs):
        seen: set[tuple[str, str]] = set()
        dups = [list(p) for p in pairs if p in seen or seen.add(p)][:3]
        raise DataError(f"measurements repeat region/metric pairs, e.g. {dups}")
    column = df["value"]
    try:
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            column = pd.to_numeric(column, errors="raise")
        values = column.astype(float).to_numpy()
    except (TypeError, ValueError):
        raise DataError("measurement values must be numbers") from None
    # SQLite stores NaN as NULL; make that explicit so every backend keeps the same value
    finite = np.isfinite(values).tolist()
    numbers = [v if ok else None for v, ok in zip(values.tolist(), finite, strict=True)]
    if "unit" in df.columns:
        units = [
            None if u is None or (isinstance(u, float) and math.isnan(u)) else str(u) for u in df["unit"].tolist()
        ]
    else:
        units = [None] * len(pairs)
    return [
        {"region": r, "metric": k, "value": v, "unit": u}
        for r, k, v, u in zip(regions, metrics, numbers, units, strict=True)
    ]
