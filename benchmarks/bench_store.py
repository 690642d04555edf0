"""Benchmark of the store: 100,000 photo measurements in, the BDS analysis dataset out, the trail verified.

Peer, in the same run and on the same database (a SQLite file, or the empty PostgreSQL database given with
``--url``): ``pandas.DataFrame.to_sql`` of the same 100,000 rows
followed by ``pandas.read_sql`` of them (no audit trail, no derivation). Figures printed:

1. insert of 1,000 photos × 100 region/metric rows the way an analysis run (``toolkit photo analyze``,
   :func:`toolkit.imaging.pipeline.analyze_pending`) writes them: ``Store.add_measurement_runs`` with
   ``WRITE_BATCH_PHOTOS`` photos per audited transaction, each run and the batch's rows recorded in the
   hash-chained audit trail, each transaction's head anchored in the signed file outside the database and
   durable on commit (SQLite ``synchronous=FULL``) vs ``to_sql`` of all rows in one go. For comparison the
   run also writes 100 further photos one per call (``Store.add_measurements``, one transaction and anchor
   each) against the same-grain peer (``to_sql`` of one photo's rows per call), and prints what 100 bare
   one-row transactions cost on the same database;
2. export: ``analysis_dataset`` (latest runs, joins, per-visit means, baseline, change from baseline) vs
   ``read_sql`` of the raw rows;
3. ``verify_audit`` (chain re-hashed, anchors' signatures, trail replayed against every table) over the
   resulting trail, and over a trail of more than 100,000 entries (100,000 re-analysis runs added, one
   audited record each).

Run: ``.venv/bin/python benchmarks/bench_store.py [--url postgresql+psycopg://user@host:port/empty_db]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

N_SUBJECTS = 100
VISITS = ("BASELINE", "S4", "S8", "S12", "FU")
PHOTOS_PER_VISIT = 2
ROWS_PER_PHOTO = 100  # 15 regions × 7 metrics, first 100 pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an empty PostgreSQL database to run on (default: a new SQLite file)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        run(workdir, args.url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(workdir: Path, url: str | None = None) -> None:
    """Build the study records in ``workdir`` (and the database at ``url``) and print the figures."""
    os.environ["TOOLKIT_DATA_DIR"] = str(workdir / "data")
    if url:
        os.environ["TOOLKIT_DB_URL"] = url
    else:
        os.environ.pop("TOOLKIT_DB_URL", None)

    from sqlalchemy import create_engine

    from toolkit.imaging.pipeline import WRITE_BATCH_PHOTOS
    from toolkit.store import open_store
    from toolkit.store.export import analysis_dataset
    from toolkit.study.allocation import randomize, write_allocation
    from toolkit.study.endpoints import PHOTO_METRICS, REGIONS
    from toolkit.study.loader import load_study

    study = load_study(REPO / "studies" / "epmc-demo")
    write_allocation(study, randomize(study, N_SUBJECTS, per_stratum=True))
    from benchmark_users import bench_login

    bench_login(study)
    store = open_store(study)
    rng = np.random.default_rng(7)
    pairs = [(r, m) for r in REGIONS for m in PHOTO_METRICS][:ROWS_PER_PHOTO]
    photo_dir = workdir / "photos"
    photo_dir.mkdir()
    photos: list[int] = []
    for i in range(N_SUBJECTS):
        sid = f"S-{i:03d}"
        age = 35 if i % 2 else 55
        store.enroll_subject(
            sid, age=age, sex="F", fitzpatrick="II", strata={"age_group": "lt45" if age < 45 else "ge45"}
        )
        store.record_consent(sid, signed_on=date(2026, 1, 5))
        store.record_checklist(sid, store.info.eligibility.all_met(), checked_on=date(2026, 1, 5))
        store.record_patch_test(sid, passed=True, read_on=date(2026, 1, 7))
        store.allocate(sid)
        for visit in VISITS:
            for k in range(PHOTOS_PER_VISIT):
                path = photo_dir / f"{sid}-{visit}-{k}.jpg"
                path.write_bytes(f"{sid}{visit}{k}".encode() * 64)
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                photos.append(store.add_photo(sid, visit_id=visit, path=path, sha256=digest))
    frames = []
    for _ in photos:
        frames.append(
            pd.DataFrame(
                {
                    "region": [p[0] for p in pairs],
                    "metric": [p[1] for p in pairs],
                    "value": rng.normal(10, 2, len(pairs)),
                }
            )
        )
    n_rows = len(photos) * ROWS_PER_PHOTO

    t0 = time.perf_counter()
    for start in range(0, len(photos), WRITE_BATCH_PHOTOS):
        batch = [(pid, frames[i], {}) for i, pid in enumerate(photos[start : start + WRITE_BATCH_PHOTOS], start=start)]
        store.add_measurement_runs(batch, algorithm_version="bench 1")
    t_insert = time.perf_counter() - t0
    n_single = 100
    t0 = time.perf_counter()  # one photo per transaction (a re-analysis of 100 photos, photo by photo)
    for pid, frame in zip(photos[:n_single], frames[:n_single], strict=True):
        store.add_measurements(pid, frame, algorithm_version="bench single", qc={})
    t_single = time.perf_counter() - t0

    t0 = time.perf_counter()
    bds = analysis_dataset(store)
    t_export = time.perf_counter() - t0

    report, t_verify, cpu_verify = timed_verify(store)

    # the peer: plain pandas on the same database, same rows, no audit trail
    rows = pd.concat(
        [f.assign(photo_id=pid) for pid, f in zip(photos, frames, strict=True)], ignore_index=True
    )
    engine = create_engine(store.url)
    backend = "SQLite file" if engine.dialect.name == "sqlite" else f"{engine.dialect.name} database"
    t0 = time.perf_counter()
    rows.to_sql("peer_measurements", engine, index=False, if_exists="replace")
    t_to_sql = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = pd.read_sql("SELECT * FROM peer_measurements", engine)
    t_read_sql = time.perf_counter() - t0
    t0 = time.perf_counter()
    for pid, frame in zip(photos[:n_single], frames[:n_single], strict=True):
        frame.assign(photo_id=pid).to_sql("peer_per_photo", engine, index=False, if_exists="append")
    t_to_sql_each = time.perf_counter() - t0
    t_commits = durable_commits(engine, n_single)
    assert len(back) == n_rows

    n_runs = 100_000
    t0 = time.perf_counter()
    add_reanalysis_runs(store, photos, n_runs)
    t_build = time.perf_counter() - t0
    big, t_verify_big, cpu_verify_big = timed_verify(store)
    store.close()
    engine.dispose()

    store_total, peer_total = t_insert + t_export, t_to_sql + t_read_sql
    print(f"store benchmark: {n_rows:,} measurements ({len(photos)} photos × {ROWS_PER_PHOTO}), {backend}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    peer_rate = n_rows / t_to_sql
    print(f"  insert  as an analysis run writes ({WRITE_BATCH_PHOTOS} photos per audited transaction and anchor): "
          f"{t_insert:.2f} s, {n_rows / t_insert:,.0f} rows/s")  # fmt: skip
    print(f"          pandas to_sql (peer), all rows in one go: {t_to_sql:.2f} s, {peer_rate:,.0f} rows/s")
    print(f"          ratio store/peer = {t_insert / t_to_sql:.2f}x")
    print(f"          one photo per call: add_measurements {t_single:.2f} s for {n_single} photos vs pandas to_sql "
          f"of one photo per call (peer) {t_to_sql_each:.2f} s: ratio {t_single / t_to_sql_each:.2f}x "
          f"({n_single} bare one-row durable transactions: {t_commits:.2f} s)")  # fmt: skip
    print(f"  export  analysis_dataset (BDS, {len(bds)} records): {t_export:5.2f} s")
    print(
        f"          pandas read_sql (peer):        {t_read_sql:7.2f} s   ratio store/peer = {t_export / t_read_sql:5.1f}x"
    )
    print(
        f"  total   store {store_total:.2f} s vs peer {peer_total:.2f} s: ratio {store_total / peer_total:.1f}x"
    )
    print(f"  verify_audit over {report.entries:,} entries + table replay: {t_verify:.2f} s (CPU {cpu_verify:.2f} s)")
    print(f"  verify_audit over {big.entries:,} entries + table replay ({n_runs:,} re-analysis runs added in "
          f"{t_build:.1f} s): {t_verify_big:.2f} s (CPU {cpu_verify_big:.2f} s)")  # fmt: skip


def timed_verify(store):
    """``verify_audit`` of the whole trail and tables (files left out), its seconds and CPU seconds (the
    process's own; less sensitive to other load on the machine); stops if it fails."""
    from toolkit.store.audit import verify_audit

    t0, cpu0 = time.perf_counter(), time.process_time()
    report = verify_audit(store, check_files=False)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if not report.ok:
        raise SystemExit(f"audit trail did not verify: {report.problems()[:3]}")
    return report, elapsed, cpu


def add_reanalysis_runs(store, photos: list[int], n_runs: int) -> None:
    """Record ``n_runs`` re-analysis runs (QC only, no metrics), one audited record and trail entry each."""
    from toolkit.store import models as m
    from toolkit.store.audited_inserts import insert_records

    now = m.utcnow()
    with store.session() as s:
        insert_records(
            s, m.MeasurementRunRow,
            [{"photo_id": photos[i % len(photos)], "algorithm_version": f"qc rerun {i // len(photos)}",
              "qc": {"sharpness": round(0.5 + (i % 50) / 100, 2), "passed": i % 7 != 0}, "created_at": now}
             for i in range(n_runs)],
        )  # fmt: skip


def durable_commits(engine, n: int) -> float:
    """Seconds for ``n`` one-row transactions on the peer's database (on SQLite the file's WAL, FULL sync)."""
    from sqlalchemy import Column, Integer, MetaData, Table, insert

    table = Table("peer_commits", MetaData(), Column("i", Integer))
    table.create(engine)
    stmt = insert(table)
    t0 = time.perf_counter()
    for i in range(n):
        with engine.begin() as conn:
            conn.execute(stmt, {"i": i})
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
