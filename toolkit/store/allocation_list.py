"""The allocation list written by ``toolkit study randomize`` and the blinded arm codes.

``data/<study-id>/allocation.csv`` holds one row per randomisation number: ``rand_no``, ``stratum``, one
column per stratification factor, ``block``, ``block_size``, ``arm`` and, in split-face designs,
``side_<arm id>`` (``left``/``right``). ``allocation.json`` beside it records the seed, the CSV's SHA-256 and
the ``blinding_codes`` (arm id -> code). The study room's :func:`toolkit.study.allocation.read_allocation`
reads both and refuses a list that no longer matches its checksum; the store never writes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import DataError, StoreError

__all__ = ["AllocationList", "ListRow", "code_map", "derive_code_map"]

_NOT_FACTORS = {"rand_no", "stratum", "block", "block_size", "arm"}


@dataclass(frozen=True)
class ListRow:
    """One row of the allocation list."""

    rand_no: int
    #: readable stratum label, e.g. ``"age_group=ge45"``
    stratum: str
    arm_id: str
    #: split-face designs: side -> arm id
    side_map: dict[str, str] | None
    #: stratification factor -> level
    factors: dict[str, str]
    #: line in ``allocation.csv`` (header is line 1)
    line: int


class AllocationList:
    """The rows of a study's allocation list."""

    def __init__(self, path: Path, rows: list[ListRow], codes: dict[str, str]) -> None:
        self.path = path
        self.rows = rows
        #: blinding codes recorded with the list (arm id -> code)
        self.codes = codes

    @classmethod
    def read(cls, study_dir: Path) -> AllocationList:
        """Read and checksum-verify ``<study_dir>/allocation.csv``; say what to do when it is missing."""
        path = study_dir / "allocation.csv"
        if not path.is_file():
            raise StoreError(
                f"no allocation list at {path}; run `toolkit study randomize` for this study first"
            )
        from toolkit.study.allocation import read_allocation

        frame = read_allocation(study_dir)
        record = frame.attrs.get("allocation") or {}
        factor_names = [str(f) for f in (record.get("factors") or {})]
        if not factor_names:
            factor_names = [
                c for c in frame.columns if c not in _NOT_FACTORS and not str(c).startswith("side_")
            ]
        side_cols = [c for c in frame.columns if str(c).startswith("side_")]
        missing = [c for c in ("rand_no", "arm") if c not in frame.columns]
        if missing:
            raise DataError(
                f"{path}: columns {', '.join(missing)} are missing; re-run `toolkit study randomize`"
            )
        rows = []
        for line, rec in enumerate(frame.to_dict("records"), start=2):
            factors = {f: str(rec[f]) for f in factor_names if f in rec}
            side_map = {str(rec[c]): str(c)[len("side_") :] for c in side_cols} if side_cols else None
            rows.append(
                ListRow(
                    rand_no=int(rec["rand_no"]),
                    stratum="|".join(f"{k}={v}" for k, v in factors.items()) or "all",
                    arm_id=str(rec["arm"]),
                    side_map=side_map,
                    factors=factors,
                    line=line,
                )
            )
        codes = {str(k): str(v) for k, v in (record.get("blinding_codes") or {}).items()}
        return cls(path, rows, codes)

    def rows_for(self, strata: Mapping[str, Any], factors: Sequence[str]) -> list[ListRow]:
        """The rows of the subject's stratum (every factor level equal), in randomisation-number order."""
        chosen = [r for r in self.rows if all(str(strata.get(k)) == v for k, v in r.factors.items())]
        return sorted(chosen, key=lambda r: r.rand_no)


def derive_code_map(arm_ids: Sequence[str]) -> dict[str, str]:
    """A deterministic arm -> code map (``A``, ``B``, ``C`` … in sorted arm-id order)."""
    return {arm: chr(ord("A") + i) for i, arm in enumerate(sorted(arm_ids))}


def code_map(study_dir: Path, arm_ids: Sequence[str]) -> tuple[dict[str, str], str]:
    """The arm -> code map and where it came from (the ``allocation.json`` path, or ``"derived"``)."""
    path = study_dir / "allocation.json"
    if path.is_file():
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{path} is not valid JSON ({exc}); re-run `toolkit study randomize`") from None
        found = meta.get("blinding_codes") if isinstance(meta, dict) else None
        if isinstance(found, dict) and found:
            return {str(k): str(v) for k, v in found.items()}, str(path)
    return derive_code_map(arm_ids), "derived"
