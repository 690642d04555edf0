"""Commands of the study room: ``toolkit study validate | show | randomize``."""

from __future__ import annotations

from pathlib import Path

import typer

_PATH_HELP = "The study folder (studies/<id>) or its study.yaml."


def _load(path: Path):
    """Load a study; print every problem and exit 2 when it is invalid."""
    from rich.console import Console

    from toolkit.study import StudyValidationError, load_study

    try:
        return load_study(path)
    except StudyValidationError as exc:
        console = Console(stderr=True, highlight=False, soft_wrap=True)
        console.print(f"[bold red]error:[/] {exc.message}", markup=True)
        for issue in exc.issues:
            console.print(f"  - {issue}", markup=False)
        raise typer.Exit(exc.exit_code) from None


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _figure_rows(study, arm) -> list[tuple[str, str, str, str]]:
    """(quantity, value, limit, verdict) rows of one arm."""
    env = study.envelope
    fig = arm.prescription.figures()
    p = arm.prescription
    rows: list[tuple[str, float | None, float | None, str]] = [
        ("session duration (min)", p.duration_min, env.session_duration_max_min, "le"),
    ]
    if arm.modality == "microcurrent":
        rows += [
            ("peak current (µA)", fig.peak_current_A * 1e6, env.microcurrent_max_uA, "le"),
            ("r.m.s. current (µA)", fig.rms_current_A * 1e6, None, ""),
            ("r.m.s. current density (mA/cm²)", fig.current_density_rms_mA_per_cm2, env.current_density_rms_max_mA_per_cm2, "le"),
            ("charge per phase (µC)", (fig.charge_per_phase_C or 0) * 1e6, None, ""),
            ("net charge per alternation period (µC)", (fig.net_charge_per_period_C or 0) * 1e6, None, "balance"),
        ]
        if not fig.charge_balanced:
            rows.append(("direct current (µA)", abs(fig.dc_current_A) * 1e6,
                         env.galvanic_dc_max_uA if env.galvanic_allowed else 0.0, "le"))
        if fig.direct_charge_C:
            rows.append(("direct charge one way (mC)", fig.direct_charge_C * 1e3, env.galvanic_charge_max_mC,
                         "le" if env.galvanic_charge_max_mC is not None else ""))
    elif arm.modality == "electroporation":
        rows += [
            ("peak voltage (V)", p.amplitude_V, env.ep_peak_voltage_max_V, "le"),
            ("peak current into 500 Ω (mA)", fig.peak_current_A * 1e3, None, ""),
            ("mean pulse rate (Hz)", fig.mean_pulse_rate_Hz, None, ""),
            ("r.m.s. current (mA)", fig.rms_current_A * 1e3, None, ""),
            ("r.m.s. current density (mA/cm²)", fig.current_density_rms_mA_per_cm2, env.current_density_rms_max_mA_per_cm2, "le"),
            ("energy per pulse into 500 Ω (mJ)", (fig.energy_per_pulse_J or 0) * 1e3, env.ep_energy_per_pulse_max_mJ, "le"),
            ("charge per phase (µC)", (fig.charge_per_phase_C or 0) * 1e6, None, ""),
            ("net charge per train (µC)", (fig.net_charge_per_period_C or 0) * 1e6, None, ""),
        ]
    out = []
    for name, value, limit, rule in rows:
        if rule == "le":
            verdict = "ok" if value is not None and limit is not None and value <= limit else "OVER"
        elif rule == "balance":
            verdict = "balanced" if fig.charge_balanced else ("DC allowed" if env.galvanic_allowed else "NOT BALANCED")
        else:
            verdict = ""
        out.append((name, _fmt(value), _fmt(limit) if limit is not None else "", verdict))
    return out


