"""The notebooks run top to bottom on a fresh data folder and are committed clean (no outputs, a parameters cell).

Each notebook is executed with nbclient in a kernel of *this* interpreter: a temporary kernelspec pointing at
``sys.executable`` is put first on ``JUPYTER_PATH``, so a fresh virtual environment needs no manual
``ipykernel install``. The data root (``TOOLKIT_DATA_DIR``) is a temporary folder set in the environment before
the kernel starts, so nothing is written to the checkout's ``data/``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebook

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = (
    "01-design-study",
    "02-run-sessions",
    "03-analyse-photos",
    "04-statistics",
    "05-report-figures",
    "06-site-day",
)
KERNEL_NAME = "python3"
#: a file each notebook writes below the data root (None: the notebook keeps everything in memory)
WRITES = {
    "01-design-study": "epmc-demo/allocation.csv",
    "02-run-sessions": "epmc-demo/study.db",
    "03-analyse-photos": None,
    "04-statistics": None,
    "05-report-figures": "sample-report/report/index.html",
    "06-site-day": "epmc-demo/study.db",
}


def _site_day_records(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """06 walked its subject through every form: the store holds what each form wrote."""
    from toolkit.store import open_store
    from toolkit.study import load_study

    monkeypatch.setenv("TOOLKIT_DATA_DIR", str(data_root))
    study = load_study(REPO / "studies" / "epmc-demo")
    with open_store(study, user="site-coordinator", password="practice password 06") as store:
        subject = store.subject("SD-001")
        assert subject.eligible and subject.allocation is not None and subject.checklist
        assert list(store.deliveries("SD-001")["status"]) == ["completed"]
        assert [p.visit_id for p in store.photos("SD-001")] == ["BASELINE", "S12"]
        (event,) = store.adverse_events("SD-001")
        assert event.session_number == 1 and event.outcome == "recovered/resolved"
        grades = store.rating_records()
    assert set(grades["rater"]) == {"site-rater"} and sorted(grades[grades["repeat"] == 0]["scale"]) == [
        "GAIS", "WSRS", "WSRS"]


#: checks of what a notebook left in the store, after it ran
CHECKS = {"06-site-day": _site_day_records}


def _checkout_data() -> set[str]:
    folder = REPO / "data"
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.is_dir() else set()


def _load(name: str):
    import nbformat

    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


@pytest.fixture(scope="module")
def kernel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``JUPYTER_PATH`` folder whose ``python3`` kernelspec runs this interpreter."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (toolkit tests)",
                "language": "python",
            }
        ),
        encoding="utf-8",
    )
    return root


def _failure(cell, exc: Exception) -> str:
    """The failing cell's source and its error, without the kernel's ANSI colours."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    source = cell.source if cell is not None else "<unknown cell>"
    return f"cell failed:\n{source}\n\n{text[-4000:]}"


def _code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _running(nb):
    """The first code cell without an execution reply (the one running when a run stopped)."""
    return next((c for c in _code(nb) if "shell.execute_reply" not in c.metadata.get("execution", {})), None)


def _execute(nb, label: str, kernel_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``nb`` in a fresh kernel of this interpreter; fail with the failing cell's source and error."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    # the kernel inherits this environment: our kernelspec first, the test's data root, no server database
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
    monkeypatch.setenv("TOOLKIT_DATA_DIR", str(data_root))
    monkeypatch.delenv("TOOLKIT_DB_URL", raising=False)
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    client = NotebookClient(
        nb, timeout=300, kernel_name=KERNEL_NAME, resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        failing = next(
            (c for c in _code(nb) if any(o.get("output_type") == "error" for o in c.outputs)), None
        )
        pytest.fail(f"{label}: {_failure(failing or _running(nb), exc)}", pytrace=False)
    except pytest.fail.Exception:
        # pytest-timeout stopped the run: name the cell that was running
        running = _running(nb)
        pytest.fail(f"{label}: timed out; running cell:\n{running.source if running else '-'}", pytrace=False)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"
    ]
    assert not errors, f"{label}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    # every code cell ran, in order
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), f"{label}: execution counts {counts}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name: str, kernel_path: Path, data_root: Path, monkeypatch) -> None:
    before = _checkout_data()
    _execute(_load(name), name, kernel_path, data_root, monkeypatch)
    # the notebook wrote into the test's data root (set before the kernel started), never into the checkout
    if WRITES[name] is not None:
        assert (data_root / WRITES[name]).is_file(), (
            f"{name}: {WRITES[name]} was not written under {data_root}"
        )
    assert _checkout_data() == before, f"{name}: wrote into {REPO / 'data'}"
    if name in CHECKS:
        CHECKS[name](data_root, monkeypatch)


def test_study_notebooks_can_be_run_again(kernel_path: Path, data_root: Path, monkeypatch) -> None:
    """01, 02, 01, 02 on the same data folder, each in a fresh kernel, as a user re-running them does."""
    from toolkit.store import open_store
    from toolkit.study import load_study

    for name in ("01-design-study", "02-run-sessions", "01-design-study", "02-run-sessions"):
        _execute(_load(name), f"{name} (again)", kernel_path, data_root, monkeypatch)

    allocation = data_root / "epmc-demo" / "allocation.csv"
    assert allocation.is_file()
    with open_store(load_study(REPO / "studies" / "epmc-demo"), user="nb-coordinator",
                    password="practice password 02") as store:
        assert [s.subject_id for s in store.subjects()] == ["NB-001"]
        rows = store.deliveries("NB-001")
    # second run: the completed session is repeated as a new linked record, never overwritten
    assert list(rows["status"]) == ["completed", "aborted", "completed", "aborted"]
    assert list(rows["resumed_from"].fillna(0).astype(int)) == [0, 1, 1, 1]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean(name: str) -> None:
    nb = _load(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name}: no code cells"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{name}: cells {dirty} carry outputs or execution counts; clear them before committing"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{name}: exactly one code cell must be tagged 'parameters' (papermill)"
    assert code[0] is tagged[0], f"{name}: the first code cell must be the parameters cell"
    assert "DATA_DIR = None" in tagged[0].source, f"{name}: the parameters cell must set DATA_DIR = None"
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL_NAME
    assert nb.cells[0].cell_type == "markdown", f"{name}: start with a markdown cell saying what it is for"
    markdown = sum(c.cell_type == "markdown" for c in nb.cells)
    assert markdown >= len(code) / 2, f"{name}: {markdown} markdown cells for {len(code)} code cells"


def test_the_kernel_is_this_interpreter_and_a_failing_cell_fails(kernel_path, data_root, monkeypatch) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                'import os, sys\nprint(sys.executable, os.environ["TOOLKIT_DATA_DIR"])'
            ),
            nbformat.v4.new_code_cell("raise ValueError('broken on purpose')"),
        ]
    )
    with pytest.raises(pytest.fail.Exception) as failed:
        _execute(nb, "broken", kernel_path, data_root, monkeypatch)
    assert "broken on purpose" in str(failed.value) and "raise ValueError" in str(failed.value)
    printed = nb.cells[0].outputs[0]["text"].split()
    assert printed == [sys.executable, str(data_root)]
