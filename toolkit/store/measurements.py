"""Photo measurements: one run per photo and algorithm version, one row per region and metric."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.audited_inserts import insert_columns, insert_records
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
        (run_id,) = self.add_measurement_runs([(photo_id, frame, qc)], algorithm_version=algorithm_version)
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
        """Store the metrics of many photos in one audited transaction (how an analysis run writes).

        The batch costs one transaction, one audit entry per run plus one for all of its measurement rows
        (recorded column by column), and one signed anchor, however many photos it holds.

        Parameters
        ----------
        runs : iterable of (photo_id, frame, qc)
            As for :meth:`add_measurements`, one item per photo.
        algorithm_version : str

        Returns
        -------
        list of int
            The run ids, in input order. Either every run is stored or none: one unknown photo or malformed
            frame refuses the whole batch (the refusal names it) and nothing is written.
        """
        self._require("measure", "store photo measurements")
        if not str(algorithm_version).strip():
            raise DataError("algorithm_version is required (the code version that computed the metrics)")
        items = []
        for pid, frame, qc in runs:
            try:
                items.append((int(pid), _measurement_columns(frame), qc))
            except DataError as exc:
                raise DataError(f"photo #{pid}: {exc}") from None
        if not items:
            return []
        with self.session() as s:
            self._check_photos(s, [i[0] for i in items])
            run_ids = insert_records(
                s, m.MeasurementRunRow, [_run(pid, algorithm_version, qc) for pid, _, qc in items]
            )
            columns: dict[str, list[Any]] = {"run_id": [], "region": [], "metric": [], "value": [], "unit": []}
            for run_id, (_, measured, _) in zip(run_ids, items, strict=True):
                columns["run_id"] += [run_id] * len(measured["region"])
                for name, values in measured.items():
                    columns[name] += values
            insert_columns(s, m.MeasurementRow, columns)
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


def _measurement_columns(frame: Any) -> dict[str, list[Any]]:
    """``region``, ``metric``, ``value`` and ``unit`` lists of a measurement frame (long or wide form)."""
    import numpy as np
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"measurements must be a pandas DataFrame, not {type(frame).__name__}")
    df = frame
    names = set(df.columns)
    if "region" not in names and df.index.name == "region":
        df = df.reset_index()
        names = set(df.columns)
    if "region" not in names:
        raise DataError(f"measurements need a 'region' column; found {', '.join(map(str, df.columns))}")
    if not {"metric", "value"} <= names:
        id_cols = ["region"] + (["unit"] if "unit" in names else [])
        value_cols = [c for c in df.columns if c not in id_cols]
        bad = [c for c in value_cols if not pd.api.types.is_numeric_dtype(df[c])]
        if bad:
            raise DataError(f"measurement columns {', '.join(map(str, bad))} are not numeric")
        df = df.melt(id_vars=id_cols, value_vars=value_cols, var_name="metric", value_name="value")
    regions, metrics = _texts(df["region"]), _texts(df["metric"])
    if len(set(zip(regions, metrics, strict=True))) != len(regions):
        seen: set[tuple[str, str]] = set()
        dups = [list(p) for p in zip(regions, metrics, strict=True) if p in seen or seen.add(p)][:3]
        raise DataError(f"measurements repeat region/metric pairs, e.g. {dups}")
    column = df["value"]
    try:
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            column = pd.to_numeric(column, errors="raise")
        values = column.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise DataError("measurement values must be numbers") from None
    finite = np.isfinite(values)
    if finite.all():
        numbers = values.tolist()
    else:  # SQLite stores NaN as NULL; make that explicit so every backend keeps the same value
        numbers = [v if ok else None for v, ok in zip(values.tolist(), finite.tolist(), strict=True)]
    if "unit" in df.columns:
        units = [
            None if u is None or (isinstance(u, float) and math.isnan(u)) else str(u) for u in df["unit"].tolist()
        ]
    else:
        units = [None] * len(regions)
    return {"region": regions, "metric": metrics, "value": numbers, "unit": units}
