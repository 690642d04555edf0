"""Form fields with their message beside them, and the one way a form submits.

Every form of the site is a set of :class:`Field` rows (label, input, message) and a submit button. A submit
runs one call of the store API in :meth:`FormBase.submit_with`: a refusal of the store (a
:class:`~toolkit.errors.ToolkitError`) is shown next to each field it names (``fields`` of the error) and
in the form's status line; anything unexpected is shown the same way, never as a traceback. Each store call
is one transaction, so a refusal, or a kernel lost mid-form, leaves nothing half-written.

Each widget carries CSS classes ``epmc-<form>-<field>`` (and ``…-error`` for its message), which make the
forms addressable from a browser (tests, accessibility tools).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from toolkit.errors import ToolkitError

__all__ = ["Field", "FormBase", "css_name", "subject_options", "yes_no"]


def css_name(text: str) -> str:
    """A CSS class fragment of ``text`` (letters, digits and ``-``)."""
    return "".join(c if c.isalnum() else "-" for c in str(text).lower()).strip("-")


class Field:
    """One row of a form: a label, the input widget and the message shown when the value is refused.

    Parameters
    ----------
    form : str
        The form's short name (for the CSS classes).
    key : str
        The field's name as the store names it in its refusals (``age``, ``checklist.epilepsy`` …).
    label : str
        What the user reads.
    widget : ipywidgets.Widget
        The input.
    hint : str, optional
        A short help text shown under the label.
    """

    def __init__(self, form: str, key: str, label: str, widget: Any, *, hint: str | None = None,
                 label_width: str = "16em") -> None:
        import ipywidgets as widgets

        self.key = key
        self.widget = widget
        widget.add_class(f"epmc-{form}-{css_name(key)}")
        self.message = widgets.HTML("")
        self.message.add_class(f"epmc-{form}-{css_name(key)}-error")
        self.message.add_class("epmc-error")
        text = html.escape(label) + (f"<br><small style='color:#666'>{html.escape(hint)}</small>" if hint else "")
        self.label = widgets.HTML(text, layout=widgets.Layout(width=label_width, min_width=label_width))
        self.row = widgets.HBox([self.label, widget, self.message],
                                layout=widgets.Layout(align_items="center", margin="2px 0"))

    def show(self, message: str | None) -> None:
        """Show ``message`` beside the field (``None`` clears it)."""
        if message:
            self.message.value = f"<span style='color:#b00020'>&#9888; {html.escape(message)}</span>"
        else:
            self.message.value = ""


def subject_options(store: Any, *, allocated: bool | None = None) -> list[tuple[str, str | None]]:
    """Dropdown options of the study's subjects (all, only randomised ones, or only those not yet randomised).

    A user who may not list subjects gets an empty list; the store says why when the form is submitted.
    """
    try:
        subjects = store.subjects()
    except Exception:
        subjects = []
    if allocated is not None:
        subjects = [s for s in subjects if (s.allocation is not None) == allocated]
    return [("choose …", None)] + [(s.subject_id, s.subject_id) for s in subjects]


def yes_no(form: str, key: str) -> Any:
    """A yes/no toggle with no answer yet (``value`` is ``None`` until one is chosen)."""
    import ipywidgets as widgets

    toggle = widgets.ToggleButtons(options=["yes", "no"], value=None, style={"button_width": "4.5em"})
    toggle.add_class(f"epmc-{form}-{css_name(key)}-toggle")
    return toggle


class FormBase:
    """Fields, a status line and the submit logic shared by the site's forms.

    Subclasses build their fields with :meth:`field` and call :meth:`submit_with` from their buttons.
    """

    #: short name of the form (CSS classes ``epmc-<form>-…``)
    form = "form"

    def __init__(self, store: Any) -> None:
        import ipywidgets as widgets

        self.store = store
        self.fields: dict[str, Field] = {}
        self.status = widgets.HTML("")
        self.status.add_class(f"epmc-{self.form}-status")
        #: called (without arguments) after each successful submit, e.g. to refresh other forms
        self.after_save: list[Callable[[], None]] = []

    def field(self, key: str, label: str, widget: Any, **kwargs: Any) -> Field:
        """Add (and return) a field of this form."""
        f = Field(self.form, key, label, widget, **kwargs)
        self.fields[key] = f
        return f

    def reload_subjects(self, dropdown: Any, *, allocated: bool | None = None, keep: bool = True) -> None:
        """Reload ``dropdown`` with the subjects (see :func:`subject_options`); keep the choice if still there."""
        current = dropdown.value if keep else None
        dropdown.options = subject_options(self.store, allocated=allocated)
        dropdown.value = current if current in [v for _, v in dropdown.options] else None

    def clear(self, keys: Iterable[str] | None = None) -> None:
        """Clear the messages of ``keys`` (default: every field) and the status line."""
        for key in keys if keys is not None else self.fields:
            if key in self.fields:
                self.fields[key].show(None)
        self.status.value = ""

    def say(self, text: str, *, ok: bool = True) -> None:
        """Show ``text`` in the status line (green when ``ok``, red otherwise)."""
        colour = "#1b5e20" if ok else "#b00020"
        mark = "&#10004;" if ok else "&#9888;"
        self.status.value = f"<div style='color:{colour};margin:4px 0'>{mark} {text}</div>"

    def show_error(self, exc: BaseException, *, keys: Iterable[str] | None = None) -> None:
        """Show a refusal beside the fields it names, and in the status line."""
        fields = dict(getattr(exc, "fields", {}) or {})
        shown = []
        for key, message in fields.items():
            target = self._field_for(key)
            if target is not None:
                target.show(message)
                shown.append(target.key)
        if isinstance(exc, ToolkitError):
            lines = [exc.message, *exc.details]
        else:  # not the user's mistake: say so plainly, without a traceback
            lines = [f"unexpected error ({type(exc).__name__}): {exc}"]
        where = f" (see {', '.join(shown)})" if shown else ""
        text = "<br>".join(html.escape(str(x)) for x in lines)
        self.say(f"not saved{html.escape(where)}: {text}", ok=False)

    def _field_for(self, key: str) -> Field | None:
        if key in self.fields:
            return self.fields[key]
        head = key.split(".", 1)[0]  # "checklist.epilepsy" -> a field "checklist" if the form has one
        return self.fields.get(head)

    def submit_with(self, action: Callable[[], Any], *, on_success: Callable[[Any], None] | None = None) -> bool:
        """Run one store call; show refusals inline. Return whether it was saved."""
        self.clear()
        try:
            result = action()
        except Exception as exc:  # a form never shows a traceback: every failure is shown inline
            self.show_error(exc)
            return False
        if on_success is not None:
            on_success(result)
        for hook in self.after_save:
            try:
                hook()
            except Exception as exc:  # a refresh elsewhere must not hide that this was saved
                self.say(f"saved; another form could not refresh: {html.escape(str(exc))}")
        return True


def date_or_none(value: Any) -> date | None:
    """A date picker's value (``None`` when empty)."""
    return value if isinstance(value, date) else None
