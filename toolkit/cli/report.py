"""Commands of the report room."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    study: str = typer.Option(..., "--study", help="Study id, study folder / study.yaml, or the study's data folder."),
    static: bool = typer.Option(True, "--static/--no-static",
                                help="Also export PNG (300 dpi), SVG and PDF of every figure (needs Chromium)."),
    browser: Path | None = typer.Option(None, "--browser", help="Chromium/Chrome binary for static export "
                                        "(default: $TOOLKIT_BROWSER or the one installed)."),
) -> None:
    """Build the report bundle data/<study-id>/report/: index.html, figures, tables, datasets, manifest.

    For a study with a database, the user must be allowed to export (statistician, data manager, monitor);
    while the study is blinded the report leaves out waveforms and doses, and masks faces without consent.
    """
    import os

    from toolkit.cli.login import open_study_store
    from toolkit.report.bundle import build_report, resolve_study

    study_id, data_dir = resolve_study(study)
    if (data_dir / "study.db").is_file() or os.environ.get("TOOLKIT_DB_URL"):
        with open_study_store(study_id, write=False) as store:
            store._require("export", "build the study's report")
    bundle = build_report(study, static=static, browser_path=browser)
    typer.echo(bundle.summary())
    if not (bundle.figures or bundle.tables or bundle.datasets):
        typer.echo(f"error: the report of {bundle.study_id} is empty: no analysis datasets or results under "
                   f"{data_dir / 'analysis'}; export them first (toolkit data export --study {study_id}, then "
                   "toolkit analyze)", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add this room's commands to the application."""
    app.command("report")(report)