def _prescription_text(arm) -> str:
    p = arm.prescription
    if arm.modality == "microcurrent":
        parts = [f"{p.current_uA:g} µA {p.waveform}" + (f" + {p.dc_offset_uA:g} µA DC" if p.dc_offset_uA else "")]
        if p.frequency_Hz:
            parts.append(f"{p.frequency_Hz:g} Hz")
        if p.duty_cycle is not None:
            parts.append(f"duty {p.duty_cycle:g}")
        if p.polarity_period_s:
            parts.append(f"polarity period {p.polarity_period_s:g} s")
        parts.append(f"ramps {p.ramp_up_s:g}/{p.ramp_down_s:g} s")
        parts.append(p.driver.replace("_", " ") + (f" + {p.series_resistor_ohm:g} Ω" if p.series_resistor_ohm else ""))
    elif arm.modality == "electroporation":
        parts = [
            f"{p.amplitude_V:g} V, {p.pulse_width_ms:g} ms pulses at {p.pulse_rate_Hz:g} Hz",
            f"{p.pulses_per_train} per train every {p.train_interval_s:g} s",
        ]
        if p.carrier_Hz:
            parts.append(f"carrier {p.carrier_Hz:g} Hz")
    else:
        parts = ["no output" + (f" (handled as {p.mimics})" if p.mimics else "")]
    parts.append(f"{p.duration_min:g} min")
    if arm.modality != "sham":
        parts.append(f"electrodes {p.electrode_area_cm2:g} cm²")
    parts.append(f"placement {p.placement}")
    return "; ".join(parts)


def _render(study, *, detailed: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False)
    console.print(f"[bold]{study.id}[/] v{study.version} — {study.title}", markup=True)
    console.print(f"design: {study.design}; file: {study.path / 'study.yaml' if study.path else '—'}", markup=False)

    arms = Table(title="Arms and prescriptions", show_lines=False)
    for col in ("arm", "name", "modality", "ratio", "prescription"):
        arms.add_column(col, overflow="fold")
    for arm in study.arms:
        ratio = "—" if study.design == "split-face" else str(arm.ratio)
        arms.add_row(arm.id, arm.name, arm.modality, ratio, _prescription_text(arm))
    console.print(arms)

    for arm in study.arms:
        if arm.modality == "sham" and not detailed:
            continue
        table = Table(title=f"{arm.id}: computed figures vs safety envelope")
        for col in ("quantity", "value", "limit", ""):
            table.add_column(col)
        for row in _figure_rows(study, arm):
            table.add_row(*row)
        console.print(table)

    sched = study.schedule
    console.print(
        f"Schedule: {sched.sessions} sessions every {sched.interval_days} days (± {sched.window_days}); "
        f"last session on day {sched.last_session_day}",
        markup=False,
    )
    visits = Table(title="Visits")
    for col in ("id", "AVISITN", "name", "study day", "after session", "kind"):
        visits.add_column(col)
    for v in study.visits:
        visits.add_row(
            v.id, str(v.number), v.name, str(sched.visit_day(v)), str(v.after_session or "—"), v.kind
        )
    console.print(visits)

    if detailed:
        elig = study.eligibility
        console.print(
            f"Eligibility: age {elig.age_min_years}–{elig.age_max_years} years; Fitzpatrick "
            f"{', '.join(str(t) for t in elig.fitzpatrick_types)}; patch test read at "
            f"{elig.patch_test_read_hours} h required",
            markup=False,
        )
        checklist = Table(title="Eligibility checklist (answered at screening)")
        for col in ("criterion", "kind", "question", "eligible when"):
            checklist.add_column(col, overflow="fold")
        for c in elig.criteria:
            checklist.add_row(c.code, c.kind, c.text, "yes" if c.kind == "inclusion" else "no")
        console.print(checklist)

    endpoints = Table(title="Endpoints")
    for col in ("PARAMCD", "label", "role", "kind", "what", "visits"):
        endpoints.add_column(col, overflow="fold")
    for e in study.endpoints:
        if e.kind == "photo":
            what = f"{e.metric} in {'+'.join(e.region)} ({e.combine}; {e.better} is better)"
        elif e.kind == "scale":
            what = f"{e.scale} {e.min:g}–{e.max:g} by {e.rater.replace('_', ' ')}"
        else:
            what = f"{e.event} ({e.measure})"
        endpoints.add_row(e.code, e.label, e.role, e.kind, what, ", ".join(e.visits) or "all")
    console.print(endpoints)

    plan = study.analysis
    sap = Table(title=f"Analysis plan (alpha {plan.alpha:g}; multiplicity {plan.multiplicity.procedure})")
    for col in ("id", "endpoint", "model", "population", "visit", "adjusted for", "comparisons"):
        sap.add_column(col, overflow="fold")
    for a in plan.analyses:
        comparisons = []
        for c in a.comparisons:
            text = c.label
            if c.margin:
                text += f" ({c.margin.type.replace('_', '-')} margin {c.margin.value:g})"
            comparisons.append(text)
        sap.add_row(
            a.id, a.endpoint, a.model, a.population, a.visit,
            ", ".join([*a.covariates, *a.strata]) or "—", "; ".join(comparisons),
        )
    console.print(sap)
    if detailed:
        for pop in plan.populations:
            console.print(f"  {pop.code}: {pop.definition}", markup=False)
        if plan.multiplicity.order:
            console.print(f"  multiplicity order: {plan.multiplicity.order}", markup=False)

    rand = study.randomization
    factors = "; ".join(f"{f.name} ({', '.join(f.levels)})" for f in rand.factors) or "none"
    console.print(
        f"Randomization: stratified permuted blocks of varying size; strata: {len(rand.strata())} "
        f"(factors: {factors}); planned subjects: {rand.subjects or '—'}",
        markup=False,
    )
    if detailed:
        tol = study.tolerances
        console.print(
            f"Delivery tolerances: current ±{tol.current_rel:.1%}, pulse width ±{tol.pulse_width_rel:.1%}, "
            f"amplitude ±{tol.amplitude_rel:.1%}, frequency ±{tol.frequency_rel:.1%}, duration "
            f"±{tol.duration_rel:.1%}; electrode impedance {tol.impedance_ohm_min:g}–{tol.impedance_ohm_max:g} Ω",
            markup=False,
        )
        limits = "; ".join(f"{name} ≤ {_fmt(value)} {unit}" for name, value, unit in study.envelope.limits())
        console.print(f"Safety envelope: {limits}; no current path across the eyes", markup=False)
        failing = ", ".join(study.photo_qc.fail_on_flags) or "none (every photo QC flag is a warning)"
        console.print(f"Photo QC: flags that fail a photo: {failing}", markup=False)


