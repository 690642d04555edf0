"""Analysing many photos: serial, local processes or a Dask cluster, always returning plain data.

Every item is analysed by :func:`toolkit.imaging.analyze_photo` in a worker that sets
``cv2.setNumThreads(1)`` (one OpenCV thread per process, so N workers use N cores). A worker never lets
an exception escape: an unexpected error becomes a QC failure of that photo (code ``internal_error``), so
one bad file cannot stop a batch of hundreds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from toolkit.errors import ConfigurationError

__all__ = ["BatchItem", "BatchResult", "analyze_batch", "EXECUTORS"]

#: accepted values of ``executor``
EXECUTORS = ("processes", "dask", "serial")


@dataclass(frozen=True)
class BatchItem:
    """One photo to analyse (paths, so it ships cheaply to workers).

    Attributes
    ----------
    photo : str
        Photo file.
    baseline : str, optional
        The subject's baseline photo (None for the baseline itself).
    key : object
        Caller's identifier, returned unchanged (e.g. the store's photo id).
    options : dict
        Extra keyword arguments for :func:`~toolkit.imaging.analyze_photo` (``mm_per_px``,
        ``marker_side_mm``, ``regions`` …); must pickle.
    overlays : bool or tuple of str
        Also draw the overlays and return them JPEG-encoded (:attr:`BatchResult.overlays`), so the
        process that owns the study folder writes them, wherever the worker ran: True for all, or the
        names wanted (``wrinkles``, ``displacement``, ``ghost``).
    """

    photo: str
    baseline: str | None = None
    key: Any = None
    options: dict = field(default_factory=dict)
    overlays: bool | tuple[str, ...] = False


@dataclass
class BatchResult:
    """Outcome of one item: the region table (``to_frame`` form) and the QC verdict as plain data."""

    key: Any
    photo: str
    frame: pd.DataFrame
    qc: dict
    algorithm_version: str
    seconds: float
    overlays: dict[str, bytes] = field(default_factory=dict)  # name -> JPEG bytes (BatchItem.overlays)


#: JPEG quality of returned overlays (a drawn overlay is for looking at, not for measuring)
OVERLAY_JPEG_QUALITY = 88


def _encode_overlays(overlays: dict, wanted: bool | tuple[str, ...], notes: list) -> dict[str, bytes]:
    import cv2

    out = {}
    for name, rgb in overlays.items():
        if wanted is not True and name not in wanted:
            continue
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, OVERLAY_JPEG_QUALITY])
        if ok:
            out[name] = buf.tobytes()
        else:
            notes.append(f"overlay {name!r} could not be encoded")
    return out


def _run(item: BatchItem) -> BatchResult:
    import time

    import cv2

    from toolkit.imaging.analysis import ALGORITHM_VERSION, _empty_regions, analyze_photo
    from toolkit.imaging.regions import REGION_NAMES

    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    drawn: dict[str, bytes] = {}
    try:
        res = analyze_photo(item.photo, baseline=item.baseline, overlays=bool(item.overlays), **item.options)
        frame, qc = res.to_frame(), res.qc.to_dict()
        if item.overlays and res.overlays:
            drawn = _encode_overlays(res.overlays, item.overlays, qc.setdefault("notes", []))
    except Exception as exc:  # a batch must survive anything one photo does
        frame = _empty_regions(REGION_NAMES)
        frame.insert(0, "source", item.photo)
        frame["qc_passed"] = False
        frame["algorithm_version"] = ALGORITHM_VERSION
        qc = {"passed": False, "codes": ["internal_error"], "reasons": [f"{type(exc).__name__}: {exc}"],
              "notes": [], "metrics": {}}
    return BatchResult(key=item.key, photo=item.photo, frame=frame, qc=qc, algorithm_version=ALGORITHM_VERSION,
                       seconds=time.perf_counter() - t0, overlays=drawn)


def _coerce(items: Iterable[BatchItem | str | Path | tuple]) -> list[BatchItem]:
    out = []
    for i, it in enumerate(items):
        if isinstance(it, BatchItem):
            out.append(it)
        elif isinstance(it, str | Path):
            out.append(BatchItem(photo=str(it), key=i))
        elif isinstance(it, tuple) and 1 <= len(it) <= 2:
            out.append(BatchItem(photo=str(it[0]), baseline=None if len(it) < 2 or it[1] is None else str(it[1]), key=i))
        else:
            raise ConfigurationError(
                f"batch item {i}: expected a BatchItem, a photo path or a (photo, baseline) tuple, got {it!r}"
            )
    return out


def analyze_batch(
    items: Iterable[BatchItem | str | Path | tuple],
    *,
    executor: str = "processes",
    workers: int = 2,
    scheduler: str | None = None,
    progress: bool = True,
    on_result: Callable[[BatchResult], None] | None = None,
) -> list[BatchResult]:
    """Analyse photos in parallel and return one :class:`BatchResult` per item, in input order.

    Parameters
    ----------
    items : iterable
        :class:`BatchItem` objects, photo paths, or ``(photo, baseline)`` tuples.
    executor : {'processes', 'dask', 'serial'}
        Local process pool (default), a Dask cluster, or a plain loop in this process.
    workers : int
        Processes of the local pool (ignored by ``serial``; for ``dask`` without ``scheduler`` the size of
        the local cluster started for this call).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:port``); implies ``executor='dask'``.
    progress : bool
        Show a rich progress bar on the terminal.
    on_result : callable, optional
        Called in this process with each result as it completes (e.g. to write it to the store at once).

    Returns
    -------
    list of BatchResult
    """
    batch = _coerce(items)
    if scheduler:
        executor = "dask"
    if executor not in EXECUTORS:
        raise ConfigurationError(f"unknown executor {executor!r}; accepted: {', '.join(EXECUTORS)}")
    if not isinstance(workers, int) or workers < 1:
        raise ConfigurationError(f"workers must be a positive integer, got {workers!r}")
    results: list[BatchResult | None] = [None] * len(batch)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("photos"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   disable=not progress, transient=False)

    def done(i: int, r: BatchResult) -> None:
        results[i] = r
        if on_result is not None:
            on_result(r)
        bar.advance(task)

    with bar:
        task = bar.add_task("analyse", total=len(batch))
        if executor == "serial" or not batch:
            for i, it in enumerate(batch):
                done(i, _run(it))
        elif executor == "processes":
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            # spawn: no inherited OpenCV/BLAS thread state or open database handles in the workers
            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_run, it): i for i, it in enumerate(batch)}
                for fut in as_completed(futures):
                    done(futures[fut], fut.result())
        else:
            _run_dask(batch, scheduler, workers, done)
    return [r for r in results if r is not None]


def _run_dask(batch: Sequence[BatchItem], scheduler: str | None, workers: int, done: Callable) -> None:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="5s")
            except (OSError, TimeoutError) as exc:
                raise ConfigurationError(
                    f"cannot reach the Dask scheduler at {scheduler} ({exc}); expected tcp://host:port of a "
                    "running scheduler"
                ) from exc
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
        with client:
            futures = client.map(_run, list(batch), pure=False)
            index = {f.key: i for i, f in enumerate(futures)}
            for fut in as_completed(futures):
                done(index[fut.key], fut.result())
    finally:
        if cluster is not None:
            cluster.close()
