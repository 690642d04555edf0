"""The ``toolkit`` command line (also ``python -m toolkit``).

One typer application with a group per room. Each room's commands live in a module of this package that
exposes ``register(app, groups)``; modules import their heavy dependencies inside the command functions so
that ``toolkit --help`` stays fast.

Errors a user can cause (:class:`toolkit.errors.ToolkitError`, :class:`instruments.errors.InstrumentError`)
are printed without a traceback and end the process with the error's exit code (2 for bad input, 1 for a
check that ran and failed).
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

import toolkit
from toolkit.errors import ToolkitError

err_console = Console(stderr=True)

app = typer.Typer(
    name="toolkit",
    help="Clinical study toolkit: electroporation vs microcurrent facial skin trials.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

#: command groups, shared by the room modules that add commands to them
groups: dict[str, typer.Typer] = {
    "study": typer.Typer(help="Study definitions: validate, show, randomize, unblind.", no_args_is_help=True),
    "bench": typer.Typer(help="Bench instruments: digital twin, checks.", no_args_is_help=True),
    "subject": typer.Typer(help="Subjects: enrolment, consent, patch test.", no_args_is_help=True),
    "data": typer.Typer(help="Study records: import and export datasets.", no_args_is_help=True),
    "audit": typer.Typer(help="Audit trail: verify the hash chain and stored files.", no_args_is_help=True),
    "photos": typer.Typer(help="Facial photos: capture, ingest, analyze.", no_args_is_help=True),
    "user": typer.Typer(help="Users, roles and passwords.", no_args_is_help=True),
    "site": typer.Typer(help="Sites of a multi-site study.", no_args_is_help=True),
}
for _name, _group in groups.items():
    app.add_typer(_group, name=_name)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"toolkit {toolkit.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."
    ),
    user: str | None = typer.Option(
        None, "--user", help="Run as this toolkit user (default $TOOLKIT_USER, or your OS login if mapped)."
    ),
) -> None:
    """Clinical study toolkit: electroporation vs microcurrent facial skin trials."""
    if user:
        import os

        os.environ["TOOLKIT_USER"] = user  # read by every store the command opens


def _register_rooms() -> None:
    from toolkit.cli import analysis, bench, delivery, demo, photos, records, report, study, users

    for module in (study, bench, records, users, delivery, photos, analysis, report, demo):
        module.register(app, groups)


_register_rooms()


def _user_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [ToolkitError]
    try:
        from instruments.errors import InstrumentError

        types.append(InstrumentError)
    except ImportError:  # pragma: no cover - the instruments package ships with the toolkit
        pass
    return tuple(types)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; user mistakes end with a message, never a traceback."""
    user_errors = _user_error_types()
    try:
        # standalone mode: click reports usage errors itself (exit 2) and raises SystemExit
        from toolkit.cli.study_arg import normalise

        args = list(sys.argv[1:] if argv is None else argv)
        app(args=normalise(args, typer.main.get_command(app)), prog_name="toolkit")
    except user_errors as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