def _report(path: Path) -> tuple[dict, int]:
    """Machine-readable validation result and its exit code."""
    from toolkit.study import StudyValidationError, load_study

    try:
        study = load_study(path)
    except StudyValidationError as exc:
        issues = [
            {"file": str(i.file) if i.file else None, "line": i.line, "column": i.column, "field": i.field,
             "message": i.message}
            for i in exc.issues
        ]
        return {"valid": False, "issues": issues}, exc.exit_code
    figures = {
        arm.id: {
            "modality": arm.modality,
            "figures": arm.prescription.figures().as_dict(),
            "violations": [v.message for v in study.envelope.check(arm.prescription)],
        }
        for arm in study.arms
    }
    limits = study.envelope.model_dump()
    return {"valid": True, "study": study.id, "design": study.design, "arms": figures, "envelope": limits}, 0


def _bench_check(study, bench_file: Path) -> list:
    """Every arm mapped onto the bench, as ``toolkit deliver`` maps it."""
    from instruments.bench import load_bench
    from toolkit.delivery.deliverable import check_deliverable

    return check_deliverable(study, load_bench(bench_file))


def _render_bench(rows: list, bench_file: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from toolkit.delivery.views import format_duration

    table = Table(title=f"Deliverable on the bench {bench_file}?")
    for col in ("arm", "modality", "", "how, or why not"):
        table.add_column(col, overflow="fold")
    for r in rows:
        if r.deliverable:
            s = r.summary
            if r.modality == "sham":
                how = (f"output never enabled; handled as {s['mimics']}: {s['bursts']} slots of "
                       f"{format_duration(s['interval_s'])} on {s['instrument']} channel {s['channel']}"
                       if s.get("mimics") else "output never enabled")
                table.add_row(r.arm_id, r.modality, "ok", how)
                continue
            unit = "pulses" if r.modality == "electroporation" else "cycles"
            how = (f"{s['instrument']} channel {s['channel']}: {s['bursts']} bursts of "
                   f"{format_duration(s['burst_s'])} ({s['pulses_per_burst']} {unit} each)")
            if s.get("polarity"):
                how += f"; polarity {s['polarity']}"
            views = [k[: -len("_points")] for k in s if k.endswith("_points")]
            if views:
                how += "; scope " + ", ".join(
                    f"{v} view sampled every {format_duration(s[v + '_interval_s'])} or faster "
                    f"({int(s[v + '_points'])} points)" for v in views)
            table.add_row(r.arm_id, r.modality, "ok", how)
        else:
            table.add_row(r.arm_id, r.modality, "REFUSED", r.problem)
    Console(highlight=False, soft_wrap=False).print(table)


def validate(
    path: Path = typer.Argument(..., help=_PATH_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the result (figures or issues) as JSON."),
    bench: Path = typer.Option(
        None, "--bench", help="Also map every arm onto this bench file, as `toolkit deliver` does (exit 1 if an "
        "arm cannot be delivered there)."),
) -> None:
    """Check a study definition: print a summary with computed figures vs limits, or every error (exit 2).

    With --bench, every arm is also mapped onto that bench exactly as a session would be (instruments,
    amplifier, series resistor, arbitrary-waveform memory, scope speed): an arm the bench cannot deliver is
    refused with the field and the limit, and the command exits 1.
    """
    if as_json:
        import json

        result, code = _report(path)
        if bench is not None and result.get("valid"):
            from toolkit.study import load_study

            rows = _bench_check(load_study(path), bench)
            result["bench"] = {"file": str(bench), "arms": {r.arm_id: {"deliverable": r.deliverable,
                                                                       "problem": r.problem or None,
                                                                       "plan": r.summary} for r in rows}}
            if not all(r.deliverable for r in rows):
                code = 1
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))
        raise typer.Exit(code)
    study = _load(path)
    _render(study, detailed=False)
    if bench is not None:
        rows = _bench_check(study, bench)
        _render_bench(rows, bench)
        refused = [r.arm_id for r in rows if not r.deliverable]
        if refused:
            typer.echo(f"NOT DELIVERABLE on {bench}: arm(s) {', '.join(refused)} (see above).")
            raise typer.Exit(1)
        typer.echo(f"OK: {study.id} is valid and every arm is deliverable on {bench}.")
        return
    typer.echo(f"OK: {study.id} is valid ({len(study.arms)} arms, {len(study.endpoints)} endpoints).")


