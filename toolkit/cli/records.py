"""Commands of the study records: subjects, imports, exports, audit verification and unblinding.

Every command that touches the store uses ``$TOOLKIT_DB_URL`` when set, else the study's SQLite file
``data/<study-id>/study.db``, and runs as the logged-in user (``toolkit --user NAME``, ``$TOOLKIT_USER``, or
an operating-system login mapped to a user; see :mod:`toolkit.cli.login`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from toolkit.store import Store

_STUDY_HELP = "Study definition: a study.yaml, its folder, or a study id."


def resolve_study(study: str):
    """The study model of a study.yaml, its folder or a shipped study's id; else the bare id of stored data."""
    from toolkit.errors import ConfigurationError
    from toolkit.paths import project_root, study_data_dir
    from toolkit.store.study_view import load_study_from

    path = Path(study).expanduser()
    if path.is_file() or (path / "study.yaml").is_file():
        return load_study_from(path)
    root = project_root()
    if root is not None and (root / "studies" / study / "study.yaml").is_file():
        return load_study_from(root / "studies" / study)
    if study_data_dir(study).is_dir():
        # records without their definition: enough to list, verify or export what is stored
        return study
    if path.exists():
        return load_study_from(path)  # the loader says what is wrong with it
    raise ConfigurationError(
        f"study {study!r} not found: give the path of a study.yaml (or its folder), or the id of a study "
        "with data under the data root"
    )


def _open(study: str, *, write: bool = True, login: bool = True) -> Store:
    from toolkit.cli.login import open_study_store

    return open_study_store(resolve_study(study), write=write, login=login)


