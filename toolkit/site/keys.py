"""A focusable keyboard field for JupyterLab: the keys pressed in it reach Python, and nothing else sees them.

Widgets of ipywidgets report values, not key presses; the rating station needs the keys (a digit chooses a
grade, Enter files it) without JupyterLab's own shortcuts acting on them (in a notebook's command mode "1"
turns a cell into a heading). :class:`KeyField` is a small anywidget: a text input (so JupyterLab treats it
as an editor and leaves its keys alone) whose key presses are sent to Python and then swallowed.
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
    model.set("key", e.key);
    model.set("presses", model.get("presses") + 1);
    model.save_changes();
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
    #: the last key pressed, as the browser names it ("3", "Enter", "ArrowLeft" …)
    key = traitlets.Unicode("").tag(sync=True)
    #: how many keys were pressed
    presses = traitlets.Int(0).tag(sync=True)
    #: the placeholder text
    prompt = traitlets.Unicode("click here, then type").tag(sync=True)
    #: take the focus when shown
    autofocus = traitlets.Bool(True).tag(sync=True)

    def focus(self) -> None:
        """Put the keyboard focus in the field."""
        self.send({"focus": True})
