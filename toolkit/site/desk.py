"""The site's desk: every form of a day at the site on one logged-in store, kept in step with each other.

A subject enrolled in the enrolment form appears at once in the patch test, adverse-event and photo forms;
a randomised one in the session launcher. Each form still writes on its own, through the store API.

>>> desk = SiteDesk(store, twin=twin)     # doctest: +SKIP
>>> desk.enrolment                         # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from toolkit.site.adverse_events import AdverseEventForm
from toolkit.site.enrolment import EnrolmentForm
from toolkit.site.photos import PhotoDesk
from toolkit.site.sessions import SessionLauncher

__all__ = ["SiteDesk"]


class SiteDesk:
    """The enrolment, session, photo and adverse-event forms of one logged-in user.

    Parameters
    ----------
    store : Store
        Logged in as the site's coordinator or investigator.
    twin : TwinBench, optional
        Sessions run on this digital twin (see :class:`~toolkit.site.sessions.SessionLauncher`).
    practice : bool
        Offer practice portraits in the photo form (rehearsals only).
    **session_kwargs
        Further arguments of :func:`~toolkit.delivery.run_session`.
    """

    def __init__(self, store: Any, *, twin: Any = None, practice: bool = False, **session_kwargs: Any) -> None:
        self.store = store
        self.enrolment = EnrolmentForm(store)
        self.session = SessionLauncher(store, twin=twin, **session_kwargs)
        self.photos = PhotoDesk(store, practice=practice)
        self.adverse_events = AdverseEventForm(store)
        for form in (self.enrolment.screening, self.enrolment.patch, self.enrolment.allocation,
                     self.adverse_events, self.photos):
            form.after_save.append(self.refresh)

    def refresh(self) -> None:
        """Reload the subject lists of every form."""
        self.enrolment.refresh()
        self.session.refresh()
        self.photos.refresh()
        self.adverse_events.refresh()
