"""Commands of the bench room: ``toolkit bench twin`` and ``toolkit bench check BENCH.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def twin(
    speed: float = typer.Option(1.0, help="Simulated seconds per real second."),
    seed: int = typer.Option(0, help="Seed of the scope noise."),
    stimulator_port: int = typer.Option(5025, help="Port of the 33500B generator twin."),
    scope_port: int = typer.Option(5026, help="Port of the oscilloscope twin."),
    current_source_port: int = typer.Option(5027, help="Port of the Keithley 6221 twin."),
    scope_family: str = typer.Option("rigol", help="Oscilloscope to impersonate: rigol or keysight."),
    load: str = typer.Option("dummy", help="Load on the electrodes: dummy or skin."),
) -> None:
    """Serve the digital twin bench on loopback TCP until Ctrl+C or SIGTERM (ports match
    instruments/benches/twin.yaml)."""
    import signal
    import time

    from rich.console import Console

    from instruments.errors import BenchFileError
    from instruments.twin import TwinBench

    if scope_family not in ("rigol", "keysight"):
        raise BenchFileError(f"--scope-family {scope_family!r}: accepted values are 'rigol' and 'keysight'")
    if load not in ("dummy", "skin"):
        raise BenchFileError(f"--load {load!r}: accepted values are 'dummy' and 'skin'")
    console = Console()

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl+C stops it even when it was started in the background of a script, where SIGINT arrives ignored;
    # SIGTERM (kill, a service manager) stops it as cleanly
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)
    bench = TwinBench(speed=speed, seed=seed, scope_family=scope_family,  # type: ignore[arg-type]
                      ports={"stimulator": stimulator_port, "scope": scope_port,
                             "current_source": current_source_port})
    bench.start()
    bench.model.set_load(load)
    try:
        for role, resource in bench.resources.items():
            console.print(f"{role:15s} {resource}", highlight=False)
        console.print(f"load: {load}; clock speed ×{speed:g}. Press Ctrl+C (or send SIGTERM) to stop.")
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("twin stopped")
    finally:
        bench.stop()


def check(
    bench_file: Path = typer.Argument(..., help="Bench file (YAML), e.g. instruments/benches/twin.yaml."),
    timeout_s: float = typer.Option(2.0, help="I/O timeout per instrument, in seconds."),
    electrode_V: float = typer.Option(20.0, "--electrode-v", help="Verification pulse height across the dummy load."),
    start_twin: bool = typer.Option(
        True, "--start-twin/--no-start-twin",
        help="Twin bench file with no twin listening: check an in-process twin (--no-start-twin: stop and say "
             "how to start one)."),
) -> None:
    """Identify, self-test and read the error queue of each instrument, check calibration dates, and verify
    a burst into the dummy load (prescribed vs measured). Exit 0 only if everything passes."""
    from rich.console import Console
    from rich.table import Table

    from instruments.bench import load_bench
    from instruments.check import run_bench_check

    bench = load_bench(bench_file)
    console = Console()
    own_twin = _twin_for_check(bench, bench_file, start_twin, console)
    try:
        report = run_bench_check(bench, timeout_s=timeout_s, electrode_V=electrode_V)
    finally:
        if own_twin is not None:
            own_twin.stop()
    table = Table(title=f"bench check — {bench.name}")
    for col in ("item", "expected", "measured", "result"):
        table.add_column(col)
    for row in report.rows:
        table.add_row(row.item, row.expected, row.measured,
                      "[green]pass[/]" if row.passed else "[bold red]FAIL[/]")
    console.print(table)
    if not report.passed:
        from toolkit.errors import CheckFailed

        raise CheckFailed(f"bench check of {bench_file} failed: " + "; ".join(r.item for r in report.rows
                                                                              if not r.passed))
    console.print("[green]all checks passed[/]")


def _twin_for_check(bench: Any, bench_file: Path, start: bool, console: Any) -> Any:
    """For a twin bench file nobody serves: an in-process twin (returned, to be stopped), or a clear refusal.

    A bench on real instruments is checked as it is: an instrument that does not answer fails its rows.
    """
    from instruments.errors import ConnectionFailed
    from instruments.transport import listening, socket_address

    if not bench.is_loopback_twin:
        return None
    specs = list(bench.instruments())
    silent = [(role, spec.resource) for role, spec in specs if not listening(spec.resource)]
    if not silent:
        return None
    where = ", ".join(f"{role} {':'.join(map(str, socket_address(res) or (res,)))}" for role, res in silent)
    if start and len(silent) == len(specs):
        from toolkit.delivery.runner import start_twin_for

        twin = start_twin_for(bench)
        console.print(f"[cyan]note:[/] no twin was listening ({where}): checking an in-process digital twin; "
                      "`toolkit bench twin` serves one that stays up between commands", highlight=False)
        return twin
    defaults = {"stimulator": 5025, "scope": 5026, "current_source": 5027}  # those of `toolkit bench twin`
    ports = "".join(f" --{role.replace('_', '-')}-port {address[1]}" for role, spec in specs
                    if (address := socket_address(spec.resource)) and address[1] != defaults.get(role))
    raise ConnectionFailed(
        f"{bench_file}: nothing is listening at {where}. Start the digital twin first, in another terminal: "
        f"`toolkit bench twin{ports}`"
        + ("" if start else f", or run `toolkit bench check {bench_file}` without --no-start-twin to check an "
           "in-process twin"),
        resource=str(bench_file), refused=True)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add this room's commands to the application."""
    groups["bench"].command("twin")(twin)
    groups["bench"].command("check")(check)
