"""Commands of the photos room: ``toolkit photos capture | ingest | analyze | qc``."""

from __future__ import annotations

from pathlib import Path

import typer

_STUDY_HELP = "The study folder (studies/<id>) or its study.yaml."


def _load_study(path: Path):
    from toolkit.study import load_study

    return load_study(path)


def ingest(
    files: list[Path] = typer.Argument(..., help="Photo files (JPEG, PNG, TIFF).", show_default=False),
    study: Path = typer.Option(..., "--study", help=_STUDY_HELP),
    subject: str = typer.Option(..., "--subject", help="Subject id, e.g. S-001."),
    visit: str = typer.Option(..., "--visit", help="Visit id of the study, e.g. BASELINE."),
    view: str = typer.Option("frontal", "--view", help="frontal, left45 or right45."),
) -> None:
    """Store existing photo files read-only with SHA-256 and register them in the study's store."""
    from rich.console import Console

    from toolkit.cli.login import open_study_store
    from toolkit.errors import DataError, ToolkitError
    from toolkit.imaging.pipeline import VIEWS, ingest_photo_record

    if view not in VIEWS:
        raise DataError(f"--view {view!r} not accepted; accepted: {', '.join(VIEWS)}")
    st = _load_study(study)
    console = Console()
    problems: list[str] = []
    with open_study_store(st) as store:
        for f in files:
            try:
                rec = ingest_photo_record(store, st, f, subject_id=subject, visit_id=visit, view=view,
                                          meta={"source": "ingest"})
            except ToolkitError as exc:
                # file problems already name the file; the store's refusals (unknown subject …) do not
                message = str(exc)
                problems.append(message if str(f) in message else f"{f}: {message}")
                continue
            console.print(f"photo #{rec.photo_id}: {f} → {rec.path} (sha256 {rec.sha256[:12]}…)", highlight=False)
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
    from rich.console import Console

    from toolkit.cli.login import open_study_store
    from toolkit.errors import CheckFailed
    from toolkit.imaging.capture import capture_photo
    from toolkit.imaging.photo_io import load_photo
    from toolkit.imaging.pipeline import baseline_photo_for, ingest_photo_record
    from toolkit.paths import study_data_dir

    st = _load_study(study)
    console = Console()
    with open_study_store(st) as store:
        base_path = baseline_photo_for(store, st, subject, visit)
        baseline = load_photo(base_path)[0] if base_path is not None else None
        holder: dict = {}

        def keep(png: Path, meta: dict) -> tuple[Path, str]:
            rec = ingest_photo_record(store, st, png, subject_id=subject, visit_id=visit, view="frontal",
                                      meta={**meta, "source": "capture"}, qc=meta.get("qc"))
            holder["id"] = rec.photo_id
            return rec.path, rec.sha256

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
    overlays: bool = typer.Option(True, "--overlays/--no-overlays",
                                  help="Keep each photo's wrinkle and displacement overlays under photos/derived/."),
) -> None:
    """Analyse every pending photo of the study and write the metrics to the store."""
    from rich.console import Console

    from toolkit.cli.login import open_study_store
    from toolkit.imaging.pipeline import analyze_pending

    st = _load_study(study)
    console = Console()
    with open_study_store(st) as store:
        counts = analyze_pending(store, st, workers=workers, scheduler=scheduler,
                                 executor="serial" if serial else "processes", mm_per_px=mm_per_px,
                                 marker_side_mm=marker_side_mm, progress=progress, overlays=overlays)
    if not counts["analysed"]:
        console.print("no pending photos")
        return
    console.print(f"analysed {counts['analysed']} photo(s): {counts['passed']} passed QC, "
                  f"{counts['failed']} failed QC")
    if counts["failed"]:
        console.print(f"the reasons, photo by photo: toolkit photos qc --study {study} --failed-only",
                      highlight=False)
    if overlays:
        console.print(f"{counts['overlays']} overlay image(s) under {store.study_dir / 'photos' / 'derived'}"
                      + (f"; {counts['overlays_failed']} could not be written (see the log)"
                         if counts["overlays_failed"] else ""), highlight=False)


_STATUS_STYLE = {"passed": "green", "failed": "bold red", "not analysed yet": "yellow"}


def qc(
    study: Path = typer.Option(..., "--study", help=_STUDY_HELP),
    failed_only: bool = typer.Option(False, "--failed-only", help="List only the photos that failed QC."),
    csv: Path | None = typer.Option(None, "--csv", help="Also write the listing to this CSV file.",
                                    dir_okay=False),
) -> None:
    """List every photo of the study with its QC status (passed, failed, not analysed yet), reasons, flags and notes."""
    from rich.console import Console
    from rich.table import Table

    from toolkit.imaging.qc_listing import (
        STATUS_FAILED,
        STATUS_PASSED,
        STATUS_PENDING,
        flat_qc_listing,
        qc_listing,
    )
    from toolkit.store import open_store

    st = _load_study(study)
    console = Console()
    with open_store(st, create=False) as store:
        listing = qc_listing(store, st)
    counts = {s: int((listing["status"] == s).sum()) for s in (STATUS_PASSED, STATUS_FAILED, STATUS_PENDING)}
    shown = listing[listing["status"] == STATUS_FAILED] if failed_only else listing
    if csv is not None:
        _write_csv_atomically(flat_qc_listing(shown), csv)
    if listing.empty:
        console.print(f"no photos stored for study {st.id}", highlight=False)
        return
    table = Table(title=f"Photo QC, study {st.id}" + (" (failed only)" if failed_only else ""), show_lines=True)
    for name, opts in (("Subject", {"no_wrap": True}), ("Visit", {"no_wrap": True}), ("View", {}),
                       ("Photo", {}), ("QC", {"no_wrap": True}), ("Reasons", {"ratio": 3}),
                       ("Flags", {"ratio": 2}), ("Notes", {"ratio": 2})):
        table.add_column(name, **opts)
    for row in shown.itertuples(index=False):
        table.add_row(row.subject_id, row.visit_id, row.view, f"#{row.photo_id} {row.file}",
                      f"[{_STATUS_STYLE[row.status]}]{row.status}[/]", _bullets(row.reasons), _bullets(row.flags),
                      _bullets(row.notes))
    if len(shown):
        console.print(table)
    console.print(f"{len(listing)} photo(s): {counts[STATUS_PASSED]} passed QC, {counts[STATUS_FAILED]} failed QC, "
                  f"{counts[STATUS_PENDING]} not analysed yet"
                  + (" (toolkit photos analyze measures them)" if counts[STATUS_PENDING] else ""), highlight=False)
    if csv is not None:
        console.print(f"{len(shown)} row(s) written to {csv}", highlight=False)


def _bullets(items: list[str]) -> str:
    from rich.markup import escape

    return "\n".join(f"• {escape(item)}" for item in items) if len(items) > 1 else escape("".join(items))


def _write_csv_atomically(frame, path: Path) -> None:
    """Write ``frame`` to ``path`` through a temporary file, so a failed write leaves no partial CSV."""
    import contextlib
    import os

    from toolkit.errors import DataError

    tmp = path.with_name(path.name + ".part")
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write the QC listing to {path}: {exc.strerror or exc}") from exc


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add this room's commands to the application."""
    groups["photos"].command("ingest")(ingest)
    groups["photos"].command("capture")(capture)
    groups["photos"].command("analyze")(analyze)
    groups["photos"].command("qc")(qc)
