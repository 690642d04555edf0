"""Commands of users, sites and the database lock: ``toolkit user add|list|disable|passwd``, ``toolkit site
add|list``, ``toolkit study lock|unlock`` and ``toolkit data sign``."""

from __future__ import annotations

import typer

from toolkit.cli.login import open_study_store, prompt_new_password

_STUDY_HELP = "Study definition: a study.yaml, its folder, or a study id."


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add this room's commands to the application."""
    user = groups["user"]
    site = groups["site"]
    study_group = groups["study"]
    data = groups["data"]

    @user.command("add")
    def add(
        username: str = typer.Argument(..., help="User name (lower case), e.g. jdoe."),
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        full_name: str = typer.Option(..., "--full-name", help="Printed name shown with signatures."),
        role: list[str] = typer.Option(..., "--role", help="Role (repeat): see `toolkit user roles`."),
        site_id: str | None = typer.Option(None, "--site", help="Site the user works at."),
        os_login: str | None = typer.Option(None, "--os-login", help="Operating-system login of the user."),
        db_role: str | None = typer.Option(None, "--db-role", help="PostgreSQL role of the user."),
        password_file: str | None = typer.Option(
            None, "--password-file", help="File whose first line is the new password ('-': standard input)."
        ),
    ) -> None:
        """Add a user (the first user of a database must be an administrator and needs no login)."""
        from toolkit.cli.records import resolve_study

        target = resolve_study(study)
        with open_study_store(target, login=False, create=True) as store:
            if store._has_users():
                store.close()
                store = open_study_store(target)
            password = prompt_new_password(username, password_file)
            rec = store.add_user(username, full_name=full_name, roles=role, password=password, site=site_id,
                                 os_login=os_login, db_role=db_role)
            typer.echo(f"user {rec.username} added ({', '.join(rec.roles)}"
                       + (f", site {rec.site}" if rec.site else "") + f"), signing key {rec.key_fingerprint}")

    @user.command("list")
    def list_users(study: str = typer.Option(..., "--study", help=_STUDY_HELP)) -> None:
        """List users with roles, site, mappings and signing-key fingerprint."""
        from rich.console import Console
        from rich.table import Table

        from toolkit.cli.records import resolve_study

        with open_study_store(resolve_study(study), write=False, login=False) as store:
            rows = store.users()
            table = Table(title=f"{store.database}: {len(rows)} user(s)")
            for col in ("user", "name", "roles", "site", "OS login", "key", "state"):
                table.add_column(col)
            for u in rows:
                state = "active" if u.active else f"disabled {u.disabled_at:%Y-%m-%d}: {u.disabled_reason}"
                table.add_row(u.username, u.full_name, ", ".join(u.roles), u.site or "all", u.os_login or "—",
                              u.key_fingerprint, state)
            Console().print(table)

    @user.command("disable")
    def disable(
        username: str = typer.Argument(..., help="User to disable."),
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        reason: str = typer.Option(..., "--reason", help="Why (recorded)."),
    ) -> None:
        """Disable a user (an administrator's act; the user's entries and signatures stay theirs)."""
        from toolkit.cli.records import resolve_study

        with open_study_store(resolve_study(study)) as store:
            store.disable_user(username, reason=reason)
            typer.echo(f"user {username} disabled: {reason}")

    @user.command("passwd")
    def passwd(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        password_file: str | None = typer.Option(
            None, "--password-file", help="File whose first line is the new password ('-': standard input)."
        ),
    ) -> None:
        """Change your own password (your signing key stays the same)."""
        from getpass import getpass

        from toolkit.cli.records import resolve_study
        from toolkit.store.base import _env_password

        with open_study_store(resolve_study(study)) as store:
            who = store._require("read_records", "change a password", any_role=True)
            old = _env_password() or getpass(f"current password of {who.username}: ")
            store.change_password(old, prompt_new_password(who.username, password_file))
            typer.echo(f"password of {who.username} changed")

    @user.command("roles")
    def roles() -> None:
        """Show the roles and what each may do."""
        from toolkit.store.roles import PERMISSIONS, ROLE_PERMISSIONS

        for role, perms in ROLE_PERMISSIONS.items():
            typer.echo(f"{role}:")
            for p in PERMISSIONS:
                if p in perms:
                    typer.echo(f"  - {PERMISSIONS[p]}")

    @site.command("add")
    def add_site(
        site_id: str = typer.Argument(..., help="Site id, e.g. PAR."),
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        name: str = typer.Option(..., "--name", help="Site name."),
    ) -> None:
        """Register a site (subjects, users and benches then belong to one of the registered sites)."""
        from toolkit.cli.records import resolve_study

        with open_study_store(resolve_study(study)) as store:
            store.add_site(site_id, name=name)
            typer.echo(f"site {site_id} added: {name}")

    @site.command("list")
    def list_sites(study: str = typer.Option(..., "--study", help=_STUDY_HELP)) -> None:
        """List the registered sites."""
        from toolkit.cli.records import resolve_study

        with open_study_store(resolve_study(study), write=False) as store:
            for s in store.sites():
                typer.echo(f"{s[0]}\t{s[1]}")

    @study_group.command("lock")
    def lock(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        reason: str = typer.Option(..., "--reason", help="Why the database is locked (recorded and signed)."),
    ) -> None:
        """Lock the database (signed by a data manager): clinical data freeze; unblinding may follow."""
        from toolkit.cli.records import resolve_study

        with open_study_store(resolve_study(study)) as store:
            store.lock(reason=reason)
            typer.echo(f"{store.study_id} locked by {store.actor} (signed): {reason}")

    @study_group.command("unlock")
    def unlock(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        reason: str = typer.Option(..., "--reason", help="Why the database is unlocked (recorded and signed)."),
    ) -> None:
        """Unlock a locked database (signed, with a reason)."""
        from toolkit.cli.records import resolve_study

        with open_study_store(resolve_study(study)) as store:
            store.unlock(reason=reason)
            typer.echo(f"{store.study_id} unlocked by {store.actor} (signed): {reason}")

    @data.command("sign")
    def sign(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        ae: int | None = typer.Option(None, "--ae", help="Adverse event id: sign its causality assessment."),
        delivery: int | None = typer.Option(None, "--delivery", help="Delivery id: sign it as performed."),
    ) -> None:
        """Sign a record with your key: an AE's causality (investigator) or a delivery (its operator)."""
        from toolkit.cli.records import resolve_study
        from toolkit.errors import DataError

        if (ae is None) == (delivery is None):
            raise DataError("give exactly one of --ae ID or --delivery ID")
        table, record, meaning = (("adverse_events", ae, "causality assessed") if ae is not None
                                  else ("deliveries", delivery, "performed"))
        with open_study_store(resolve_study(study)) as store:
            sid = store.sign_record(table, int(record), meaning=meaning)
            typer.echo(f"{table} #{record} signed '{meaning}' by {store.identity.full_name} (signature #{sid})")
