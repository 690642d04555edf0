"""A kernel lost while a form is open: a half-filled form leaves nothing in the store and opens clean again; a
kernel killed inside a submit, after the form's rows were flushed but before the commit, leaves no part of them,
and the same form then saves. The forms run in a real IPython kernel (jupyter_client), killed with SIGKILL as a
crash or the kernel menu's restart does."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from toolkit.store import models as m
from toolkit.store import open_store
from toolkit.store.audit import verify_audit

pytest.importorskip("ipywidgets")
jupyter_client = pytest.importorskip("jupyter_client")

PW = "test password 2026"
CONSENT = date.today() - timedelta(days=10)
KERNEL = "python3"

_OPEN_FORM = """
from datetime import date
from toolkit.site import EnrolmentForm
from toolkit.store import open_store
from toolkit.study import load_study
store = open_store(load_study({study!r}), user="investigator", password={pw!r})
form = EnrolmentForm(store).screening
"""
_HALF = """
form.subject_id.value = "S-001"
form.age.value = "50"
form.sex.value = "F"
"""
_REST = """
form.fitzpatrick.value = "III"
form.consent.value = date.fromisoformat({consent!r})
form.checked_on.value = date.fromisoformat({consent!r})
kinds = {{c.code: c.kind for c in store.info.eligibility.checklist()}}
for code, toggle in form.answers.items():
    toggle.value = "yes" if kinds[code] == "inclusion" else "no"
"""
# the commit that writes the subject waits, its rows flushed into the open transaction, until the kernel is
# killed; it first writes down which kinds of row the transaction holds
_STALL_COMMIT = """
import json, pathlib, time
from sqlalchemy import event
from sqlalchemy.orm import Session
from toolkit.store import models as m
def _stall(session):
    if any(isinstance(o, m.SubjectRow) for o in session.identity_map.values()):
        held = {{row.__tablename__: session.query(row).count()
                 for row in (m.SubjectRow, m.ConsentRow, m.EligibilityCheckRow, m.AuditEntry)}}
        pathlib.Path({signal!r}).write_text(json.dumps(held))
        time.sleep(120)
event.listen(Session, "before_commit", _stall)
"""


class _Kernel:
    """An IPython kernel of this interpreter with a blocking ``run`` and a non-blocking ``send``."""

    def __init__(self, spec_root: Path) -> None:
        from jupyter_client import KernelManager

        self.km = KernelManager(kernel_name=KERNEL)
        self.km.kernel_spec_manager.kernel_dirs = [str(spec_root / "kernels")]
        self.km.start_kernel(env={**os.environ})
        self._connect()

    def _connect(self) -> None:
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str) -> str:
        """Run ``code``; return its printed output; fail with the kernel's error."""
        out: list[str] = []
        errors: list[str] = []

        def hook(msg: dict) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                errors.append(f"{content['ename']}: {content['evalue']}")

        reply = self.kc.execute_interactive(code, output_hook=hook, timeout=60)
        assert reply["content"]["status"] == "ok", errors
        return "".join(out)

    def send(self, code: str) -> None:
        self.kc.execute(code)

    def kill_and_restart(self) -> None:
        """What a crash followed by the kernel menu's restart does: SIGKILL, then a new kernel."""
        pid = self.km.provisioner.process.pid
        self.kc.stop_channels()
        self.km.restart_kernel(now=True)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        self._connect()

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (toolkit tests)", "language": "python"}), encoding="utf-8")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    k = _Kernel(tmp_path / "jupyter")
    yield k
    k.close()


def _counts(study) -> tuple[list, int]:
    from sqlalchemy import func, select

    with open_store(study, user="investigator", password=PW) as store:
        with store.connect() as conn:
            audit = conn.scalar(select(func.count()).select_from(m.AuditEntry.__table__))
        return store.subjects(), audit


def test_a_lost_kernel_leaves_nothing_half_written_and_the_form_opens_clean(kernel, demo_study, randomized,
                                                                            tmp_path):
    randomized(demo_study, 6)
    open_form = _OPEN_FORM.format(study=str(demo_study.path), pw=PW)
    subjects, audit_before = _counts(demo_study)
    assert subjects == []

    # 1. a half-filled form, then the kernel is lost: nothing reached the store; the form opens empty again
    kernel.run(open_form + _HALF)
    kernel.kill_and_restart()
    assert _counts(demo_study) == ([], audit_before)
    shown = kernel.run(open_form + "print(repr(form.subject_id.value), repr(form.age.value), form.status.value)")
    assert shown.split()[:2] == ["''", "''"]

    # 2. the kernel is killed inside the submit, its rows (subject, consent, checklist, audit entries) flushed
    #    into the transaction but not committed: none of them is in the store, which takes the same form again
    signal = tmp_path / "flushed"
    kernel.run(_HALF + _REST.format(consent=CONSENT.isoformat()) + _STALL_COMMIT.format(signal=str(signal)))
    kernel.send("form.submit()")
    deadline = time.monotonic() + 60
    while not signal.exists() or not signal.read_text():
        assert time.monotonic() < deadline, "the submit never reached its commit"
        time.sleep(0.05)
    # one transaction holds the whole enrolment: subject, consent, checklist answers and their audit entries
    held = json.loads(signal.read_text())
    tables = {row.__tablename__ for row in (m.SubjectRow, m.ConsentRow, m.EligibilityCheckRow)}
    assert all(held[t] >= 1 for t in tables) and held[m.AuditEntry.__tablename__] > audit_before, held
    kernel.kill_and_restart()
    assert _counts(demo_study) == ([], audit_before)
    kernel.run(open_form + _HALF + _REST.format(consent=CONSENT.isoformat())
               + "assert form.submit(), form.status.value")
    with open_store(demo_study, user="investigator", password=PW) as store:
        rec = store.subject("S-001")
        assert rec.consent_signed_on == CONSENT and rec.checklist["epilepsy"] is False
        report = verify_audit(store)
    assert report.ok, report.problems()  # the audit chain and its anchors are whole after both losses
