"""Randomization: stratified permuted blocks of varying size, and the allocation list on disk.

Algorithm (recorded as :data:`ALGORITHM` in ``allocation.json``)
----------------------------------------------------------------
1. ``numpy.random.SeedSequence(seed)`` is spawned into ``1 + n_strata`` independent children: the first
   draws the blinding codes, child ``i`` draws the list of stratum ``i`` with
   ``numpy.random.Generator(PCG64(child))``. A stratum's list therefore does not depend on the other
   strata or on how many subjects are requested: a longer list starts with the shorter one.
2. Per stratum, blocks are appended until the list holds the requested number of subjects: each block's
   size is drawn uniformly from the plan's ``block_sizes`` (``Generator.integers``); a block of size ``s`` holds every arm
   ``ratio · s / sum(ratios)`` times (split-face: each of the two side sequences ``s / 2`` times), in an
   order drawn by ``Generator.permutation``. Blocks are always complete.
3. Arms get blinding codes A, B, C … in an order drawn from the first child.

NumPy does not promise identical streams across versions, so the NumPy, Python and toolkit versions are
stored beside the seed, with the SHA-256 of the CSV.
"""

from __future__ import annotations

import csv
import datetime as _dt
import errno
import hashlib
import io
import json
import math
import os
import platform
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import toolkit
from toolkit.errors import DataError
from toolkit.paths import study_data_dir
from toolkit.study.model import Study

if TYPE_CHECKING:  # numpy and pandas load on first use: `toolkit --help` and model imports stay fast
    import numpy as np
    import pandas as pd

__all__ = [
    "ALGORITHM",
    "ALLOCATION_CSV",
    "ALLOCATION_JSON",
    "AllocationExistsError",
    "AllocationRows",
    "allocate",
    "generate_allocation",
    "randomize",
    "write_allocation",
    "read_allocation",
]

#: name of the algorithm, stored with every list
ALGORITHM = "stratified permuted blocks of varying size; numpy.random.Generator(PCG64), SeedSequence.spawn per stratum"
#: file names inside ``data/<study-id>/``
ALLOCATION_CSV = "allocation.csv"
ALLOCATION_JSON = "allocation.json"
_BASE_COLUMNS = ("rand_no", "stratum", "block", "block_size", "arm")


class AllocationExistsError(DataError):
    """An allocation list exists already; it is never overwritten."""


def _units(study: Study) -> list[str]:
    """The treatment units one 'ratio sum' of a block holds (arm ids, or split-face left-side arm ids)."""
    if study.design == "split-face":
        return [arm.id for arm in study.arms]
    return [arm.id for arm in study.arms for _ in range(arm.ratio)]


def _blinding_codes(study: Study, rng: np.random.Generator) -> dict[str, str]:
    order = rng.permutation(len(study.arms))
    return {study.arms[int(i)].id: string.ascii_uppercase[k] for k, i in enumerate(order)}


@dataclass(frozen=True)
class AllocationRows:
    """An allocation list without pandas: column names, rows of plain values, and its record."""

    #: column names, in order
    columns: list[str]
    #: one list of values per randomization number
    rows: list[list[object]]
    #: what ``allocation.json`` records (seed, versions, algorithm, blinding codes ...)
    record: dict[str, object]