def show(path: Path = typer.Argument(..., help=_PATH_HELP)) -> None:
    """Show a study definition in full (blinding codes are never shown)."""
    _render(_load(path), detailed=True)


def randomize(
    path: Path = typer.Argument(..., help=_PATH_HELP),
    subjects: int | None = typer.Option(
        None, "--subjects", "-n", min=1, help="Subjects to cover (default: randomization.subjects of the study)."
    ),
    per_stratum: bool = typer.Option(False, "--per-stratum", help="Read --subjects as the list length of each stratum."),
    out: Path | None = typer.Option(None, "--out", help="Folder to write to (default: data/<study-id>/)."),
) -> None:
    """Write the allocation list once to data/<study-id>/allocation.csv (+ allocation.json); never overwrites."""
    import json
    from collections import Counter

    from toolkit.study import allocate

    study = _load(path)
    csv_path = allocate(study, subjects, per_stratum=per_stratum, folder=out)
    json_path = csv_path.with_name("allocation.json")
    record = json.loads(json_path.read_text(encoding="utf-8"))
    with csv_path.open(encoding="utf-8") as handle:
        import csv

        counts = Counter(row["arm"] for row in csv.DictReader(handle))
    what = "left-side arm" if study.design == "split-face" else "arm"
    typer.echo(f"Allocation list for {study.id}: {record['rows']} randomization numbers in {record['strata']} strata")
    typer.echo(f"  per {what}: " + ", ".join(f"{arm} {counts.get(arm, 0)}" for arm in study.arm_ids))
    typer.echo(f"  written: {csv_path}")
    typer.echo(f"           {json_path} (seed, versions, checksum, blinding codes)")
    typer.echo(f"  SHA-256: {record['csv_sha256']}")


def schema(
    out: Path | None = typer.Option(None, "--out", help="Write the schema to this file instead of printing it."),
) -> None:
    """Print the JSON Schema of study.yaml (for editor completion and checks, e.g. the YAML language server)."""
    import json

    from toolkit.study import Study

    text = json.dumps(Study.model_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    if out.exists():
        from toolkit.errors import ConfigurationError

        raise ConfigurationError(f"{out} exists; choose another --out file (the schema never replaces a file)")
    out.write_text(text, encoding="utf-8")
    typer.echo(f"JSON Schema written to {out}")


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add this room's commands to the application."""
    group = groups["study"]
    group.command("validate")(validate)
    group.command("show")(show)
    group.command("randomize")(randomize)
    group.command("schema")(schema)