def _date(value: str, option: str):
    from datetime import date

    from toolkit.errors import DataError

    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise DataError(f"{option} {value!r} is not a date; accepted: YYYY-MM-DD") from None


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add this room's commands to the application."""
    subject = groups["subject"]
    data = groups["data"]
    audit = groups["audit"]
    study_group = groups["study"]

    @subject.command("enroll")
    def enroll(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        subject_id: str = typer.Option(..., "--subject", help="Subject id, e.g. S-001."),
        age: int = typer.Option(..., "--age", help="Age in years."),
        sex: str = typer.Option(..., "--sex", help="F, M or U."),
        fitzpatrick: str = typer.Option(..., "--fitzpatrick", help="Fitzpatrick skin type I–VI."),
        race: str | None = typer.Option(None, "--race", help="Race as collected."),
        site: str | None = typer.Option(None, "--site", help="Site id."),
        stratum: list[str] = typer.Option(
            [], "--stratum", help="Stratification value FACTOR=LEVEL (repeat)."
        ),
    ) -> None:
        """Enrol a subject with demographics and stratum values."""
        from toolkit.errors import DataError

        strata = {}
        for item in stratum:
            if "=" not in item:
                raise DataError(f"--stratum {item!r} must be FACTOR=LEVEL, e.g. --stratum age_group=ge45")
            k, v = item.split("=", 1)
            strata[k.strip()] = v.strip()
        with _open(study) as store:
            rec = store.enroll_subject(
                subject_id, age=age, sex=sex, fitzpatrick=fitzpatrick, race=race, strata=strata, site=site
            )
            typer.echo(f"enrolled {rec.subject_id} in {store.study_id} ({store.database})")
            typer.echo(
                "next: toolkit subject consent --study ... --subject " + rec.subject_id + " --signed-on DATE"
            )

    @subject.command("consent")
    def consent(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        subject_id: str = typer.Option(..., "--subject", help="Subject id."),
        signed_on: str = typer.Option(
            ..., "--signed-on", help="Date the consent form was signed (YYYY-MM-DD)."
        ),
        publication: str | None = typer.Option(
            None, "--publication", help="Consent to show the face in reports/publications: yes or no."
        ),
    ) -> None:
        """Record signed informed consent (and, if asked, consent to publication of face photos)."""
        from toolkit.errors import DataError

        pub = None
        if publication is not None:
            if publication.strip().lower() not in ("yes", "no"):
                raise DataError(f"--publication {publication!r} is not accepted; accepted: yes, no")
            pub = publication.strip().lower() == "yes"
        with _open(study) as store:
            store.record_consent(subject_id, signed_on=_date(signed_on, "--signed-on"), publication=pub)
            typer.echo(f"consent of {subject_id} recorded (signed {signed_on})"
                       + ("" if pub is None else f"; publication of face photos: {'yes' if pub else 'no'}"))
            if store.info.eligibility.criteria:
                typer.echo(f"next: toolkit subject checklist --study ... --subject {subject_id} --on DATE "
                           "--answer CRITERION=yes|no ...")

    @subject.command("checklist")
    def checklist(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        subject_id: str = typer.Option(..., "--subject", help="Subject id."),
        on: str | None = typer.Option(None, "--on", help="Date the checklist was answered (YYYY-MM-DD; default today)."),
        answer: list[str] = typer.Option(
            [], "--answer", help="CRITERION=yes|no for each criterion of the study (repeat); see `toolkit study show`."
        ),
        all_met: bool = typer.Option(
            False, "--all-met", help="Every inclusion criterion holds and no exclusion applies (confirmed item by item)."
        ),
    ) -> None:
        """Record the screening checklist: whether each inclusion and exclusion criterion of the study holds."""
        from toolkit.errors import DataError

        with _open(study) as store:
            criteria = store.info.eligibility.checklist()
            if not criteria:
                raise DataError(f"study {store.study_id} defines no inclusion or exclusion criteria")
            answers: dict[str, bool] = store.info.eligibility.all_met() if all_met else {}
            for item in answer:
                code, sep, value = item.partition("=")
                word = value.strip().lower()
                if not sep or word not in ("yes", "no"):
                    raise DataError(f"--answer {item!r} must be CRITERION=yes or CRITERION=no, e.g. epilepsy=no")
                answers[code.strip()] = word == "yes"
            if not answers:
                raise DataError(
                    "answer every criterion with --answer CRITERION=yes|no (or --all-met when every inclusion "
                    "holds and no exclusion applies)",
                    details=[f"{c.code} ({c.kind}): {c.text}" for c in criteria],
                )
            store.record_checklist(subject_id, answers, checked_on=_date(on, "--on") if on else None)
            typer.echo(f"eligibility checklist of {subject_id} recorded: {len(criteria)} criteria answered, "
                       "every inclusion met and no exclusion")

    @subject.command("patch-test")
    def patch_test(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        subject_id: str = typer.Option(..., "--subject", help="Subject id."),
        result: str = typer.Option(..., "--result", help="pass or fail."),
        read_on: str = typer.Option(..., "--read-on", help="Date the patch test was read (YYYY-MM-DD)."),
        notes: str | None = typer.Option(None, "--notes", help="Observations."),
    ) -> None:
        """Record a patch test read (pass or fail)."""
        from toolkit.errors import DataError

        if result.strip().lower() not in ("pass", "fail"):
            raise DataError(f"--result {result!r} is not accepted; accepted: pass, fail")
        with _open(study) as store:
            store.record_patch_test(
                subject_id,
                passed=result.strip().lower() == "pass",
                read_on=_date(read_on, "--read-on"),
                notes=notes,
            )
            rec = store.subject(subject_id)
            state = "eligible" if rec.eligible else "not eligible: " + ", ".join(rec.unmet)
            typer.echo(f"patch test of {subject_id} recorded ({result}); {state}")

    _REASON_HELP = ("Reason (CDISC NCOMPLT): adverse event, lack of efficacy, lost to follow-up, physician "
                    "decision, protocol deviation, pregnancy, withdrawal by subject, other ...")

    @subject.command("withdraw")
    def withdraw(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        subject_id: str = typer.Option(..., "--subject", help="Subject id."),
        reason: str = typer.Option(..., "--reason", help=_REASON_HELP),
        on: str = typer.Option(..., "--on", help="Date the subject left the study (YYYY-MM-DD)."),
        detail: str | None = typer.Option(None, "--detail", help="Free text (e.g. what the subject said)."),
    ) -> None:
        """Record that a subject left the study (treatment ends the same day); no further sessions."""
        from toolkit.store.disposition import reason_term, withdraw_subject

        with _open(study) as store:
            withdraw_subject(store, subject_id, on=_date(on, "--on"), reason=reason, detail=detail)
            typer.echo(f"{subject_id} withdrawn from the study on {on} ({reason_term(reason)})")

    @subject.command("discontinue-treatment")
    def discontinue(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        subject_id: str = typer.Option(..., "--subject", help="Subject id."),
        reason: str = typer.Option(..., "--reason", help=_REASON_HELP),
        on: str = typer.Option(..., "--on", help="Date of the decision to stop treatment (YYYY-MM-DD)."),
        detail: str | None = typer.Option(None, "--detail", help="Free text."),
    ) -> None:
        """Record that a subject stopped study treatment but stays in the study for its visits."""
        from toolkit.store.disposition import discontinue_treatment, reason_term

        with _open(study) as store:
            discontinue_treatment(store, subject_id, on=_date(on, "--on"), reason=reason, detail=detail)
            typer.echo(f"treatment of {subject_id} discontinued on {on} ({reason_term(reason)}); "
                       "the subject stays in the study")

    @subject.command("allocate")
    def allocate(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        subject_id: str = typer.Option(..., "--subject", help="Subject id."),
    ) -> None:
        """Randomise an eligible subject: take the next row of the allocation list in their stratum."""
        with _open(study) as store:
            alloc = store.allocate(subject_id)
            sides = "".join(f", {side} side: {arm}" for side, arm in sorted(alloc.side_map.items())) \
                if alloc.side_map else ""
            # the operator needs the arm to treat; analysis outputs stay coded until unblinding
            typer.echo(
                f"{subject_id}: randomisation number {alloc.rand_no}, arm {alloc.arm_id} (code {alloc.code}){sides}"
            )

    @subject.command("list")
    def list_subjects(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
    ) -> None:
        """List enrolled subjects with consent, patch test, eligibility and allocation code."""
        from rich.console import Console
        from rich.table import Table

        with _open(study, write=False) as store:
            records = store.subjects()
            table = Table(title=f"{store.study_id}: {len(records)} subject(s)")
            for col in (
                "subject",
                "age",
                "sex",
                "Fitzpatrick",
                "strata",
                "consent",
                "patch test",
                "eligible",
                "code",
            ):
                table.add_column(col)
            for r in records:
                table.add_row(
                    r.subject_id,
                    str(r.age),
                    r.sex,
                    r.fitzpatrick,
                    ", ".join(f"{k}={v}" for k, v in r.strata.items()),
                    str(r.consent_signed_on or "—"),
                    "—" if r.patch_test is None else ("pass" if r.patch_test.passed else "fail"),
                    "yes" if r.eligible else "no: " + ", ".join(r.unmet),
                    r.allocation.code if r.allocation else "—",
                )
            Console().print(table)

    @data.command("import")
    def import_(
        file: Path = typer.Argument(..., help="CSV file to import."),
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        kind: str = typer.Option(
            ..., "--kind", help="ae (adverse events) or assessments (clinician scales)."
        ),
        reason: str | None = typer.Option(None, "--reason", help="Why (recorded with each audit entry)."),
    ) -> None:
        """Import adverse events or clinician assessments from CSV (all rows or none)."""
        from toolkit.store.imports import import_csv

        with _open(study) as store:
            result = import_csv(store, kind, file, reason=reason)
            typer.echo(f"imported {result.rows} {kind} row(s) from {file} into {store.database}")

    @data.command("correct")
    def correct(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        table: str = typer.Option(..., "--table", help="Table of the record, e.g. adverse_events, subjects, "
                                  "assessments, consents, patch_tests."),
        record_id: int = typer.Option(..., "--id", help="The record's id (as `toolkit subject list` and the "
                                      "forms show it)."),
        changes: list[str] = typer.Option(
            [], "--set", help="FIELD=VALUE to change (repeat); dates YYYY-MM-DD, yes/no, an empty value clears."),
        reason: str = typer.Option(..., "--reason", help="Why (required; kept in the audit trail)."),
    ) -> None:
        """Correct fields of a stored record; the old and new values and the reason go to the audit trail."""
        from toolkit.errors import DataError
        from toolkit.store.corrections import value_from_text

        if not changes:
            raise DataError("nothing to change: give --set FIELD=VALUE (repeat for several fields)")
        with _open(study) as store:
            values = {}
            for item in changes:
                name, sep, text = item.partition("=")
                if not sep or not name.strip():
                    raise DataError(f"--set {item!r} must be FIELD=VALUE, e.g. --set resolved=2026-03-02")
                values[name.strip()] = value_from_text(table, name.strip(), text)
            store.update_record(table, record_id, reason=reason, **values)
            typer.echo(f"{table} #{record_id} corrected ({', '.join(changes)}); reason recorded in the audit trail")

    @data.command("export")
    def export(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        formats: str = typer.Option(
            "csv,parquet,xpt", "--format", help="Comma-separated: csv, parquet, xpt."
        ),
        out: Path | None = typer.Option(
            None, "--out", help="Output folder (default data/<study-id>/analysis)."
        ),
    ) -> None:
        """Export DM, EX, AE, XF, ADSL and ADEFF (+ define.csv); arms stay coded until unblinding."""
        from toolkit.store.export import export_datasets

        with _open(study, write=False) as store:
            blinded = not store.is_unblinded
            written = export_datasets(store, out, formats)
            folder = next(iter(written.values())).parent
            typer.echo(
                f"wrote {len(written)} file(s) to {folder} ({'BLINDED: arms coded' if blinded else 'unblinded'})"
            )
            for name in written:
                typer.echo(f"  {name}")
            _, source = store._code_map()
            if blinded and source == "derived":
                typer.echo(
                    "note: no allocation.json with arm codes; codes were derived (A, B, … in arm-id order)"
                )

    @data.command("open-sessions")
    def open_sessions(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
    ) -> None:
        """List delivery sessions still recorded as in progress (a host that stopped mid-session leaves one)."""
        from datetime import UTC, datetime

        from rich.console import Console
        from rich.table import Table

        from toolkit.store.deliveries import interrupted_close_from

        with _open(study, write=False) as store:
            d = store.deliveries()
            rows = d[d["status"] == "in_progress"] if len(d) else d
            if not len(rows):
                typer.echo(f"{store.study_id}: no session in progress")
                return
            now = datetime.now(UTC)
            table = Table(title=f"{store.study_id}: {len(rows)} session(s) in progress")
            for col in ("delivery", "subject", "session", "arm", "side", "started (UTC)", "can be closed"):
                table.add_column(col)
            for r in rows.itertuples(index=False):
                earliest = interrupted_close_from(r.started_at, r.prescription)
                table.add_row(str(r.delivery_id), r.subject_id, str(r.session_number), r.arm_id, r.side or "—",
                              f"{r.started_at:%Y-%m-%d %H:%M}",
                              "now" if now >= earliest else f"from {earliest:%Y-%m-%d %H:%M} (may be running)")
            Console().print(table)

    @data.command("close-session")
    def close_session(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        delivery: int = typer.Option(..., "--delivery", help="Delivery id (see `toolkit data open-sessions`)."),
        reason: str = typer.Option(..., "--reason", help="What happened (e.g. 'host PC lost power')."),
        outcome: str = typer.Option(
            "aborted", "--outcome", help="aborted, or output_state_unknown if nobody saw the output off."
        ),
    ) -> None:
        """Close a session its host left in progress: recorded as interrupted, with no dose, and audited."""
        with _open(study) as store:
            store.close_interrupted_delivery(delivery, reason=reason, outcome=outcome)
            typer.echo(f"delivery #{delivery} closed as {outcome} (interrupted: {reason.strip()})")

    @audit.command("verify")
    def verify(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        no_files: bool = typer.Option(False, "--no-files", help="Skip re-hashing photo and waveform files."),
    ) -> None:
        """Re-check the audit hash chain, stored files' SHA-256 and the tables; exit 1 if anything fails."""
        from toolkit.errors import CheckFailed
        from toolkit.store.audit import verify_audit

        with _open(study, login=False) as store:
            report = verify_audit(store, check_files=not no_files)
            if not report.ok:
                raise CheckFailed(
                    f"{report.summary()} in {store.database}"
                    + (f"; first broken entry: #{report.first_broken.seq}" if report.first_broken else ""),
                    details=report.problems(),
                )
            typer.echo(report.summary())

    @data.command("backup")
    def backup(
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        out: Path | None = typer.Option(None, "--out", help="Backup folder (default data/<id>/backups/<time>)."),
    ) -> None:
        """Back up the database (SQLite online backup or pg_dump), the audit anchors and the ledger, with SHA-256."""
        from toolkit.store.backup import backup_store

        with _open(study, write=False) as store:
            info = backup_store(store, out)
            typer.echo(f"backup of {store.database} written to {info.folder} (audit head #{info.head_seq}; "
                       f"{len(info.files)} file(s) with SHA-256 in backup.json)")

    @data.command("restore")
    def restore(
        folder: Path = typer.Argument(..., help="Backup folder (holds backup.json)."),
        study: str = typer.Option(..., "--study", help=_STUDY_HELP),
        reason: str = typer.Option(..., "--reason", help="Why the database is restored (recorded, signed)."),
    ) -> None:
        """Restore the database from a backup: checksums, chain and anchors verified first; the old file kept."""
        from toolkit.store.backup import restore_store

        info = restore_store(resolve_study(study), folder, reason=reason)
        typer.echo(f"{info.study_id} restored from {folder} (audit head #{info.head_seq}); the replaced database "
                   "was kept beside it; run `toolkit audit verify` to check")

    @study_group.command("unblind")
    def unblind(
        study: str = typer.Argument(..., help=_STUDY_HELP),
        reason: str = typer.Option(..., "--reason", help="Why the study is unblinded (recorded)."),
    ) -> None:
        """Unblind a locked study (signed by an unblinded statistician); later exports carry real arm names."""
        with _open(study) as store:
            if store.is_unblinded:
                typer.echo(f"{store.study_id} was already unblinded; recording this unblinding too")
            store.unblind(reason=reason)
            typer.echo(f"{store.study_id} unblinded by {store.identity.full_name} (signed): {reason}")