def generate_allocation(
    study: Study,
    n_subjects: int | None = None,
    *,
    per_stratum: bool = False,
    seed: int | None = None,
) -> AllocationRows:
    """The allocation list as plain rows (what :func:`randomize` wraps in a DataFrame).

    Parameters are those of :func:`randomize`. Only NumPy is needed, so the command line can write a list
    without loading pandas.
    """
    import numpy as np

    from toolkit.errors import ConfigurationError

    plan = study.randomization
    n = n_subjects if n_subjects is not None else plan.subjects
    if n is None or isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigurationError(
            f"study {study.id}: how many subjects? give n_subjects (--subjects N, an integer ≥ 1) or set "
            f"randomization.subjects in study.yaml; got {n!r}"
        )
    seed = plan.seed if seed is None else int(seed)
    strata = plan.strata()
    per_list = int(n) if per_stratum else math.ceil(int(n) / len(strata))
    children = np.random.SeedSequence(seed).spawn(1 + len(strata))
    codes = _blinding_codes(study, np.random.Generator(np.random.PCG64(children[0])))
    units = _units(study)
    unit_size = 2 if study.design == "split-face" else len(units)
    digits = max(3, len(str(per_list + max(plan.block_sizes))))
    split_face = study.design == "split-face"
    sizes = list(plan.block_sizes)
    arm_ids = study.arm_ids

    rows: list[list[object]] = []
    block_no = 0
    for index, levels in enumerate(strata, start=1):
        rng = np.random.Generator(np.random.PCG64(children[index]))
        seq = 0
        while seq < per_list:
            size = sizes[int(rng.integers(len(sizes)))]
            block_no += 1
            content = units * (size // unit_size)
            for pos in rng.permutation(len(content)):
                seq += 1
                arm = content[int(pos)]
                row: list[object] = [index * 10**digits + seq, index, *levels.values(), block_no, size, arm]
                if split_face:
                    row += ["left" if arm == arm_id else "right" for arm_id in arm_ids]
                rows.append(row)
    columns = ["rand_no", "stratum", *plan.factor_names, "block", "block_size", "arm"]
    if split_face:
        columns += [f"side_{arm_id}" for arm_id in arm_ids]
    record = {
        "study_id": study.id,
        "design": study.design,
        "seed": seed,
        "algorithm": ALGORITHM,
        "bit_generator": "PCG64",
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "toolkit_version": toolkit.__version__,
        "block_sizes": list(plan.block_sizes),
        "factors": {f.name: list(f.levels) for f in plan.factors},
        "strata": len(strata),
        "subjects_requested": int(n),
        "per_stratum": bool(per_stratum),
        "list_length_per_stratum": per_list,
        "rows": len(rows),
        "arms": {a.id: {"name": a.name, "ratio": a.ratio, "modality": a.modality} for a in study.arms},
        "blinding_codes": codes,
    }
    return AllocationRows(columns, rows, record)


def randomize(
    study: Study,
    n_subjects: int | None = None,
    *,
    per_stratum: bool = False,
    seed: int | None = None,
) -> pd.DataFrame:
    """Generate the allocation list of ``study``.

    Parameters
    ----------
    study : Study
        The study (its ``randomization`` section gives seed, block sizes and factors).
    n_subjects : int, optional
        Subjects to cover: the total (shared evenly across strata, rounded up) or, with
        ``per_stratum=True``, the length of each stratum's list. Defaults to ``randomization.subjects``.
    per_stratum : bool
        Read ``n_subjects`` as the list length of every stratum.
    seed : int, optional
        Override the study's seed (for simulations; a real list uses the recorded study seed).

    Returns
    -------
    pandas.DataFrame
        One row per randomization number: ``rand_no``, ``stratum``, one column per stratification factor,
        ``block``, ``block_size``, ``arm`` (arm id; in split-face designs the arm on the left side) and, in
        split-face designs, ``side_<arm id>`` (``left``/``right``). ``frame.attrs["allocation"]`` holds the
        record written to ``allocation.json`` (seed, versions, algorithm, blinding codes).

    Raises
    ------
    toolkit.errors.ConfigurationError
        When no number of subjects is given or known.

    Examples
    --------
    >>> frame = randomize(load_study("studies/epmc-demo"), 60)   # doctest: +SKIP
    >>> frame.groupby("block")["arm"].value_counts().unstack().eq(frame.groupby("block").size() // 3, axis=0).all().all()  # doctest: +SKIP
    True
    """
    import pandas as pd

    allocation = generate_allocation(study, n_subjects, per_stratum=per_stratum, seed=seed)
    frame = pd.DataFrame(allocation.rows, columns=allocation.columns)
    frame.attrs["allocation"] = allocation.record
    return frame


def _study_file_sha256(study: Study) -> str | None:
    if study.path is None:
        return None
    file = study.path / "study.yaml"
    return hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else None


def _publish(tmp: Path, final: Path) -> None:
    """Give ``tmp``'s content the name ``final`` only if ``final`` does not exist.

    A hard link never replaces an existing name and appears complete at once. File systems without hard
    links get an exclusive create (``O_EXCL``) and a copy instead; both raise ``FileExistsError``.
    """
    try:
        os.link(tmp, final)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
    fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    with os.fdopen(fd, "wb") as handle:
        handle.write(tmp.read_bytes())
        handle.flush()
        os.fsync(handle.fileno())


def write_allocation(study: Study, frame: pd.DataFrame, folder: Path | str | None = None) -> Path:
    """Write ``allocation.csv`` and ``allocation.json``; never replace an existing list.

    Parameters
    ----------
    study : Study
        The study the list belongs to.
    frame : pandas.DataFrame
        The list from :func:`randomize` (its ``attrs["allocation"]`` record is written as JSON).
    folder : str or Path, optional
        Where to write; defaults to ``data/<study-id>/`` under the data root.

    Returns
    -------
    Path
        The CSV file. The JSON beside it holds seed, versions, algorithm, blinding codes and the CSV's SHA-256.

    Raises
    ------
    AllocationExistsError
        When either file exists already (nothing is written).
    toolkit.errors.DataError
        When ``frame`` is not an allocation list of this study.
    """
    missing = [c for c in _BASE_COLUMNS if c not in frame.columns]
    record = dict(frame.attrs.get("allocation") or {})
    if missing or record.get("study_id") != study.id:
        raise DataError(
            f"not an allocation list of study {study.id}: "
            + (f"columns {missing} are missing" if missing else f"it was made for {record.get('study_id')!r}")
            + "; make it with toolkit.study.randomize(study, n)"
        )
    rows = [[v.item() if hasattr(v, "item") else v for v in row] for row in frame.itertuples(index=False)]
    return _write_files(study, AllocationRows([str(c) for c in frame.columns], rows, record), folder)


def allocate(
    study: Study,
    n_subjects: int | None = None,
    *,
    per_stratum: bool = False,
    folder: Path | str | None = None,
) -> Path:
    """Randomize and write the list in one step (no pandas needed); see :func:`randomize`.

    Returns
    -------
    Path
        The CSV file written.
    """
    return _write_files(study, generate_allocation(study, n_subjects, per_stratum=per_stratum), folder)


def _csv_bytes(columns: list[str], rows: list[list[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _write_files(study: Study, allocation: AllocationRows, folder: Path | str | None) -> Path:
    folder = Path(folder) if folder is not None else study_data_dir(study.id)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the folder {folder} for the allocation list ({exc.strerror}); give a writable folder "
            "(--out, or TOOLKIT_DATA_DIR)"
        ) from None
    csv_path, json_path = folder / ALLOCATION_CSV, folder / ALLOCATION_JSON
    existing = [p for p in (csv_path, json_path) if p.exists()]
    if existing:
        raise AllocationExistsError(
            f"{existing[0]} exists: an allocation list is never overwritten. Keep it; a new list needs a new "
            "study id or folder and a documented reason"
        )
    arm_column = allocation.columns.index("arm")
    unknown = sorted({str(row[arm_column]) for row in allocation.rows} - set(study.arm_ids))
    if unknown:
        raise DataError(f"allocation list names arms {unknown} that study {study.id} does not have ({study.arm_ids})")
    csv_bytes = _csv_bytes(allocation.columns, allocation.rows)
    record = dict(allocation.record)
    record.update(
        {
            "csv_file": ALLOCATION_CSV,
            "csv_sha256": hashlib.sha256(csv_bytes).hexdigest(),
            "study_file_sha256": _study_file_sha256(study),
            "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
    )
    json_bytes = (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    temps: list[Path] = []
    published: list[Path] = []
    try:
        for payload in (csv_bytes, json_bytes):
            fd, name = tempfile.mkstemp(dir=folder, prefix=".allocation-", suffix=".tmp")
            temps.append(Path(name))
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(name, 0o444)  # the list is a record: read-only once written
        for tmp, final in zip(temps, (csv_path, json_path), strict=True):
            try:
                _publish(tmp, final)
            except FileExistsError:
                for path in published:  # another process won the race: leave its file, remove ours
                    path.unlink(missing_ok=True)
                raise AllocationExistsError(
                    f"{final} appeared while writing; an allocation list is never overwritten"
                ) from None
            published.append(final)
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            raise
        for path in published:
            path.unlink(missing_ok=True)
        raise DataError(f"cannot write the allocation list to {folder} ({exc.strerror}); nothing was kept") from None
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return csv_path


def read_allocation(source: Study | Path | str) -> pd.DataFrame:
    """Read an allocation list and check it against the SHA-256 recorded beside it.

    Parameters
    ----------
    source : Study, str or Path
        A study (its ``data/<id>/`` folder is read) or the folder holding ``allocation.csv``.

    Returns
    -------
    pandas.DataFrame
        The list; ``attrs["allocation"]`` holds the JSON record (incl. ``blinding_codes``).

    Raises
    ------
    toolkit.errors.DataError
        When a file is missing or the CSV does not match its recorded checksum.
    """
    folder = study_data_dir(source.id) if isinstance(source, Study) else Path(source)
    import pandas as pd

    csv_path, json_path = folder / ALLOCATION_CSV, folder / ALLOCATION_JSON
    for path in (csv_path, json_path):
        if not path.is_file():
            raise DataError(f"{path} not found; make the list with `toolkit study randomize <study>`")
    try:
        record = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{json_path} is not valid JSON ({exc}); it cannot vouch for the list") from None
    data = csv_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != record.get("csv_sha256"):
        raise DataError(
            f"{csv_path} does not match the SHA-256 recorded in {json_path.name} "
            f"({digest[:12]}… vs {str(record.get('csv_sha256'))[:12]}…): the list was changed after it was written"
        )
    text_columns = {"arm": str, **dict.fromkeys(record.get("factors", {}), str)}
    frame = pd.read_csv(csv_path, dtype=text_columns, keep_default_na=False)
    frame.attrs["allocation"] = record
    return frame
