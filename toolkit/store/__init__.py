"""The system of record: SQLAlchemy models, audit trail, blinding, imports and exports.

>>> from toolkit.store import open_store                       # doctest: +SKIP
>>> with open_store(study, user="jdoe", password=getpass()) as store:  # doctest: +SKIP
...     store.enroll_subject("S-001", age=45, sex="F", fitzpatrick="III")

The :class:`Store` facade (:mod:`~toolkit.store.store`) combines one module per aggregate: subjects,
allocations, deliveries, photos, measurements, assessments, safety, corrections and blinding, on the shared
:mod:`~toolkit.store.base`. Further submodules: :mod:`~toolkit.store.audit` (hash-chained trail,
``verify_audit``), :mod:`~toolkit.store.export` (SDTM/ADaM-like datasets as CSV, Parquet, SAS XPORT v5),
:mod:`~toolkit.store.imports` (CSV imports checked against a data dictionary).
"""

from toolkit.store.records import AdverseEventRecord, Allocation, PatchTest, PhotoRecord, SubjectRecord
from toolkit.store.store import Store, open_store

__all__ = [
    "AdverseEventRecord",
    "Allocation",
    "PatchTest",
    "PhotoRecord",
    "Store",
    "SubjectRecord",
    "open_store",
]
