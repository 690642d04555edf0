"""The site's daily work in JupyterLab: enrolment with the eligibility checklist, adverse events, visit photos,
the treatment session and the blinded rating station.

Each form is a set of ipywidgets that writes through the same store API as the command line (same checks,
same permissions, same audit trail); a refusal is shown beside the field it concerns, never as a traceback.
Open a store as the person at the keyboard and display a form::

    from toolkit.site import EnrolmentForm
    store = open_store(study, user="jdoe", password=getpass())
    EnrolmentForm(store)

``notebooks/06-site-day.ipynb`` walks one subject through a day at the site with every form.
"""

from toolkit.site.adverse_events import AdverseEventForm
from toolkit.site.desk import SiteDesk
from toolkit.site.enrolment import AllocationForm, EnrolmentForm, PatchTestForm, ScreeningForm
from toolkit.site.photos import PhotoDesk
from toolkit.site.rating import RatingStation
from toolkit.site.sessions import SessionLauncher

__all__ = [
    "AdverseEventForm",
    "AllocationForm",
    "EnrolmentForm",
    "PatchTestForm",
    "PhotoDesk",
    "RatingStation",
    "ScreeningForm",
    "SessionLauncher",
    "SiteDesk",
]
