"""The site's day in a real browser: JupyterLab on a free loopback port, notebook 06 opened in headless
Chromium, every form filled in and submitted as a person would (bad values first), and the store checked
afterwards. The notebook runs with ``PRACTICE = False``: nothing is filled in by code.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.notebook, pytest.mark.no_users]

REPO = Path(__file__).resolve().parents[2]
_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
SUBJECT = "BR-001"
TODAY = date.today()
CONSENT = TODAY - timedelta(days=7)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("google-chrome") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook_copy(folder: Path, data_root: Path) -> Path:
    """Notebook 06 with its parameters set as papermill would: this test's data root, typed in by hand."""
    import nbformat

    nb = nbformat.read(REPO / "notebooks" / "06-site-day.ipynb", as_version=4)
    params = nb.cells[[c.cell_type for c in nb.cells].index("code")]
    assert "parameters" in params.metadata.get("tags", [])
    params.source += (f"\nDATA_DIR = {str(data_root)!r}\nSTUDY_DIR = {str(REPO / 'studies' / 'epmc-demo')!r}"
                      f"\nSUBJECT_ID = {SUBJECT!r}\nPRACTICE = False\n")
    path = folder / "06-site-day.ipynb"
    nbformat.write(nb, path)
    return path


def _keys_notebook(folder: Path) -> Path:
    """A notebook with one key field whose Python side is slow (a busy kernel), logging every key it receives."""
    import nbformat

    code = (
        "import time\nimport ipywidgets as widgets\nfrom toolkit.site.keys import KeyField\n"
        "field = KeyField(prompt='type here')\nlog = widgets.HTML('')\nlog.add_class('keys-log')\nreceived = []\n"
        "def on_key(_):\n    time.sleep(0.4)  # the kernel busy with each key, as filing a grade keeps it\n"
        "    received.append(field.key)\n    log.value = ' '.join(received) + ' |'\n"
        "field.observe(on_key, names='presses')\nwidgets.VBox([field, log])\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    path = folder / "keys.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def notebook_name() -> str:
    """The notebook the browser opens (a test parametrizes it to open another)."""
    return "06-site-day.ipynb"


@pytest.fixture
def lab(tmp_path: Path, data_root: Path):
    """A JupyterLab server on a free loopback port serving a folder with the notebooks; yields its URL."""
    pytest.importorskip("jupyterlab")
    root = tmp_path / "lab"
    root.mkdir()
    _notebook_copy(root, data_root)
    _keys_notebook(root)
    kernels = tmp_path / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (toolkit tests)", "language": "python"}), encoding="utf-8")
    env = dict(os.environ, JUPYTER_PATH=str(tmp_path / "jupyter"), TOOLKIT_DATA_DIR=str(data_root),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("TOOLKIT_DB_URL", None)
    port, token = _free_port(), secrets.token_hex(16)
    log = (tmp_path / "lab.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url, token
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server shuts its kernels down
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
        log.close()


@pytest.fixture
def page(lab, notebook_name: str):
    path = _chromium()
    if path is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): browser test not run")
    from playwright.sync_api import sync_playwright

    url, token = lab
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=_ARGS, headless=True)
        p = browser.new_page(viewport={"width": 1400, "height": 1000})
        external: list[str] = []

        def route(r):
            if r.request.url.startswith((url, "data:", "blob:")) or r.request.url.startswith("ws://127.0.0.1"):
                r.continue_()
            else:  # nothing leaves the machine
                external.append(r.request.url)
                r.abort()

        p.route("**/*", route)
        p.goto(f"{url}/lab/tree/{notebook_name}?token={token}", wait_until="domcontentloaded", timeout=90_000)
        p.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        p.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=60_000)
        yield p
        if os.environ.get("TOOLKIT_BROWSER_SHOTS"):
            p.screenshot(path=str(Path(os.environ["TOOLKIT_BROWSER_SHOTS"]) / "site-day.png"))
        browser.close()
        assert not [u for u in external if not u.startswith("ws:")], external


def _shot(page, selector: str, name: str) -> None:
    """Keep a picture of one form when ``$TOOLKIT_BROWSER_SHOTS`` names a folder (to look at it as its user)."""
    folder = os.environ.get("TOOLKIT_BROWSER_SHOTS")
    if folder:
        page.locator(selector).first.screenshot(path=str(Path(folder) / f"{name}.png"))


