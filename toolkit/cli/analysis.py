"""Commands of the analysis room: ``toolkit analyze``."""

from __future__ import annotations

from pathlib import Path

import typer


def _read_dataset(path: Path):
    """A BDS dataset from CSV, Parquet or SAS XPORT, chosen by extension."""
    import pandas as pd

    from toolkit.errors import DataError

    if not path.is_file():
        raise DataError(f"dataset file {path} not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".xpt", ".xport"):
            import pyreadstat

            frame, _ = pyreadstat.read_xport(str(path))
            return frame
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read dataset {path}: {exc}") from exc
    raise DataError(f"dataset {path}: unsupported file type {suffix!r}; accepted: .csv, .parquet, .xpt")


def analyze(
    study_path: Path = typer.Option(..., "--study", help="Study folder or its study.yaml."),
    data: Path | None = typer.Option(
        None, "--data", help="BDS analysis dataset (CSV, Parquet or XPT); default: the study's store."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Results folder; default data/<study-id>/analysis/results/."
    ),
    adsl: Path | None = typer.Option(
        None, "--adsl", help="Subject-level dataset: demographics, and the intercurrent events of the estimands."
    ),
    deviations: Path | None = typer.Option(
        None, "--deviations", help="Protocol deviations (SDTM DV) for the estimands' prohibited procedures."
    ),
) -> None:
    """Run the study's statistical analysis plan and write the result tables (CSV) and results.json.

    Exits with 1 when a planned analysis could not run (the others are still written), 2 for bad input.
    """
    from rich.console import Console

    from toolkit.paths import study_data_dir
    from toolkit.stats.plan import run_analysis_plan
    from toolkit.study import load_study

    console = Console()
    study = load_study(study_path)
    subject_level = _read_dataset(adsl) if adsl is not None else None
    dv = _read_dataset(deviations) if deviations is not None else None
    if data is not None:
        bds = _read_dataset(data)
        source = str(data)
    else:
        from toolkit.cli.login import open_study_store
        from toolkit.store.datasets import StudyRecords
        from toolkit.store.export import analysis_dataset, subject_level_dataset
        from toolkit.store.sdtm import dv_domain

        with open_study_store(study, write=False) as store:
            bds = analysis_dataset(store)
            if subject_level is None:
                subject_level = subject_level_dataset(store)
            if dv is None:
                dv = dv_domain(StudyRecords(store)).frame
        source = "study store"
        if bds.empty:
            from toolkit.errors import DataError

            raise DataError(
                f"the store of study {study.id} holds no efficacy measurements yet",
                details=["record photo metrics or scale scores first, or pass --data BDS.csv"],
            )
    results = run_analysis_plan(study, bds, adsl=subject_level, deviations=dv, on_error="record")
    target = out if out is not None else study_data_dir(study.id) / "analysis" / "results"
    written = results.to_dir(target)
    console.print(f"analysis plan of [bold]{study.id}[/] run on {source}: {len(results)} tables")
    hyp = results["hypotheses"]
    for row in hyp.itertuples(index=False):
        if row.p_value != row.p_value:  # NaN: the analysis could not run
            console.print(f"  {row.hypothesis}: no p-value ({row.note})")
            continue
        verdict = "rejected" if row.rejected else "not rejected"
        console.print(
            f"  {row.hypothesis}: p = {row.p_value:.4g}, adjusted {row.adjusted_p_value:.4g} ({verdict})"
        )
    for words in results.estimands:
        table = results.tables.get(f"estimand_{words['id']}_estimates")
        if table is None:
            continue
        for row in table.itertuples(index=False):
            console.print(
                f"  estimand {words['id']}, {row.label if row.role == 'main' else 'sensitivity ' + row.label}: "
                f"{row.comparison} {row.estimate:.4g} "
                f"(95% CI {row.ci_low:.4g} to {row.ci_high:.4g})"
            )
    for note in results.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"results written to {written}")
    if out is None:
        from toolkit.errors import ToolkitError
        from toolkit.stats.adtte import time_to_improvement_dataset, write_time_to_improvement

        try:
            tti = time_to_improvement_dataset(study, bds)
            write_time_to_improvement(tti, target.parent, written)
            console.print(f"time to improvement (ADTTE) written to {target.parent / 'adtte.xpt'}")
        except ToolkitError as exc:
            console.print(f"[yellow]time to improvement not derived:[/] {exc}")
    if results.failures:
        from toolkit.errors import CheckFailed

        raise CheckFailed(
            f"{len(results.failures)} planned analysis(es) could not run; their hypotheses count as not rejected",
            details=[f"{aid}: {msg}" for aid, msg in results.failures.items()],
        )


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add this room's commands to the application."""
    app.command("analyze")(analyze)
