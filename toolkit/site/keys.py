"""A focusable keyboard field for JupyterLab: the keys pressed in it reach Python, and nothing else sees them.

Widgets of ipywidgets report values, not key presses; the rating station needs the keys (a digit chooses a
grade, Enter files it) without JupyterLab's own shortcuts acting on them (in a notebook's command mode "1"
turns a cell into a heading). :class:`KeyField` is a small anywidget: a text input (so JupyterLab treats it
as an editor and leaves its keys alone) whose key presses are sent to Python and then swallowed.

Each key goes to Python as a message of its own, never as a change of the widget's synced state: while the kernel
is busy, ipywidgets holds state changes back and sends only the latest, so "3" then Enter typed quickly would
reach Python as Enter alone (the grade lost). Messages arrive one by one, in the order the keys were pressed.
"""

from __future__ import annotations

import anywidget
import traitlets

__all__ = ["KeyField"]

_ESM = """
function render({ model, el }) {
  const input = document.createElement("input");
  input.type = "text";
  input.className = "epmc-keys-input";
  input.setAttribute("data-lm-suppress-shortcuts", "true");
  input.setAttribute("aria-label", model.get("prompt"));
  input.placeholder = model.get("prompt");
  input.autocomplete = "off";
  el.classList.add("epmc-keys");
  el.appendChild(input);
  model.on("change:prompt", () => { input.placeholder = model.get("prompt"); });
  input.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.key === "Tab") return;
    e.preventDefault();
    e.stopPropagation();
    model.send({ key: e.key });
  });
  model.on("msg:custom", (msg) => { if (msg && msg.focus) input.focus(); });
  if (model.get("autofocus")) setTimeout(() => input.focus(), 50);
}
export default { render };
"""

_CSS = """
.epmc-keys-input { width: 24em; padding: 6px; font-size: 1.05em; border: 2px solid #1565c0; border-radius: 4px; }
.epmc-keys-input:focus { outline: 3px solid #90caf9; }
"""


class KeyField(anywidget.AnyWidget):
    """A focusable field that sends each key press to Python (:attr:`key`, counted by :attr:`presses`).

    Observe ``presses`` (it changes on every press, even when the same key is pressed twice).
    """

    _esm = _ESM
    _css = _CSS
    #: the last key pressed, as the browser names it ("3", "Enter", "ArrowLeft" …); set in Python from each key's
    #: message, not synced (see the module's notes)
    key = traitlets.Unicode("")
    #: how many keys were pressed
    presses = traitlets.Int(0)
    #: the placeholder text
    prompt = traitlets.Unicode("click here, then type").tag(sync=True)
    #: take the focus when shown
    autofocus = traitlets.Bool(True).tag(sync=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.on_msg(self._on_key)

    def _on_key(self, _widget: object, content: dict, _buffers: object) -> None:
        key = content.get("key") if isinstance(content, dict) else None
        if isinstance(key, str) and key:
            self.key = key
            self.presses += 1

    def focus(self) -> None:
        """Put the keyboard focus in the field."""
        self.send({"focus": True})
