"""Clinical study toolkit for electroporation vs microcurrent facial skin trials.

Rooms (see ARCHITECTURE in the project docs):

- :mod:`toolkit.study`     the validated study definition (design, prescriptions, safety envelope, SAP)
- :mod:`toolkit.store`     the system of record (SQLAlchemy), audit trail, blinding, CDISC-style exports
- :mod:`toolkit.delivery`  one treatment session on the bench: configure, verify, deliver, record
- :mod:`toolkit.imaging`   facial photo QC, calibration, registration, wrinkle and lift metrics
- :mod:`toolkit.stats`     ANCOVA, MMRM, split-face, responders, safety tables
- :mod:`toolkit.report`    figures, tables, datasets and the report bundle
- :mod:`toolkit.cli`       the ``toolkit`` command line
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("epmc-toolkit")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