def _text(page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


def _wait_text(page, selector: str, text: str, timeout_ms: int = 60_000) -> str:
    """Wait until ``selector`` shows ``text``; fail with what it shows instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "([sel, text]) => { const e = document.querySelector(sel); return e && e.innerText.includes(text); }",
            arg=[selector, text], timeout=timeout_ms)
    except PlaywrightTimeout:
        shown = page.locator(selector).first.inner_text() if page.locator(selector).count() else "(not shown)"
        pytest.fail(f"{selector} did not show {text!r}; it shows: {shown!r}", pytrace=False)
    return _text(page, selector)


def _date(page, selector: str, day: date) -> None:
    page.locator(f"{selector} input").fill(day.isoformat())
    page.locator(f"{selector} input").dispatch_event("change")


def _select(page, selector: str, label: str) -> None:
    page.locator(f"{selector} select").select_option(label=label)


def _type(page, selector: str, text: str) -> None:
    box = page.locator(f"{selector} input")
    box.fill(text)
    box.press("Tab")  # ipywidgets' Text sends its value on change (continuous_update) and on blur


def _choose(page, selector: str, label: str) -> None:
    page.locator(f"{selector} button", has_text=label).filter(has_text=label).first.click()


def _upload(page, selector: str, path: Path) -> None:
    """Click the upload button and pick ``path`` in the file chooser it opens."""
    with page.expect_file_chooser() as chooser:
        page.click(selector)
    chooser.value.set_files(str(path))
    page.wait_for_function("sel => document.querySelector(sel).innerText.includes('(1)')", arg=selector,
                           timeout=30_000)


def _toggle(page, selector: str, label: str) -> None:
    page.locator(f"{selector} button").get_by_text(label, exact=True).click()


def _run_all(page) -> None:
    """Start the notebook's kernel and run every cell."""
    # JupyterLab may ask which kernel to start: the suggested one (this interpreter) is right
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    try:
        accept.wait_for(timeout=15_000)
        accept.click()
    except Exception:  # no question asked
        pass
    page.wait_for_function("document.querySelector('.jp-Notebook') && "
                           "window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel", timeout=60_000)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


@pytest.mark.parametrize("notebook_name", ["keys.ipynb"])
def test_keys_typed_while_the_kernel_is_busy_all_reach_python_in_order(page) -> None:
    # a rater types a grade and Enter at once, while the kernel still handles the key before: every key must
    # arrive, in order (as synced widget state, the grade was merged away and only Enter arrived)
    _run_all(page)
    page.wait_for_selector(".epmc-keys-input", timeout=120_000)
    keys = page.locator(".epmc-keys-input")
    keys.click()
    for key in ("9", "2", "3", "Enter", "Backspace", "4", "Enter"):
        keys.press(key, delay=0)
    assert _wait_text(page, ".keys-log", "9 2 3 Enter Backspace 4 Enter |").strip() == "9 2 3 Enter Backspace 4 Enter |"


def test_a_site_day_in_jupyterlab(page, data_root) -> None:
    from toolkit.store import open_store
    from toolkit.study import load_study

    study = load_study(REPO / "studies" / "epmc-demo")
    _run_all(page)
    page.wait_for_selector(".epmc-enrol-subject-id input", timeout=120_000)
    page.wait_for_selector(".epmc-rating-station", timeout=180_000)

    # -- 1 enrolment: a bad age, an exclusion ticked, then the right answers --------------------------------
    _type(page, ".epmc-enrol-subject-id", SUBJECT)
    _type(page, ".epmc-enrol-age", "17")
    _select(page, ".epmc-enrol-sex", "F — female")
    _select(page, ".epmc-enrol-fitzpatrick", "III")
    _date(page, ".epmc-enrol-consent-signed-on", CONSENT)
    _date(page, ".epmc-enrol-checked-on", CONSENT)
    for c in study.eligibility.criteria:
        _toggle(page, f".epmc-enrol-checklist-{c.code.replace('_', '-')}",
                "yes" if c.kind == "inclusion" or c.code == "epilepsy" else "no")
    page.click(".epmc-enrol-submit")
    assert "outside" in _wait_text(page, ".epmc-enrol-age-error", "age 17")
    assert "not saved" in _text(page, ".epmc-enrol-status")
    _type(page, ".epmc-enrol-age", "48")
    page.click(".epmc-enrol-submit")
    assert "applies" in _wait_text(page, ".epmc-enrol-checklist-epilepsy-error", "Epilepsy")
    _shot(page, ".epmc-enrolment", "enrolment-refused")
    assert _text(page, ".epmc-enrol-age-error").strip() == ""
    _toggle(page, ".epmc-enrol-checklist-epilepsy", "no")
    page.click(".epmc-enrol-submit")
    _wait_text(page, ".epmc-enrol-status", f"{SUBJECT} enrolled")
    assert _text(page, ".epmc-enrol-age-error").strip() == ""

    # patch test: read before the consent is refused beside the date
    _select(page, ".epmc-patch-subject", SUBJECT)
    _toggle(page, ".epmc-patch-passed", "pass")
    _date(page, ".epmc-patch-read-on", CONSENT - timedelta(days=1))
    page.click(".epmc-patch-submit")
    assert "consent" in _wait_text(page, ".epmc-patch-read-on-error", "before")
    _date(page, ".epmc-patch-read-on", CONSENT + timedelta(days=2))
    page.click(".epmc-patch-submit")
    _wait_text(page, ".epmc-patch-status", "eligible for randomisation")

    # randomisation with its confirmation
    _select(page, ".epmc-alloc-subject", SUBJECT)
    page.click(".epmc-alloc-submit")
    page.click(".epmc-alloc-confirm")
    result = _wait_text(page, ".epmc-alloc-result", "randomisation number")
    assert "arm" in result and "blinded code" in result

    # -- 2 a session on the twin in the session panel -----------------------------------------------------
    _select(page, ".epmc-session-subject", SUBJECT)
    page.click(".epmc-session-start")
    # the session has ended when its Stop button is disabled (on every path out of it)
    page.wait_for_selector(".epmc-session-panel button:has-text('Stop'):disabled", timeout=180_000)
    panel = _text(page, ".epmc-session-panel")
    assert "completed" in panel and "not delivered" not in panel, panel

    # -- 3 photos: an upload, the same file again (refused), a practice portrait ---------------------------
    import skimage

    portrait = Path(skimage.__file__).parent / "data" / "astronaut.png"
    visits = {v.id: f"{v.id} — {v.name}" for v in study.visits}
    _select(page, ".epmc-photo-subject-id", SUBJECT)
    _select(page, ".epmc-photo-visit-id", visits["BASELINE"])
    _upload(page, ".epmc-photo-source", portrait)
    page.click(".epmc-photo-submit")
    _wait_text(page, ".epmc-photo-status", "registered")
    _select(page, ".epmc-photo-subject-id", SUBJECT)
    _select(page, ".epmc-photo-visit-id", visits["S12"])
    _upload(page, ".epmc-photo-source", portrait)
    page.click(".epmc-photo-submit")
    _wait_text(page, ".epmc-photo-status", "not saved")
    page.click(".epmc-photo-practice")
    _wait_text(page, ".epmc-photo-status", "registered")

    # -- 4 an adverse event: an end before the onset is refused beside the end --------------------------------
    _select(page, ".epmc-ae-subject", SUBJECT)
    # choosing the subject reloads the form's sessions and list of events: wait for that before going on
    _wait_text(page, ".epmc-ae-listing", "none recorded")
    _type(page, ".epmc-ae-term", "redness")
    _wait_text(page, ".epmc-ae-coding", "Application site erythema")
    _date(page, ".epmc-ae-onset", TODAY)
    _date(page, ".epmc-ae-resolved", TODAY - timedelta(days=2))
    _select(page, ".epmc-ae-session-number", "session 1")
    _toggle(page, ".epmc-ae-severity", "mild")
    _select(page, ".epmc-ae-relation", "possible")
    page.click(".epmc-ae-submit")
    assert "before" in _wait_text(page, ".epmc-ae-resolved-error", "onset")
    _shot(page, ".epmc-adverse-events", "adverse-event-refused")
    _date(page, ".epmc-ae-resolved", TODAY)
    _select(page, ".epmc-ae-outcome", "recovered/resolved")
    page.click(".epmc-ae-submit")
    _wait_text(page, ".epmc-ae-status", "recorded")
    _wait_text(page, ".epmc-ae-listing", "redness")

    # -- 5 the blinded rating station, from the keyboard ---------------------------------------------------
    page.click(".epmc-rating-reload")
    page.wait_for_selector(".epmc-rating-images img", timeout=30_000)
    station = _text(page, ".epmc-rating-station")
    _shot(page, ".epmc-rating-station", "rating-station")
    for hidden in (SUBJECT, "BASELINE", "S12", "Electroporation", "Microcurrent", "Sham", TODAY.isoformat()):
        assert hidden not in station, hidden
    filed = 0
    while "every photo set on your list is graded" not in _text(page, ".epmc-rating-status") and filed < 10:
        progress = _text(page, ".epmc-rating-progress")
        keys = page.locator(".epmc-keys-input")
        keys.click()
        keys.press("9")  # not a grade: said beside the grade
        _wait_text(page, ".epmc-rating-score-error", "not a grade")
        keys.press("3")
        keys.press("Enter")
        page.wait_for_function("([sel, old]) => document.querySelector(sel).innerText !== old",
                               arg=[".epmc-rating-progress", progress], timeout=30_000)
        filed += 1
    assert "every photo set on your list is graded" in _text(page, ".epmc-rating-status")
    outputs = " ".join(page.locator(".jp-OutputArea-output").all_inner_texts())
    assert "Traceback" not in outputs and "unexpected error" not in outputs

    # -- the store holds exactly what was submitted -----------------------------------------------------------
    with open_store(study, user="site-coordinator", password="practice password 06") as store:
        assert [s.subject_id for s in store.subjects()] == [SUBJECT]
        subject = store.subject(SUBJECT)
        assert subject.age == 48 and subject.checklist["epilepsy"] is False and subject.eligible
        assert subject.patch_test.read_on == CONSENT + timedelta(days=2) and subject.allocation is not None
        assert list(store.deliveries(SUBJECT)["status"]) == ["completed"]
        assert [p.visit_id for p in store.photos(SUBJECT)] == ["BASELINE", "S12"]
        (event,) = store.adverse_events(SUBJECT)
        assert (event.term, event.onset, event.resolved, event.session_number) == ("redness", TODAY, TODAY, 1)
        grades = store.rating_records()
    assert len(grades) == filed and set(grades["score"]) == {3.0} and set(grades["rater"]) == {"site-rater"}
    assert sorted(grades[grades["repeat"] == 0]["scale"]) == ["GAIS", "WSRS", "WSRS"]
