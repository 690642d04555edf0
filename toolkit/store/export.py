"""Export the study's analysis datasets: SDTM-like DM, EX, AE, XF and ADaM-like ADSL, ADEFF.

Formats: CSV, Parquet and SAS XPORT v5, plus ``define.csv``, a define-style variable metadata table
(dataset, variable, label, type, length, codelist, origin, format), and with XPT ``define.xml`` (Define-XML 2.1,
checked against its schema), ``define.html`` and ``conformance.csv`` (the built-in conformance check, which
refuses the export when it finds an error). Arms stay coded (``Arm A`` …) until an unblinding
is recorded with ``toolkit study unblind``. Every XPT dataset is checked against the v5 limits before any
file is written, and each file is written under a temporary name and renamed, so a refused or failed export
leaves earlier outputs untouched.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from toolkit.errors import DataError
from toolkit.store.adae import adae_dataset
from toolkit.store.adam import adeff_dataset, adsl_dataset
from toolkit.store.adex import adex_dataset
from toolkit.store.conformance import check_datasets
from toolkit.store.datasets import Dataset, StudyRecords
from toolkit.store.define_xml import metadata_rows, publish_metadata
from toolkit.store.sdtm import sdtm_domains, sdtm_qualifiers
from toolkit.store.supp import split_long_text, split_long_variables
from toolkit.store.xpt import check_xpt, write_xpt

if TYPE_CHECKING:
    from toolkit.store.store import Store

__all__ = ["FORMATS", "analysis_dataset", "build_datasets", "export_datasets", "subject_level_dataset"]

#: export formats
FORMATS = ("csv", "parquet", "xpt")


def build_datasets(store: Store, *, blinded: bool | None = None) -> list[Dataset]:
    """DM, DS, EX, AE, DV, XF, ADSL, ADEFF, ADAE and ADEX of the study (blinded until an unblinding is
    recorded)."""
    rec = StudyRecords(store, blinded=blinded)
    sdtm: list[Dataset] = []
    qualifiers = sdtm_qualifiers(rec)
    for domain in sdtm_domains(rec):  # text over 200 bytes continues in SUPP-- (SDTM), never truncated
        parent, supp = split_long_text(domain, qualifiers.get(domain.name, ()))
        sdtm += [parent, supp] if supp is not None else [parent]
    adam = [adsl_dataset(rec), adeff_dataset(rec), adae_dataset(rec, rec.ae_dictionary), adex_dataset(rec)]
    return [*sdtm, *(split_long_variables(ds) for ds in adam)]


def analysis_dataset(store: Store, *, blinded: bool | None = None) -> pd.DataFrame:
    """The efficacy BDS dataset (ADEFF) as a DataFrame, arms coded while the study is blinded.

    Columns include USUBJID, TRTP, TRTA, PARAMCD, PARAM, AVISIT, AVISITN, AVAL, BASE, CHG, PCHG, ABLFL,
    ITTFL, SAFFL, PPROTFL and one column per stratification factor; ``SIDE`` in split-face studies.
    """
    rec = StudyRecords(store, blinded=blinded)
    ds = adeff_dataset(rec)
    frame = ds.frame.copy()
    frame.attrs["labels"] = ds.labels
    frame.attrs["blinded"] = rec.blinded
    return frame


def subject_level_dataset(store: Store, *, blinded: bool | None = None) -> pd.DataFrame:
    """ADSL as a DataFrame (one row per enrolled subject)."""
    rec = StudyRecords(store, blinded=blinded)
    ds = adsl_dataset(rec)
    frame = ds.frame.copy()
    frame.attrs["labels"] = ds.labels
    frame.attrs["blinded"] = rec.blinded
    return frame


def _formats(formats: Iterable[str] | str) -> list[str]:
    items = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats)]
    bad = [f for f in items if f not in FORMATS]
    if bad or not items:
        raise DataError(
            f"export format {', '.join(bad) or '(none)'} is not supported; accepted: {', '.join(FORMATS)}"
        )
    return list(dict.fromkeys(items))


def _replace(tmp: Path, final: Path) -> Path:
    os.replace(tmp, final)
    return final


def export_datasets(
    store: Store,
    out_dir: Path | None = None,
    formats: Iterable[str] | str = FORMATS,
    *,
    blinded: bool | None = None,
) -> dict[str, Path]:
    """Write the analysis datasets and their variable metadata.

    Parameters
    ----------
    store : Store
    out_dir : Path, optional
        Output folder; default ``data/<study-id>/analysis/``.
    formats : iterable of {'csv', 'parquet', 'xpt'} or a comma-separated string
    blinded : bool, optional
        Override the blinding state (default: blinded until ``store.unblind`` was recorded).

    Returns
    -------
    dict
        File name (e.g. ``"adeff.xpt"``, ``"define.csv"``) -> path written.

    Raises
    ------
    DataError
        An unknown format, or a dataset that does not fit SAS XPORT v5 (every problem listed, nothing written).
    """
    fmts = _formats(formats)
    out = Path(out_dir) if out_dir is not None else store.study_dir / "analysis"
    datasets = build_datasets(store, blinded=blinded)
    errors = [f for f in check_datasets(datasets) if f.severity == "error"]
    if errors:
        raise DataError("the datasets fail the conformance check; nothing was written",
                        details=[f"{f.dataset}{'.' + f.variable if f.variable else ''}: {f.message}" for f in errors])
    if "xpt" in fmts:
        problems = []
        for ds in datasets:
            problems += [f"{ds.name}: {p}" for p in check_xpt(ds.frame, ds.name, ds.label, ds.labels)]
        if problems:
            raise DataError("the datasets do not fit SAS XPORT v5; nothing was written", details=problems)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the export folder {out}: {exc.strerror}") from None
    written: dict[str, Path] = {}
    for ds in datasets:
        stem = ds.name.lower()
        for fmt in fmts:
            final = out / f"{stem}.{fmt}"
            if fmt == "xpt":
                written[final.name] = write_xpt(
                    ds.frame, final, name=ds.name, label=ds.label, labels=ds.labels,
                    formats={v.name: v.format for v in ds.variables if v.format},
                )
                continue
            tmp = out / f".{stem}.{fmt}.tmp"
            if fmt == "csv":
                ds.frame.to_csv(tmp, index=False)
            else:
                ds.frame.to_parquet(tmp, index=False)
            written[final.name] = _replace(tmp, final)
    rows = [row for ds in datasets for row in metadata_rows(ds)]
    tmp = out / ".define.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    written["define.csv"] = _replace(tmp, out / "define.csv")
    if "xpt" in fmts:  # Define-XML describes the XPT files
        info = store.info
        for path in publish_metadata(out, study_id=store.study_id, title=info.title or ""):
            written[path.name] = path
    return written
