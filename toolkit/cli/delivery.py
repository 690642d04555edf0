"""Commands of the delivery room: ``toolkit deliver``."""

from __future__ import annotations

from pathlib import Path

import typer


def deliver(
    study: Path = typer.Option(..., "--study", help="Study folder or study.yaml (e.g. studies/epmc-demo)."),
    subject: str = typer.Option(..., "--subject", help="Subject id as enrolled (e.g. S-001)."),
    session: int = typer.Option(..., "--session", min=1, help="Session number of the course (1-based)."),
    bench: Path = typer.Option(
        None, "--bench", help="Bench file (default instruments/benches/twin.yaml; a twin is started if needed)."
    ),
    capture_every_s: float = typer.Option(60.0, "--capture-every", help="Seconds between live scope captures."),
    burst_interval_s: float = typer.Option(2.0, "--burst-interval", help="Seconds per re-triggered burst (<= 2)."),
    repeat: bool = typer.Option(False, "--repeat", help="Deliver an already completed session again (linked record)."),
    at: str = typer.Option(
        None, "--at", help="Twin only: simulated start time, ISO format (e.g. 2026-03-02T09:00:00+00:00)."
    ),
    yes: bool = typer.Option(
        False, "--yes", help="Confirm dummy load and electrode placement without prompting (twin only)."
    ),
) -> None:
    """Deliver and verify one treatment session on the bench, and record it.

    Checks eligibility, the safety envelope and the bench, verifies on the dummy load, asks the operator to
    confirm the electrodes, delivers as re-triggered bursts with live captures, and always ends with the
    output off and read back. Ctrl+C stops the session cleanly. Exit code 0 when completed, 1 when the
    session was refused or aborted, 3 when the output state is unknown.
    """
    from rich.console import Console

    from instruments.bench import default_bench_path, load_bench
    from toolkit.delivery import DeliverySettings, PromptOperator, RichProgress, run_session

    console = Console()
    bench_cfg = load_bench(bench or default_bench_path("twin"))
    twin_bench = bench_cfg.is_loopback_twin
    if yes and not twin_bench:
        raise typer.BadParameter("--yes is only accepted with the twin bench; a real session asks the operator")
    session_start = None
    if at is not None:
        from datetime import UTC, datetime

        try:
            session_start = datetime.fromisoformat(at)
        except ValueError:
            raise typer.BadParameter(f"--at {at!r} is not an ISO date-time (e.g. 2026-03-02T09:00:00)") from None
        if session_start.tzinfo is None:
            session_start = session_start.replace(tzinfo=UTC)
    settings = DeliverySettings(capture_every_s=capture_every_s, burst_interval_s=burst_interval_s)
    # with --yes the twin's simulated operator confirms (and moves the twin's load) by itself
    confirm = None if yes else PromptOperator()
    from toolkit.cli.login import open_study_store
    from toolkit.store.study_view import load_study_from

    st = load_study_from(study)
    with open_study_store(st) as store, RichProgress(console=console) as bar:
        record = run_session(
            st, subject, session, store=store, bench=bench_cfg, confirm=confirm, progress=bar, settings=settings,
            repeat=repeat, session_start=session_start, on_note=lambda text: console.print(f"[cyan]note:[/] {text}"),
        )
    style = {"completed": "green", "aborted": "yellow", "output_state_unknown": "bold red"}[record.outcome]
    # the notes were printed as they came (on_note): the summary does not repeat them
    console.print(f"[{style}]{record.summary(notes=False)}[/]", highlight=False)
    if record.outcome == "output_state_unknown":
        console.print("[bold red]OUTPUT STATE UNKNOWN: switch the stimulator off by hand and check it.[/]")
        raise typer.Exit(3)
    if record.outcome != "completed":
        raise typer.Exit(1)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add this room's commands to the application."""
    app.command("deliver")(deliver)
