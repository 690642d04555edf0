"""The blinded rating station: a rater grades photo sets one by one, from the keyboard, blind to subject, arm,
session and date.

The station shows the next set of the rater's own work list (:meth:`~toolkit.store.Store.rating_queue`):
one photo, or baseline and follow-up side by side for a scale graded against baseline; the scale's grades
with their anchors (and reference pictures where ``study.yaml`` gives them). A digit chooses a grade, Enter
files it (the buttons do the same with the mouse). Nothing on the screen names the subject, the visit, the
session, the arm or a date: the images come re-encoded without metadata under an opaque set id.

Closing the station and opening it again continues where the rater stopped; a set filed from another window
is refused beside the grade and the station moves on. After the last first rating, the re-rating subset
follows, unannounced, for intra-rater agreement.

>>> RatingStation(store).widget       # doctest: +SKIP
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from toolkit.site.fields import FormBase

__all__ = ["RatingStation"]


class RatingStation(FormBase):
    """A blinded rater's station (see the module text)."""

    form = "rating"

    def __init__(self, store: Any) -> None:
        import ipywidgets as widgets

        from toolkit.site.keys import KeyField

        super().__init__(store)
        self.header = self.field("set_id", "Photo set", widgets.HTML("")).widget
        self.images = widgets.HBox([])
        self.images.add_class("epmc-rating-images")
        self.grade_box = widgets.VBox([])
        self.field("score", "Grade", self.grade_box, label_width="6em")
        self.keys = KeyField(prompt="click here, then type the grade (1–5) and press Enter")
        self.keys.add_class("epmc-rating-keys")
        self.keys.observe(self._key, names="presses")
        self.file_button = widgets.Button(description="File grade", button_style="primary", disabled=True)
        self.file_button.add_class("epmc-rating-submit")
        self.file_button.on_click(lambda _: self.file())
        self.progress = widgets.HTML("")
        self.progress.add_class("epmc-rating-progress")
        self.reload_button = widgets.Button(description="Look for new photo sets", icon="refresh",
                                            layout=widgets.Layout(width="auto"))
        self.reload_button.add_class("epmc-rating-reload")
        self.reload_button.on_click(lambda _: self.next())
        self.selected: float | None = None
        self.current: Any = None
        self._buttons: dict[float, Any] = {}
        self.filed = 0
        who = store.identity
        note = ""
        if who is not None and who.can("read_allocation"):
            note = ("<p style='color:#8a6d00'>You are logged in with a role that sees allocations; grades for the "
                    "study's blinded endpoints should come from a blinded rater.</p>")
        self.widget = widgets.VBox([
            widgets.HTML("<h3>Blinded rating</h3>" + note), self.progress, self.fields["set_id"].row, self.images,
            self.fields["score"].row, widgets.HBox([self.keys, self.file_button]), self.status,
            self.reload_button])
        self.widget.add_class("epmc-rating-station")
        self.next()

    # -- the work list ---------------------------------------------------------------------------------------
    def next(self) -> None:
        """Show the next set of the rater's work list (or say that the list is done)."""
        import ipywidgets as widgets

        self.selected = None
        self.file_button.disabled = True
        self.clear()
        try:
            queue = self.store.rating_queue()
            progress = self.store.rating_progress()
        except Exception as exc:
            self.current = None
            self.images.children = []
            self.grade_box.children = []
            self.show_error(exc)
            return
        second = ""
        if progress["sets"] and progress["rated"] == progress["sets"]:
            second = f"; second pass {progress['rerated']} of {progress['rerate_total']}"
        self.progress.value = (f"<p>{progress['rated']} of {progress['sets']} photo sets graded{second} · "
                               f"graded in this window: {self.filed}</p>")
        if not queue:
            self.current = None
            self.header.value = "<b>done</b>"
            self.images.children = []
            self.grade_box.children = []
            self.say("every photo set on your list is graded, thank you")
            return
        self.current = queue[0]
        self.header.value = (f"<code>{html.escape(self.current.set_id)}</code> · scale "
                             f"<b>{html.escape(self.current.scale)}</b>")
        try:
            images = self.store.rating_images(self.current.set_id)
        except Exception as exc:
            self.show_error(exc)
            return
        captions = ["Baseline", "Follow-up"] if len(images) == 2 else [""]
        self.images.children = [
            widgets.VBox([widgets.HTML(f"<b>{c}</b>"), widgets.Image(value=b, format="jpeg",
                                                                     layout=widgets.Layout(max_width="460px"))])
            for c, b in zip(captions, images, strict=True)]
        self._grades(self.current.scale)
        self.keys.focus()

    def _endpoint(self, scale: str) -> Any:
        for e in self.store.info.endpoints:
            if e.kind == "scale" and (e.metric or e.code) == scale:
                return e
        return None

    def _grades(self, scale: str) -> None:
        import ipywidgets as widgets

        info = self._endpoint(scale)
        anchors = dict(info.anchors) if info is not None else {}
        low, high = self.store.info.scale_range(scale)
        grades = sorted(anchors) if anchors else (
            [float(g) for g in range(int(low), int(high) + 1)] if low is not None and high is not None else [])
        pictures = self._pictures(scale)
        rows = []
        self._buttons = {}
        for g in grades:
            b = widgets.Button(description=f"{g:g}", layout=widgets.Layout(width="4em"))
            b.add_class(f"epmc-rating-grade-{g:g}".replace(".", "-"))
            b.on_click(lambda _, g=g: self._select(g))
            self._buttons[g] = b
            parts = [b, widgets.HTML(html.escape(anchors.get(g, "")))]
            if g in pictures:
                parts.insert(1, widgets.Image(value=pictures[g], format="png", layout=widgets.Layout(width="96px")))
            rows.append(widgets.HBox(parts, layout=widgets.Layout(align_items="center")))
        self.grade_box.children = rows
        self.keys.prompt = (f"click here, then type the grade ({grades[0]:g}–{grades[-1]:g}) and press Enter"
                            if grades else "click here")

    def _pictures(self, scale: str) -> dict[float, bytes]:
        """Reference pictures of the scale's grades from study.yaml (``grade_pictures``), if any."""
        study = self.store.study
        folder = getattr(study, "path", None)
        out: dict[float, bytes] = {}
        for e in getattr(study, "endpoints", ()) or ():
            if getattr(e, "kind", "") == "scale" and getattr(e, "scale", None) == scale and folder is not None:
                for g, rel in (getattr(e, "grade_pictures", {}) or {}).items():
                    path = Path(folder) / rel
                    if path.is_file():
                        out[float(g)] = _png(path)
        return out

    # -- choosing and filing ---------------------------------------------------------------------------------
    def _select(self, grade: float | None) -> None:
        self.selected = grade
        for g, b in self._buttons.items():
            b.button_style = "info" if g == grade else ""
        self.file_button.disabled = grade is None or self.current is None
        self.fields["score"].show(None)

    def _key(self, _: Any) -> None:
        key = self.keys.key
        if key == "Enter":
            self.file()
        elif key in ("Backspace", "Delete", "Escape"):
            self._select(None)
        elif key.isdigit():
            grade = float(key)
            if grade in self._buttons:
                self._select(grade)
            else:
                allowed = ", ".join(f"{g:g}" for g in self._buttons)
                self.fields["score"].show(f"{key} is not a grade of this scale; grades: {allowed}")

    def choose(self, grade: float) -> None:
        """Choose a grade (as a click or a digit key does)."""
        self._select(float(grade))

    def file(self) -> bool:
        """File the chosen grade of the shown set and move to the next one."""
        if self.current is None:
            return False
        if self.selected is None:
            self.fields["score"].show("choose a grade first (a digit key or a button)")
            return False
        item, grade = self.current, self.selected

        def rate() -> int:
            return self.store.rate(item.set_id, score=grade, repeat=item.repeat)

        saved = self.submit_with(rate)
        if saved:
            self.filed += 1
            self.next()
            done = "; every photo set on your list is graded, thank you" if self.current is None else ""
            self.say(f"grade {grade:g} filed{done}")
        else:  # e.g. graded meanwhile from another window: keep the message, move on
            message = self.status.value
            self.next()
            self.status.value = message
        return saved

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _png(path: Path) -> bytes:
    import cv2
    import numpy as np

    image = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return b""
    h, w = image.shape[:2]
    scale = 192 / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".png", image)
    return data.tobytes() if ok else b""
