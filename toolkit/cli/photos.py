"""Commands of the photos room: ``toolkit photos capture | ingest | analyze``."""

from __future__ import annotations

from pathlib import Path

import typer

_STUDY_HELP = "The study folder (studies/<id>) or its study.yaml."


def _load_study(path: Path):
    from toolkit.study import load_study

    return load_study(path)


def _baseline_visit_id(study) -> str:
    try:
        return study.schedule.baseline.id
    except (AttributeError, StopIteration):
        return study.visits[0].id


def _baseline_photos(store, study) -> dict[str, Path]:
    """Each subject's first frontal photo at the baseline visit."""
    base_visit = _baseline_visit_id(study)
    out: dict[str, Path] = {}
    for rec in store.photos():
        if rec.visit_id == base_visit and rec.view == "frontal" and rec.subject_id not in out:
            out[rec.subject_id] = Path(rec.path)
    return out


def ingest(
    files: list[Path] = typer.Argument(..., help="Photo files (JPEG, PNG, TIFF).", show_default=False),
    study: Path = typer.Option(..., "--study", help=_STUDY_HELP),
    subject: str = typer.Option(..., "--subject", help="Subject id, e.g. S-001."),
    visit: str = typer.Option(..., "--visit", help="Visit id of the study, e.g. BASELINE."),
    view: str = typer.Option("frontal", "--view", help="frontal, left45 or right45."),
) -> None:
    """Store existing photo files read-only with SHA-256 and register them in the study's store."""
    import os

    from rich.console import Console

    from toolkit.errors import DataError, ToolkitError
    from toolkit.imaging.photo_io import PhotoRejected
    from toolkit.imaging.raw_store import store_raw_photo
    from toolkit.store import open_store

    if view not in {"frontal", "left45", "right45"}:
        raise DataError(f"--view {view!r} not accepted; accepted: frontal, left45, right45")
    st = _load_study(study)
    console = Console()
    problems: list[str] = []
    with open_store(st) as store:
        for f in files:
            try:
                saved = store_raw_photo(f, study_id=st.id, subject_id=subject, visit_id=visit,
                                        meta={"view": view, "source": "ingest"})
            except (PhotoRejected, DataError) as exc:
                problems.append(str(exc))
                continue
            try:
                pid = store.add_photo(subject, visit_id=visit, path=saved.path, sha256=saved.sha256, view=view,
                                      meta=saved.meta)
            except ToolkitError as exc:
                if not saved.already_present:  # keep the raw store and the database in step
                    for p in (saved.path, saved.path.with_name(saved.path.name + ".json")):
                        os.chmod(p, 0o644)
                        p.unlink(missing_ok=True)
                problems.append(f"{f}: {exc}")
                continue
            console.print(f"photo #{pid}: {f} → {saved.path} (sha256 {saved.sha256[:12]}…)", highlight=False)
    if problems:
        raise DataError(f"{len(problems)} of {len(files)} file(s) not ingested", details=problems)


