"""A built-in conformance check of the exported datasets, run before they are written (CDISC CORE cannot run
offline): required and expected variables per dataset, variable names, labels and lengths, ISO 8601 dates,
values inside their codelists, and one record per key.

Findings have a severity: ``error`` (the dataset would be rejected: a required variable missing, a name or
label over the SAS limits, duplicate keys) or ``warning`` (worth a look: an expected variable missing, a
value outside its codelist, a date that is not ISO 8601). The report lists them in its appendix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from toolkit.store.datasets import Dataset

__all__ = ["Finding", "check_datasets", "findings_frame"]

#: variables every dataset of a kind must have
_REQUIRED = {
    "SDTM": ("STUDYID", "DOMAIN", "USUBJID"),
    "SUPP": ("STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QLABEL", "QVAL"),
    "ADSL": ("STUDYID", "USUBJID", "TRT01P", "TRT01A", "SAFFL", "ITTFL"),
    "BDS": ("STUDYID", "USUBJID", "PARAMCD", "PARAM", "AVAL"),
    "OCCDS": ("STUDYID", "USUBJID", "TRTA", "AEDECOD", "AEBODSYS", "TRTEMFL"),
}
#: variables a dataset of a kind is expected to have
_EXPECTED = {
    "DM": ("SUBJID", "SITEID", "AGE", "SEX", "ARMCD", "ARM", "RFSTDTC"),
    "AE": ("AESEQ", "AETERM", "AEDECOD", "AEBODSYS", "AESTDTC"),
    "EX": ("EXSEQ", "EXTRT", "EXSTDTC"),
    "DS": ("DSSEQ", "DSTERM", "DSDECOD", "DSCAT", "DSSTDTC"),
    "ADSL": ("EOSSTT", "EOTSTT", "PPROTFL"),
}
_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,7}$")
_ISO = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?([+-]\d{2}:\d{2}|Z)?)?)?)?$")


@dataclass(frozen=True)
class Finding:
    """One conformance finding."""

    severity: str
    dataset: str
    variable: str
    message: str


def _kind(ds: Dataset) -> str:
    if ds.name.startswith("SUPP"):
        return "SUPP"
    if ds.name == "ADSL":
        return "ADSL"
    if ds.name == "ADAE":
        return "OCCDS"
    if ds.name.startswith("AD"):
        return "BDS"
    return "SDTM"


def _codelist(spec: str) -> set[str] | None:
    parts = [p.strip() for p in str(spec or "").split(";") if p.strip()]
    if len(parts) < 2:
        return None  # a named external codelist (NCOMPLT, MedDRA) is not checked here
    return {p.split(" = ", 1)[0].strip() for p in parts}


def check_datasets(datasets: Sequence[Dataset], keys: dict[str, Sequence[str]] | None = None) -> list[Finding]:
    """Check ``datasets``; ``keys`` maps a dataset name to the variables that identify one record."""
    from toolkit.store.dataset_meta import DATASET_META

    keys = keys or {name: meta[4] for name, meta in DATASET_META.items()}
    out: list[Finding] = []
    for ds in datasets:
        cols = set(ds.frame.columns)
        kind = _kind(ds)
        for var in _REQUIRED[kind]:
            if var not in cols:
                out.append(Finding("error", ds.name, var, f"required variable {var} is missing"))
        for var in _EXPECTED.get(ds.name, ()):
            if var not in cols:
                out.append(Finding("warning", ds.name, var, f"expected variable {var} is missing"))
        if kind == "SDTM" and "DOMAIN" in cols and ds.frame["DOMAIN"].notna().any() and \
                set(ds.frame["DOMAIN"].dropna()) != {ds.name}:
            out.append(Finding("error", ds.name, "DOMAIN", f"DOMAIN values {sorted(set(ds.frame['DOMAIN'].dropna()))} "
                                                           f"differ from the dataset name {ds.name}"))
        if len(ds.label) > 40:
            out.append(Finding("error", ds.name, "", f"dataset label is {len(ds.label)} characters (at most 40)"))
        for v in ds.variables:
            if not _NAME.match(v.name):
                out.append(Finding("error", ds.name, v.name, "variable name must be 1-8 upper-case letters, digits "
                                                             "or _, starting with a letter"))
            if len(v.label) > 40:
                out.append(Finding("error", ds.name, v.name, f"label is {len(v.label)} characters (at most 40)"))
            values = ds.frame[v.name] if v.name in cols else pd.Series(dtype=object)
            if v.type == "Char":
                too_long = values.dropna().astype(str).map(lambda s: len(s.encode("utf-8")) > 200)
                if too_long.any():
                    out.append(Finding("error", ds.name, v.name, f"{int(too_long.sum())} value(s) over 200 bytes"))
            if v.name.endswith("DTC"):
                bad = values.dropna().astype(str)
                bad = bad[(bad != "") & ~bad.str.match(_ISO)]
                if len(bad):
                    out.append(Finding("warning", ds.name, v.name, f"{len(bad)} value(s) not ISO 8601, e.g. "
                                                                   f"{bad.iloc[0]!r}"))
            allowed = _codelist(v.codelist) if v.type == "Char" else None
            if allowed:
                present = set(values.dropna().astype(str)) - {""}
                outside = sorted(present - allowed)
                if outside:
                    out.append(Finding("warning", ds.name, v.name, f"value(s) {', '.join(outside[:5])} outside the "
                                                                   f"codelist ({'; '.join(sorted(allowed))})"))
        key = [k for k in keys.get(ds.name, ()) if k in cols]
        if "SIDE" in cols and key:  # split-face: each side of the face is its own record
            key.append("SIDE")
        if key and len(key) >= len(keys.get(ds.name, ())) and ds.frame.duplicated(key).any():
            n = int(ds.frame.duplicated(key, keep=False).sum())
            out.append(Finding("error", ds.name, ", ".join(key), f"{n} records share their key ({', '.join(key)}): "
                                                                  "one record per key expected"))
    return out


def findings_frame(findings: Sequence[Finding]) -> pd.DataFrame:
    """Findings as a table (``severity``, ``dataset``, ``variable``, ``message``)."""
    return pd.DataFrame([f.__dict__ for f in findings], columns=["severity", "dataset", "variable", "message"])
