"""Adverse events at the site: entry with coding suggestions from the study's dictionary, the subject's events
with serious ones highlighted, and corrections with a reason.

The verbatim term is typed as the subject reported it; the form suggests the dictionary's terms as you type
and shows the coding (preferred term, system organ class) the export will use; a term the dictionary does
not hold needs its system organ class chosen. A **serious** event is highlighted, and while it has no end
date the subject gets no further session (delivery checks it before anything is switched on).

Corrections go through :meth:`~toolkit.store.Store.update_record`, the same call as ``toolkit data
correct``: the new value is checked as a first entry would be, and the reason is required and audited.
"""

from __future__ import annotations

import html
from typing import Any

from toolkit.site.fields import FormBase, date_or_none, subject_options

__all__ = ["AdverseEventForm"]


def _options(values: tuple[str, ...], *, empty: str | None = "choose …") -> list[tuple[str, str | None]]:
    head = [(empty, None)] if empty is not None else []
    return head + [(v, v) for v in values]


class AdverseEventForm(FormBase):
    """Enter, list and correct a subject's adverse events (see the module text)."""

    form = "ae"

    def __init__(self, store: Any) -> None:
        import ipywidgets as widgets

        from toolkit.store.safety import AE_ACTIONS, AE_OUTCOMES, AE_RELATIONS, AE_SEVERITIES
        from toolkit.study.ae_dictionary import SYSTEM_ORGAN_CLASSES

        super().__init__(store)
        self.dictionary = store.ae_dictionary_loaded()
        terms = sorted({t.preferred_term for t in self.dictionary.terms.values()} | set(self.dictionary.terms)) \
            if self.dictionary else []
        self.subject = self.field("subject", "Subject", widgets.Dropdown(options=subject_options(store), value=None)).widget
        self.term = self.field("term", "Verbatim term", widgets.Combobox(
            options=[t for t in terms if t == t.strip()], ensure_option=False, placeholder="as reported"),
            hint="suggestions from the study's dictionary").widget
        self.coding = widgets.HTML("")
        self.coding.add_class("epmc-ae-coding")
        self.soc = self.field("soc", "System organ class", widgets.Dropdown(
            options=_options(SYSTEM_ORGAN_CLASSES), value=None, layout=widgets.Layout(width="28em"))).widget
        self.onset = self.field("onset", "Onset", widgets.DatePicker()).widget
        self.resolved = self.field("resolved", "End", widgets.DatePicker(), hint="empty while ongoing").widget
        self.session = self.field("session_number", "Session of onset", widgets.Dropdown(
            options=[("before the first session", None)], value=None)).widget
        self.severity = self.field("severity", "Severity", widgets.ToggleButtons(
            options=list(AE_SEVERITIES), value=None, style={"button_width": "6.5em"})).widget
        self.serious = self.field("serious", "Serious", widgets.Checkbox(value=False, indent=False,
                                                                          description="serious adverse event"),
                                  hint="death, life-threatening, hospitalisation, disability …").widget
        self.relation = self.field("relation", "Related to treatment", widgets.Dropdown(
            options=_options(AE_RELATIONS), value=None)).widget
        self.action = self.field("action_taken", "Action taken", widgets.Dropdown(
            options=_options(AE_ACTIONS), value=None)).widget
        self.outcome = self.field("outcome", "Outcome", widgets.Dropdown(
            options=_options(AE_OUTCOMES, empty="from the end date"), value=None)).widget
        self.button = widgets.Button(description="Record adverse event", button_style="primary")
        self.button.add_class("epmc-ae-submit")
        self.button.on_click(lambda _: self.submit())
        self.warning = widgets.HTML("")
        self.warning.add_class("epmc-ae-serious-warning")
        self.listing = widgets.HTML("")
        self.listing.add_class("epmc-ae-listing")
        self.term.observe(lambda _: self._code(), names="value")
        self.serious.observe(lambda _: self._highlight(), names="value")
        self.subject.observe(lambda _: self._subject_changed(), names="value")
        self.correction = _CorrectionForm(store, on_done=self._subject_changed)
        entry = [f.row for f in self.fields.values()]
        entry.insert(3, self.coding)
        self.entry = widgets.VBox([*entry, self.warning, self.button, self.status],
                                  layout=widgets.Layout(padding="6px", border="1px solid #ddd"))
        self.widget = widgets.VBox([widgets.HTML("<h3>Adverse events</h3>"), self.entry,
                                    widgets.HTML("<b>This subject's adverse events</b>"), self.listing,
                                    self.correction.widget])
        self.widget.add_class("epmc-adverse-events")

    def refresh(self) -> None:
        """Reload the subject list (after an enrolment elsewhere)."""
        self.reload_subjects(self.subject)

    def _code(self) -> None:
        text = self.term.value.strip()
        coded = self.dictionary.code(text) if (self.dictionary and text) else None
        if not text:
            self.coding.value = ""
        elif coded is not None:
            self.coding.value = (f"<div style='margin-left:16em;color:#1b5e20'>coded: <b>"
                                 f"{html.escape(coded.preferred_term)}</b> — {html.escape(coded.system_organ_class)}"
                                 f"{' (local skin reaction)' if coded.local_reaction else ''}</div>")
            self.soc.value = coded.system_organ_class
        elif self.dictionary is not None:
            self.coding.value = ("<div style='margin-left:16em;color:#8a6d00'>not in the study's dictionary: it "
                                 "stays verbatim and is listed as uncoded; choose its system organ class</div>")

    def _highlight(self) -> None:
        if self.serious.value:
            self.entry.layout.border = "3px solid #b00020"
            self.warning.value = ("<div style='color:#b00020;font-weight:bold'>Serious adverse event: report it to "
                                  "the sponsor within 24 hours. While it has no end date the subject receives no "
                                  "further session.</div>")
        else:
            self.entry.layout.border = "1px solid #ddd"
            self.warning.value = ""

    def _subject_changed(self) -> None:
        sid = self.subject.value
        sessions: list[tuple[str, int | None]] = [("before the first session", None)]
        if sid:
            try:
                d = self.store.deliveries(sid)
                for n in sorted({int(x) for x in d["session_number"]}) if len(d) else []:
                    sessions.append((f"session {n}", n))
            except Exception:
                pass
        self.session.options = sessions
        self.session.value = None
        self._list(sid)
        self.correction.set_subject(sid, self._events(sid))

    def _events(self, sid: str | None) -> list[Any]:
        if not sid:
            return []
        try:
            return self.store.adverse_events(sid)
        except Exception:
            return []

    def _list(self, sid: str | None) -> None:
        events = self._events(sid)
        if not events:
            self.listing.value = "<i>none recorded</i>" if sid else ""
            return
        rows = []
        for a in events:
            style = " style='background:#fde0e0;font-weight:bold'" if a.blocks_sessions else (
                " style='background:#fff4e5'" if a.serious else "")
            rows.append(
                f"<tr class='epmc-ae-row{' epmc-ae-blocking' if a.blocks_sessions else ''}'{style}><td>#{a.ae_id}</td>"
                f"<td>{html.escape(a.term)}</td><td>{a.onset}</td><td>{a.resolved or 'ongoing'}</td>"
                f"<td>{html.escape(a.severity)}</td><td>{'SERIOUS' if a.serious else ''}</td>"
                f"<td>{html.escape(a.relation)}</td><td>{html.escape(a.outcome or '')}</td></tr>")
        blocking = [a for a in events if a.blocks_sessions]
        note = (f"<p style='color:#b00020'><b>Sessions blocked</b> until serious event(s) "
                f"{', '.join(f'#{a.ae_id}' for a in blocking)} have an end date.</p>") if blocking else ""
        self.listing.value = (note + "<table><tr><th>id</th><th>term</th><th>onset</th><th>end</th><th>severity</th>"
                              "<th></th><th>relation</th><th>outcome</th></tr>" + "".join(rows) + "</table>")

    def submit(self) -> bool:
        """Record the event as entered; refusals beside their fields."""
        def record() -> int:
            from toolkit.errors import DataError

            if self.subject.value is None:
                raise DataError("choose the subject", field="subject")
            for key, w in (("severity", self.severity), ("relation", self.relation)):
                if w.value is None:
                    raise DataError(f"choose the {key}", field=key)
            return self.store.add_adverse_event(
                self.subject.value, term=self.term.value, soc=self.soc.value, severity=self.severity.value,
                serious=bool(self.serious.value), relation=self.relation.value,
                onset=self.onset.value or "", resolved=date_or_none(self.resolved.value),
                session_number=self.session.value, action_taken=self.action.value, outcome=self.outcome.value)

        def done(ae_id: int) -> None:
            serious = " — SERIOUS: sessions are blocked until it ends" if self.serious.value else ""
            self.say(f"adverse event #{ae_id} recorded for {html.escape(self.subject.value)}{serious}")
            self._subject_changed()

        return self.submit_with(record, on_success=done)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class _CorrectionForm(FormBase):
    """Correct one field of a recorded event, with a reason (audited)."""

    form = "aecorr"

    def __init__(self, store: Any, *, on_done: Any) -> None:
        import ipywidgets as widgets

        from toolkit.store.safety import AE_FIELDS

        super().__init__(store)
        self._on_done = on_done
        self.event = self.field("id", "Event", widgets.Dropdown(options=[("choose …", None)], value=None)).widget
        self.column = self.field("changes", "Field", widgets.Dropdown(options=_options(AE_FIELDS), value=None)).widget
        self.value = self.field("value", "New value", widgets.Text(placeholder="e.g. 2026-03-02, yes, moderate"),
                                hint="dates YYYY-MM-DD; empty clears").widget
        self.reason = self.field("reason", "Reason", widgets.Text(placeholder="why (audited)")).widget
        self.button = widgets.Button(description="Correct")
        self.button.add_class("epmc-aecorr-submit")
        self.button.on_click(lambda _: self.submit())
        self.widget = widgets.VBox([widgets.HTML("<b>Correct an entry</b> (the old and new values and the reason "
                                                 "are kept in the audit trail)"),
                                    *[f.row for f in self.fields.values()], self.button, self.status])

    def set_subject(self, sid: str | None, events: list[Any]) -> None:
        self.event.options = [("choose …", None)] + [(f"#{a.ae_id} {a.term} ({a.onset})", a.ae_id) for a in events]
        self.event.value = None

    def submit(self) -> bool:
        def correct() -> None:
            from toolkit.errors import DataError
            from toolkit.store.corrections import value_from_text

            if self.event.value is None:
                raise DataError("choose the event to correct", field="id")
            if self.column.value is None:
                raise DataError("choose the field to correct", field="changes")
            try:
                value = value_from_text("adverse_events", self.column.value, self.value.value)
            except DataError as exc:
                raise DataError(exc.message, field="value") from None
            try:
                self.store.update_record("adverse_events", self.event.value, reason=self.reason.value,
                                         **{self.column.value: value})
            except DataError as exc:  # the new value is refused: show it at the value, naming the field
                if self.column.value in exc.fields or not exc.fields:
                    raise DataError(exc.message, field="value", details=exc.details) from None
                raise

        def done(_: Any) -> None:
            self.say(f"event #{self.event.value}: {html.escape(self.column.value)} corrected (reason recorded)")
            self._on_done()

        return self.submit_with(correct, on_success=done)
