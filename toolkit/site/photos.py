"""Registering a visit's photo from the site's notebook: upload the file, choose subject, visit and view.

The photo is stored as the command line stores it (:func:`toolkit.imaging.pipeline.ingest_photo`: copied
read-only into the raw store with its SHA-256, registered in the store); a refusal (an unknown visit, the
same file twice, an unreadable image) is shown beside its field. For rehearsals, ``practice=True`` offers a
portrait that ships with scikit-image instead of an upload.
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any

from toolkit.site.fields import FormBase, subject_options

__all__ = ["PhotoDesk"]


class PhotoDesk(FormBase):
    """Upload and register a photo of a subject at a visit (see the module text)."""

    form = "photo"

    def __init__(self, store: Any, *, practice: bool = False) -> None:
        import ipywidgets as widgets

        super().__init__(store)
        self.practice = practice
        #: the id of the photo registered last
        self.last_photo_id: int | None = None
        self.subject = self.field("subject_id", "Subject", widgets.Dropdown(options=subject_options(store),
                                                                              value=None)).widget
        visits = [(f"{v.id} — {v.name}", v.id) for v in store.info.visits]
        self.visit = self.field("visit_id", "Visit", widgets.Dropdown(options=[("choose …", None), *visits],
                                                                       value=None)).widget
        self.view = self.field("view", "View", widgets.Dropdown(options=["frontal", "left45", "right45"],
                                                                 value="frontal")).widget
        self.upload = self.field("source", "Photo file", widgets.FileUpload(accept="image/*", multiple=False),
                                 hint="JPEG, PNG or TIFF as taken").widget
        self.button = widgets.Button(description="Register photo", button_style="primary")
        self.button.add_class("epmc-photo-submit")
        self.button.on_click(lambda _: self.submit())
        rows = [f.row for f in self.fields.values()]
        buttons = [self.button]
        if practice:
            self.sample = widgets.Button(description="Use a practice portrait")
            self.sample.add_class("epmc-photo-practice")
            self.sample.on_click(lambda _: self.submit(practice=True))
            buttons.append(self.sample)
        self.widget = widgets.VBox([widgets.HTML("<h3>Visit photo</h3>"), *rows, widgets.HBox(buttons), self.status])

    def refresh(self) -> None:
        """Reload the enrolled subjects."""
        self.reload_subjects(self.subject)

    def submit(self, *, practice: bool = False) -> bool:
        """Register the uploaded (or practice) photo."""
        def register() -> int:
            from toolkit.errors import DataError
            from toolkit.imaging.pipeline import ingest_photo

            if self.subject.value is None:
                raise DataError("choose the subject", field="subject_id")
            if self.visit.value is None:
                raise DataError("choose the visit", field="visit_id")
            with tempfile.TemporaryDirectory(prefix="epmc-upload-") as tmp:
                if practice:
                    source = _practice_portrait(Path(tmp), self.subject.value, self.visit.value)
                else:
                    files = list(self.upload.value)
                    if not files:
                        raise DataError("choose the photo file to upload", field="source")
                    item = files[0]
                    source = Path(tmp) / Path(str(item["name"])).name
                    source.write_bytes(bytes(item["content"]))
                return ingest_photo(self.store, self.store.study, source, subject_id=self.subject.value,
                                    visit_id=self.visit.value, view=self.view.value)

        def done(photo_id: int) -> None:
            self.last_photo_id = photo_id
            self.say(f"photo #{photo_id} of {html.escape(self.subject.value)} at {html.escape(self.visit.value)} "
                     "registered")
            self.upload.value = ()

        return self.submit_with(register, on_success=done)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _practice_portrait(folder: Path, subject_id: str, visit_id: str) -> Path:
    """A distinct practice photo: scikit-image's astronaut portrait, shifted in brightness per subject and visit."""
    import hashlib

    import cv2
    import numpy as np
    from skimage import data

    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    shift = int(hashlib.sha256(f"{subject_id}/{visit_id}".encode()).hexdigest()[:2], 16) % 24 - 12
    image = np.clip(image.astype(np.int16) + shift, 0, 255).astype(np.uint8)
    path = folder / f"practice-{visit_id.lower()}.png"
    cv2.imwrite(str(path), image)
    return path