def capture(
    study: Path = typer.Option(..., "--study", help=_STUDY_HELP),
    subject: str = typer.Option(..., "--subject", help="Subject id."),
    visit: str = typer.Option(..., "--visit", help="Visit id."),
    source: str = typer.Option("0", "--source", help="Camera index (0, 1 …), stream URL or video file."),
    override_reason: str | None = typer.Option(
        None, "--override-reason", help="Save the best frame even if no frame passes QC, recording this reason."
    ),
    min_score: float = typer.Option(0.8, "--min-score", min=0.0, max=1.0, help="Alignment score required (0–1)."),
    max_frames: int = typer.Option(150, "--max-frames", min=1, help="Frames to try."),
    preview_dir: Path | None = typer.Option(
        None, "--preview-dir", help="Where headless previews go (default data/<study>/photos/derived/capture)."
    ),
) -> None:
    """Capture a frontal photo with a baseline ghost and alignment score; save only when QC passes."""
    import os

    from rich.console import Console

    from toolkit.errors import CheckFailed
    from toolkit.imaging.capture import capture_photo
    from toolkit.imaging.photo_io import load_photo
    from toolkit.imaging.raw_store import store_raw_photo
    from toolkit.paths import study_data_dir
    from toolkit.store import open_store

    st = _load_study(study)
    console = Console()
    with open_store(st) as store:
        base_path = _baseline_photos(store, st).get(subject)
        baseline = load_photo(base_path)[0] if base_path is not None and visit != _baseline_visit_id(st) else None
        holder: dict = {}

        def keep(png: Path, meta: dict) -> tuple[Path, str]:
            saved = store_raw_photo(png, study_id=st.id, subject_id=subject, visit_id=visit,
                                    meta={**meta, "view": "frontal", "source": "capture"})
            try:
                holder["id"] = store.add_photo(subject, visit_id=visit, path=saved.path, sha256=saved.sha256,
                                               meta=saved.meta, qc=meta.get("qc"))
            except Exception:
                for p in (saved.path, saved.path.with_name(saved.path.name + ".json")):
                    os.chmod(p, 0o644)
                    p.unlink(missing_ok=True)
                raise
            return saved.path, saved.sha256

        pdir = preview_dir or study_data_dir(st.id) / "photos" / "derived" / "capture" / subject / visit
        result = capture_photo(source, store=keep, baseline=baseline, min_score=min_score, max_frames=max_frames,
                               override_reason=override_reason, preview_dir=pdir,
                               log=lambda line: console.print(line, highlight=False))
    if result.saved_path is None:
        raise CheckFailed(f"no frame of {source!r} passed QC and alignment in {result.frames_seen} frames; "
                          "nothing saved (use --override-reason to save the best frame)",
                          details=result.qc.reasons)
    console.print(f"photo #{holder.get('id')} saved: {result.saved_path}", highlight=False)


def analyze(
    study: Path = typer.Option(..., "--study", help=_STUDY_HELP),
    workers: int = typer.Option(2, "--workers", min=1, help="Local worker processes."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Dask scheduler address, tcp://host:port."),
    serial: bool = typer.Option(False, "--serial", help="Run in this process (debugging)."),
    mm_per_px: float | None = typer.Option(None, "--mm-per-px", min=0.0, help="Pixel size for every photo (mm)."),
    marker_side_mm: float | None = typer.Option(None, "--marker-side-mm", min=0.0, help="ArUco marker side (mm)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Analyse every pending photo of the study and write the metrics to the store."""
    from rich.console import Console

    from toolkit.imaging.analysis import METRIC_COLUMNS
    from toolkit.imaging.batch import BatchItem, analyze_batch
    from toolkit.store import open_store

    st = _load_study(study)
    console = Console()
    template = Path(st.path) / "roi_template.yaml"
    options: dict = {}
    if template.is_file():
        options["regions"] = str(template)
    if mm_per_px:
        options["mm_per_px"] = mm_per_px
    if marker_side_mm:
        options["marker_side_mm"] = marker_side_mm
    with open_store(st) as store:
        pending = store.pending_photos()
        if not pending:
            console.print("no pending photos")
            return
        baselines = _baseline_photos(store, st)
        items = []
        for rec in pending:
            base = baselines.get(rec.subject_id)
            is_base = base is not None and Path(base) == Path(rec.path)
            items.append(BatchItem(photo=str(rec.path), baseline=None if is_base or base is None else str(base),
                                   key=rec.photo_id, options=options))
        counts = {"passed": 0, "failed": 0}

        def write(res) -> None:
            frame = res.frame[["region", *METRIC_COLUMNS]]
            store.add_measurements(res.key, frame, algorithm_version=res.algorithm_version, qc=res.qc)
            counts["passed" if res.qc.get("passed") else "failed"] += 1

        analyze_batch(items, executor="serial" if serial else "processes", workers=workers, scheduler=scheduler,
                      progress=progress, on_result=write)
    console.print(f"analysed {len(items)} photo(s): {counts['passed']} passed QC, {counts['failed']} failed QC")


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add this room's commands to the application."""
    groups["photos"].command("ingest")(ingest)
    groups["photos"].command("capture")(capture)
    groups["photos"].command("analyze")(analyze)
