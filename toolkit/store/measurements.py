"""Photo measurements: one run per photo and algorithm version, one row per region and metric."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert, select

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.base import StoreBase
from toolkit.store.values import json_ready

__all__ = ["Measurements"]


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
            photo = s.get(m.PhotoRow, int(photo_id))
            if photo is None:
                raise StoreError(f"no photo #{photo_id} in {self.database}")
            run = m.MeasurementRunRow(
                photo_id=photo.id, algorithm_version=str(algorithm_version), qc=json_ready(qc or {}, "qc")
            )
            s.add(run)
            s.flush()
            if rows:
                for r in rows:
                    r["run_id"] = run.id
                s.execute(insert(m.MeasurementRow), rows)
            return run.id

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
            known = set(s.scalars(select(m.PhotoRow.id).where(m.PhotoRow.id.in_([i[0] for i in items]))))
            missing = sorted({i[0] for i in items} - known)
            if missing:
                raise StoreError(f"no photo #{', #'.join(map(str, missing))} in {self.database}")
            run_rows = [
                m.MeasurementRunRow(
                    photo_id=pid, algorithm_version=str(algorithm_version), qc=json_ready(qc or {}, "qc")
                )
                for pid, _, qc in items
            ]
            s.add_all(run_rows)
            s.flush()
            rows = []
            for run, (_, measured, _) in zip(run_rows, items, strict=True):
                for r in measured:
                    r["run_id"] = run.id
                rows.extend(measured)
            if rows:
                s.execute(insert(m.MeasurementRow), rows)
            return [r.id for r in run_rows]

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
    if df.duplicated(["region", "metric"]).any():
        dups = df.loc[df.duplicated(["region", "metric"]), ["region", "metric"]].head(3).values.tolist()
        raise DataError(f"measurements repeat region/metric pairs, e.g. {dups}")
    try:
        values = pd.to_numeric(df["value"], errors="raise").astype(float).to_numpy()
    except (TypeError, ValueError):
        raise DataError("measurement values must be numbers") from None
    regions = df["region"].astype(str).to_numpy()
    metrics = df["metric"].astype(str).to_numpy()
    units = df["unit"].to_numpy() if "unit" in df.columns else [None] * len(df)
    finite = np.isfinite(values)
    # SQLite stores NaN as NULL; make that explicit so every backend keeps the same value
    return [
        {
            "region": regions[i],
            "metric": metrics[i],
            "value": float(values[i]) if finite[i] else None,
            "unit": None
            if units[i] is None or (isinstance(units[i], float) and math.isnan(units[i]))
            else str(units[i]),
        }
        for i in range(len(df))
    ]

