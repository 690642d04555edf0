"""Enrolment at the site: screening with the study's checklist and the consent, the patch test, randomisation.

:class:`EnrolmentForm` stacks three forms, each one store call (one transaction):

1. **Screening and enrolment** (:class:`ScreeningForm`): subject id, demographics, the stratum levels that
   follow from them (shown as they are derived), the consent date (and consent to publication), and every
   inclusion and exclusion criterion of ``study.yaml``, each answered yes or no. The store refuses a subject
   outside the study's ranges, an unanswered item, an inclusion not met, an exclusion that applies, or a
   checklist dated before the consent, each message beside its field; nothing is written then.
2. **Patch test** (:class:`PatchTestForm`): the read date and the result (after the consent).
3. **Randomisation** (:class:`AllocationForm`): the eligibility shown, then a confirmation step, then the
   allocation as far as the user's role may see it (the arm for a role that treats, never for a blinded one).

>>> EnrolmentForm(store).widget        # doctest: +SKIP
"""

from __future__ import annotations

import html
from datetime import date
from typing import Any

from toolkit.site.fields import FormBase, date_or_none, subject_options, yes_no

__all__ = ["AllocationForm", "EnrolmentForm", "PatchTestForm", "ScreeningForm"]

_SEXES = [("choose …", None), ("F — female", "F"), ("M — male", "M"), ("U — unknown", "U")]
_FITZPATRICK = [("choose …", None)] + [(t, t) for t in ("I", "II", "III", "IV", "V", "VI")]



