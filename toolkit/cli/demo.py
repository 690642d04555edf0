"""``toolkit demo``: a complete simulated study on the embedded defaults."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    study: Path | None = typer.Option(None, "--study", help="Study folder (default: studies/epmc-demo)."),
    subjects: int = typer.Option(24, "--subjects", min=6, help="Cohort size."),
    seed: int = typer.Option(20261121, "--seed", help="Seeds the cohort, photos and events."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes for the photo analysis."),
    static: bool = typer.Option(True, "--static/--no-static", help="Export PNG/SVG/PDF figures (needs Chromium)."),
    replace: bool = typer.Option(True, "--replace/--keep", help="Replace the folder of an earlier demo run."),
) -> None:
    """Run a complete simulated study: enrol, deliver on the twin, photos, analysis, report.

    Everything goes to data/<study-id>/ (set TOOLKIT_DATA_DIR to put it elsewhere). The report's closed-loop
    section compares the estimated treatment effects with the simulated truth.
    """
    from toolkit.demo import run_demo

    run_demo(study, subjects=subjects, seed=seed, workers=workers, static=static, replace=replace)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add this room's commands to the application."""
    app.command("demo")(demo)