class ScreeningForm(FormBase):
    """Screening: demographics, consent and the eligibility checklist, enrolled in one transaction."""

    form = "enrol"

    def __init__(self, store: Any, *, on_enrolled: Any = None) -> None:
        import ipywidgets as widgets

        super().__init__(store)
        self._on_enrolled = on_enrolled
        info = store.info
        self.subject_id = self.field("subject_id", "Subject id", widgets.Text(placeholder="e.g. S-001")).widget
        self.age = self.field("age", "Age (years)", widgets.Text(placeholder="years")).widget
        self.sex = self.field("sex", "Sex", widgets.Dropdown(options=_SEXES, value=None)).widget
        self.fitzpatrick = self.field("fitzpatrick", "Fitzpatrick skin type",
                                      widgets.Dropdown(options=_FITZPATRICK, value=None)).widget
        self.race = self.field("race", "Race (as collected)", widgets.Text(placeholder="optional")).widget
        self.strata: dict[str, Any] = {}
        for factor in info.strata_factors:
            rule = info.strata_rules.get(factor)
            if rule:
                w = widgets.HTML("—")
                label = f"Stratum {factor} (from {rule['from']})"
            else:
                levels = info.strata_levels.get(factor, ())
                w = widgets.Dropdown(options=[("choose …", None)] + [(lv, lv) for lv in levels], value=None)
                label = f"Stratum {factor}"
            self.strata[factor] = w
            self.field(f"strata.{factor}", label, w)
        self.consent = self.field("consent_signed_on", "Consent signed on", widgets.DatePicker(),
                                  hint="before any study procedure").widget
        self.publication = self.field(
            "publication", "Face may be shown in reports",
            widgets.Dropdown(options=[("not asked", None), ("yes", True), ("no", False)], value=None)).widget
        self.checked_on = self.field("checked_on", "Checklist answered on", widgets.DatePicker(value=date.today()),
                                     hint="on or after the consent").widget
        elig = info.eligibility
        ranges = []
        if elig.age_min_years is not None:
            ranges.append(f"age {elig.age_min_years}–{elig.age_max_years} years")
        if elig.fitzpatrick_types:
            ranges.append("Fitzpatrick " + "/".join(("I", "II", "III", "IV", "V", "VI")[t - 1]
                                                   for t in elig.fitzpatrick_types))
        self.answers: dict[str, Any] = {}
        rows = []
        for c in elig.checklist():
            toggle = yes_no(self.form, f"checklist.{c.code}")
            self.answers[c.code] = toggle
            tag = "Inclusion" if c.kind == "inclusion" else "Exclusion"
            rows.append(self.field(f"checklist.{c.code}", f"{tag}: {c.text}", toggle, label_width="30em").row)
        self.button = widgets.Button(description="Enrol", button_style="primary", icon="user-plus")
        self.button.add_class("epmc-enrol-submit")
        self.button.on_click(lambda _: self.submit())
        for w in (self.age, self.sex, self.fitzpatrick):
            w.observe(lambda _: self._derive(), names="value")
        head = widgets.HTML("<h3>1 · Screening and enrolment</h3><p>Checked from the data: "
                            + html.escape("; ".join(ranges) or "—") + ". Answer every criterion: <b>yes</b> when "
                            "it holds for the subject.</p>")
        main = [f.row for k, f in self.fields.items() if not k.startswith("checklist.")]
        self.widget = widgets.VBox([head, *main, widgets.HTML("<b>Eligibility checklist</b>"), *rows,
                                    self.button, self.status])

    def _derive(self) -> None:
        from toolkit.study.strata import level_for

        facts = {"age": self.age.value.strip(), "fitzpatrick": self.fitzpatrick.value, "sex": self.sex.value,
                 "site": getattr(self.store.identity, "site", None)}
        for factor, rule in self.store.info.strata_rules.items():
            value = facts.get(rule.get("from", ""))
            try:
                level = level_for(rule, value) if value not in (None, "") else None
            except (TypeError, ValueError):
                level = None
            self.strata[factor].value = html.escape(level or "—")

    def values(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`~toolkit.store.Store.enroll_subject` as entered."""
        rules = self.store.info.strata_rules  # derived levels are filled in (and checked) by the store
        strata = {f: w.value for f, w in self.strata.items() if f not in rules and w.value is not None}
        return {
            "subject_id": self.subject_id.value,
            "age": self.age.value.strip(),
            "sex": self.sex.value or "",
            "fitzpatrick": self.fitzpatrick.value or "",
            "race": self.race.value.strip() or None,
            "strata": strata,
            "consent_signed_on": date_or_none(self.consent.value),
            "publication": self.publication.value if self.consent.value else None,
            "checklist": {code: t.value == "yes" for code, t in self.answers.items() if t.value is not None}
            | {code: None for code, t in self.answers.items() if t.value is None},
            "checked_on": date_or_none(self.checked_on.value),
        }

    def submit(self) -> bool:
        """Enrol the subject as entered; refusals are shown beside their fields."""
        def enrol() -> Any:
            v = self.values()
            v["checklist"] = {k: a for k, a in v["checklist"].items() if a is not None}
            if self.fitzpatrick.value is None:  # the store's message would quote an empty value
                from toolkit.errors import DataError

                raise DataError("choose the Fitzpatrick skin type (I–VI)", field="fitzpatrick")
            return self.store.enroll_subject(v.pop("subject_id"), **v)

        def done(rec: Any) -> None:
            strata = ", ".join(f"{k}={v}" for k, v in rec.strata.items()) or "—"
            self.say(f"{html.escape(rec.subject_id)} enrolled (strata {html.escape(strata)}); consent of "
                     f"{rec.consent_signed_on}, checklist met. Next: the patch test.")
            if self._on_enrolled is not None:
                self._on_enrolled(rec)

        return self.submit_with(enrol, on_success=done)


class PatchTestForm(FormBase):
    """The patch test read: date and result, after the consent."""

    form = "patch"

    def __init__(self, store: Any) -> None:
        import ipywidgets as widgets

        super().__init__(store)
        self.subject = self.field("subject", "Subject", widgets.Dropdown(options=subject_options(store),
                                                                           value=None)).widget
        self.result = self.field("passed", "Result", widgets.ToggleButtons(options=["pass", "fail"], value=None,
                                                                            style={"button_width": "5em"})).widget
        self.read_on = self.field("read_on", "Read on", widgets.DatePicker(),
                                  hint="after the consent, at the study's reading time").widget
        self.notes = self.field("notes", "Notes", widgets.Text(placeholder="optional")).widget
        self.button = widgets.Button(description="Record patch test", button_style="primary")
        self.button.add_class("epmc-patch-submit")
        self.button.on_click(lambda _: self.submit())
        self.widget = widgets.VBox([widgets.HTML("<h3>2 · Patch test</h3>"),
                                    *[f.row for f in self.fields.values()], self.button, self.status])

    def refresh(self) -> None:
        """Reload the subjects (after an enrolment)."""
        self.reload_subjects(self.subject)

    def submit(self) -> bool:
        """Record the read; refusals beside their fields."""
        def record() -> Any:
            if self.subject.value is None:
                from toolkit.errors import DataError

                raise DataError("choose the subject", field="subject")
            passed = {"pass": True, "fail": False}.get(self.result.value)
            self.store.record_patch_test(self.subject.value, passed=passed, read_on=self.read_on.value or "",
                                         notes=self.notes.value.strip() or None)
            return self.store.subject(self.subject.value)

        def done(rec: Any) -> None:
            state = "eligible for randomisation" if rec.eligible else "not eligible: " + ", ".join(rec.unmet)
            self.say(f"patch test of {html.escape(rec.subject_id)} recorded ({self.result.value}); "
                     f"{html.escape(state)}")

        return self.submit_with(record, on_success=done)


class AllocationForm(FormBase):
    """Randomisation with a confirmation step; the result shows what the user's role may see."""

    form = "alloc"

    def __init__(self, store: Any) -> None:
        import ipywidgets as widgets

        super().__init__(store)
        self.subject = self.field("subject", "Subject", widgets.Dropdown(
            options=subject_options(store, allocated=False), value=None)).widget
        self.button = widgets.Button(description="Randomise …", button_style="warning", icon="random")
        self.button.add_class("epmc-alloc-submit")
        self.confirm = widgets.Button(description="Confirm randomisation", button_style="danger")
        self.confirm.add_class("epmc-alloc-confirm")
        self.cancel = widgets.Button(description="Cancel")
        self.question = widgets.HTML("")
        self.confirm_box = widgets.VBox([self.question, widgets.HBox([self.confirm, self.cancel])],
                                        layout=widgets.Layout(display="none"))
        self.button.on_click(lambda _: self.ask())
        self.confirm.on_click(lambda _: self.submit())
        self.cancel.on_click(lambda _: self._hide())
        self.result = widgets.HTML("")
        self.result.add_class("epmc-alloc-result")
        self.widget = widgets.VBox([widgets.HTML("<h3>3 · Randomisation</h3>"),
                                    *[f.row for f in self.fields.values()], self.button, self.confirm_box,
                                    self.status, self.result])

    def refresh(self) -> None:
        """Reload the subjects not yet randomised."""
        self.reload_subjects(self.subject, allocated=False, keep=False)

    def _hide(self) -> None:
        self.confirm_box.layout.display = "none"

    def ask(self) -> None:
        """Show the subject's eligibility and ask for confirmation (randomisation cannot be undone)."""
        self.clear()
        self.result.value = ""
        sid = self.subject.value
        if sid is None:
            self.fields["subject"].show("choose the subject to randomise")
            return
        try:
            rec = self.store.subject(sid)
        except Exception as exc:
            self.show_error(exc)
            return
        if not rec.eligible:
            self.fields["subject"].show("not eligible: " + ", ".join(rec.unmet))
            self.say(f"{html.escape(sid)} cannot be randomised yet: " + html.escape(", ".join(rec.unmet)), ok=False)
            return
        stratum = ", ".join(f"{k}={v}" for k, v in rec.strata.items()) or "none"
        self.question.value = (f"<b>Randomise {html.escape(sid)} now?</b> The next row of the allocation list in "
                               f"the subject's stratum ({html.escape(stratum)}) is given for good; it cannot be "
                               "undone.")
        self.confirm_box.layout.display = "flex"

    def submit(self) -> bool:
        """Randomise the chosen subject (after :meth:`ask`)."""
        self._hide()
        sid = self.subject.value

        def allocate() -> Any:
            self.store.allocate(sid)
            return self.store.subject(sid)

        def done(rec: Any) -> None:
            alloc = rec.allocation  # None for a role that may not see allocations
            if alloc is None:
                text = f"{html.escape(sid)} randomised; the allocation is hidden from your role."
            else:
                arm = self.store.info.arm(alloc.arm_id)
                name = f"{alloc.arm_id} ({arm.name})" if arm else alloc.arm_id
                sides = ""
                if alloc.side_map:
                    sides = "; " + ", ".join(f"{side} side: {a}" for side, a in sorted(alloc.side_map.items()))
                text = (f"{html.escape(sid)}: randomisation number {alloc.rand_no}, arm {html.escape(name)}"
                        f"{html.escape(sides)}, blinded code {html.escape(alloc.code)}, stratum "
                        f"{html.escape(alloc.stratum)}. Analysts see only the code until unblinding.")
            self.result.value = f"<div style='padding:6px;border:1px solid #1b5e20'>{text}</div>"
            self.say("randomised")
            self.refresh()

        return self.submit_with(allocate, on_success=done)


class EnrolmentForm:
    """Screening and enrolment, patch test and randomisation, one above the other (see the module text)."""

    def __init__(self, store: Any) -> None:
        import ipywidgets as widgets

        self.store = store
        self.patch = PatchTestForm(store)
        self.allocation = AllocationForm(store)
        self.screening = ScreeningForm(store, on_enrolled=lambda _: self.refresh())
        who = store.identity.describe() if store.identity else "nobody (log in first)"
        self.widget = widgets.VBox([widgets.HTML(f"<p>Study <b>{html.escape(store.study_id)}</b>, working as "
                                                 f"<b>{html.escape(who)}</b>.</p>"),
                                    self.screening.widget, self.patch.widget, self.allocation.widget])
        self.widget.add_class("epmc-enrolment")

    def refresh(self) -> None:
        """Reload the subject lists of the patch test and randomisation forms."""
        self.patch.refresh()
        self.allocation.refresh()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
