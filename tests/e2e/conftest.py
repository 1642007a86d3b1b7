"""Real-browser fixtures: a database built from the small cohort and one real CV run, a real
`streamlit run` on it, Debian's Chromium driven by Playwright, and helpers that use the app the way
a person does (labels and roles, not internals).

The database is built once per session and copied for each test, so the browser scenario and the
crash test never see each other's study.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from core.data.labels import CLASSES
from core.reader_study.answers import TYPE_KEYS
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, wait_idle
from tests.e2e.server import ROOT, StreamlitServer

ADMIN_SECRET = "e2e-admin-secret-3b9d51"
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1440, "height": 900}  # a laptop screen: the reading page must fit it
CASE_HEADING = re.compile(r"^Case ([AC]-[0-9A-Z]+) \((\d+) of (\d+)\)$")
RATER_HEADING = re.compile(r"^(.+) \((\d+) cases\)$")  # the reader analysis, per rater


@dataclass(frozen=True)
class BuiltDB:
    path: Path  # pristine: copy it with `fresh_copy` before a test writes to it
    run_id: str


def build_database(cohort_dir: Path, path: Path, runs_dir: Path, *, model: str = "cnn") -> str:
    """Ingest ``cohort_dir`` into a new database at ``path`` and record one short real CV run.

    Features mode, 3 folds, random-init weights (no download): about 10 s on one CPU core.
    Returns the run id.
    """
    import torch

    import db
    from core.data.ingest import ingest_folder
    from core.learning.config import RunConfig
    from core.learning.cv import run_cv

    torch.set_num_threads(1)
    conn = db.connect(path)
    try:
        crops = ingest_folder(cohort_dir, conn=conn, progress=False).crops
        return run_cv(
            crops,
            RunConfig(model=model, mode="features", weights="none", n_folds=3, seed=0),
            conn=conn,
            runs_dir=runs_dir,
            cache_dir=False,
        )
    finally:
        conn.close()


def fresh_copy(source: Path, target: Path) -> Path:
    """A consistent copy of a SQLite file (the backup API folds in any WAL content)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return target


@pytest.fixture(scope="session")
def e2e_db(small_cohort_dir, tmp_path_factory) -> BuiltDB:
    workdir = tmp_path_factory.mktemp("e2e_db")
    path = workdir / "pristine.db"
    run_id = build_database(small_cohort_dir, path, workdir / "runs")
    return BuiltDB(path=path, run_id=run_id)


@pytest.fixture
def db_copy(e2e_db, tmp_path) -> Path:
    """This test's own copy of the session database."""
    return fresh_copy(e2e_db.path, tmp_path / "cervixscope.db")


@pytest.fixture
def server(db_copy, e2e_db, tmp_path):
    """The dashboard served by a real `streamlit run` on a free port, on this test's database,
    with the project home that holds the run's runs/<run_id>/ (its models: Grad-CAM)."""
    srv = StreamlitServer(
        db_copy, ADMIN_SECRET, tmp_path / "streamlit.log", home=e2e_db.path.parent
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium under Playwright's sync API (launched by path: no browser download)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell that the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def new_page(browser, request):
    """Open a page in a new browser context (its own cookies: a separate person's browser).

    When the test fails, every page it opened is saved to test-artifacts/screenshots/.
    """
    contexts = []

    def make():
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(60_000)
        contexts.append(context)
        return context.new_page()

    yield make
    report = getattr(request.node, "report_call", None)
    for i, context in enumerate(contexts):
        if report is not None and report.failed:
            for j, page in enumerate(context.pages):
                screenshot(page, f"FAILED-{request.node.name}-{i}-{j}")
        context.close()


# ---- helpers: drive the app as a person does ---------------------------------------------------


def screenshot(page, name: str, *, height: int | None = None) -> Path:
    """Save a PNG of the page to test-artifacts/screenshots/ (git-ignored); return its path.

    Streamlit scrolls inside its own container, so a "full page" shot is one viewport: pass
    ``height`` to take a taller one (the viewport is restored afterwards).
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.mouse.move(0, 0)  # no hover toolbars in the picture
    if height:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        wait_idle(page)
        page.wait_for_timeout(500)  # let the charts re-lay out to the new size
    page.screenshot(path=str(path), full_page=True)
    if height:
        page.set_viewport_size(VIEWPORT)
    return path


def publish_screenshots(*paths: Path) -> None:
    """Copy screenshots to docs/screenshots/ for the README: call only once the test passed.

    Only when ``CERVIXSCOPE_PUBLISH_SCREENSHOTS=1``, so that `make test` leaves the tree clean.
    """
    if os.environ.get("CERVIXSCOPE_PUBLISH_SCREENSHOTS") != "1":
        return
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for path in paths:
        shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)


def open_app(page, url: str) -> None:
    page.goto(url)
    wait_idle(page)


def wait_heading(page, name: str | re.Pattern) -> None:
    """Wait until a heading is on the page and the script run that drew it has finished."""
    exact = isinstance(name, str)  # a plain title must match whole, not as a substring
    page.get_by_role("heading", name=name, exact=exact or None).first.wait_for()
    wait_idle(page)


def sign_in_admin(page, url: str, secret: str = ADMIN_SECRET) -> None:
    open_app(page, url)
    page.get_by_role("tab", name="Researcher (admin)").click()
    page.get_by_role("textbox", name="Admin secret").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    wait_heading(page, "Overview")


def sign_in_reader(page, code: str) -> None:
    """Sign in on the sign-in page already open (a reload lands there too) and wait for a case."""
    page.get_by_role("textbox", name="Access code").fill(code)
    page.get_by_role("button", name="Continue").click()
    wait_heading(page, CASE_HEADING)


def go_to(page, link: str) -> None:
    """Follow a sidebar link and wait for the page's title."""
    page.get_by_role("link", name=link).click()
    wait_heading(page, link)


def current_case(page) -> tuple[str, int, int]:
    """(display_id, position, n_cases) from the reading page's 'Case C-XXXX (k of n)' heading."""
    text = page.get_by_role("heading", name=CASE_HEADING).first.inner_text()
    match = CASE_HEADING.match(text.strip())
    assert match, f"unexpected case heading {text!r}"
    return match.group(1), int(match.group(2)), int(match.group(3))


def fill_answer(page, label: str) -> None:
    """Pick ``label`` with its key (1, 2 or 3), as a reader does; the certainty keeps its default.

    The desk answers in the browser: the pick shows at once (``data-pick``). A key pressed before
    the desk has drawn is dropped, as it would be for a person, so press again until it shows.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    current_case(page)
    picked = page.locator(f".csr[data-pick^='{label}:']")
    for attempt in range(3):
        page.keyboard.press(TYPE_KEYS[label])
        try:
            picked.wait_for(timeout=10_000 if attempt < 2 else 60_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def wait_saved(page, timeout: float = 60_000) -> None:
    """Wait until the server has acknowledged every answer the browser holds."""
    page.locator(".csr[data-pending='0']").wait_for(state="attached", timeout=timeout)


def click_submit(page) -> None:
    """Enter: store the answer (and show the next unread case)."""
    page.keyboard.press("Enter")


def submit_in_viewport(page) -> bool:
    """The submit control is inside the window and the page is not scrolled."""
    button = page.get_by_role("button", name=re.compile("^(Submit and next|Update)"))
    box = button.bounding_box()
    size = page.viewport_size
    scrolled = page.evaluate(
        "() => window.scrollY + Math.max(0, ...Array.from(document.querySelectorAll("
        "'[data-testid=stMain], [data-testid=stAppScrollToBottomContainer], section.main'))"
        ".map(e => e.scrollTop))"
    )
    return (
        box is not None
        and scrolled == 0
        and 0 <= box["y"]
        and box["y"] + box["height"] <= size["height"]
        and box["x"] + box["width"] <= size["width"]
    )


def wait_read_count(page, n_read: int, n_cases: int) -> None:
    """Wait for the progress text 'n of N read' and for the server to have stored the answers."""
    page.get_by_text(f"{n_read} of {n_cases} read", exact=True).wait_for()
    wait_saved(page)
    wait_idle(page)


def wait_case(page, position: int, n_cases: int) -> None:
    """Wait until the reading page shows worklist ``position`` (after a submit: the next case)."""
    page.get_by_role(
        "heading", name=re.compile(rf"^Case [AC]-[0-9A-Z]+ \({position} of {n_cases}\)$")
    ).wait_for()
    wait_idle(page)


def grid_rows(grid) -> list[list[str]]:
    """Header and body cells of an st.dataframe, from the accessible table Glide renders."""
    rows = []
    for row in grid.locator("tr").all():
        rows.append([cell.inner_text().strip() for cell in row.locator("th, td").all()])
    return rows


def push_url(page, path: str) -> None:
    """Change the tab's URL to /path the way the browser's back/forward buttons do."""
    page.evaluate(
        "path => { history.pushState({}, '', '/' + path);"
        " window.dispatchEvent(new PopStateEvent('popstate')); }",
        path,
    )
    wait_idle(page)


def confusion_on_page(admin) -> dict[str, np.ndarray]:
    """Each rater's confusion matrix as the analysis page renders it (rows true, columns
    predicted), read from the accessible table inside each st.dataframe grid."""
    names = []
    for heading in admin.get_by_role("heading").all():
        match = RATER_HEADING.match(heading.inner_text().strip())
        if match:
            names.append(match.group(1))
    grids = [
        rows
        for rows in (grid_rows(g) for g in admin.locator("table[role='grid']").all())
        if rows and rows[0][1:] == [f"predicted {c}" for c in CLASSES]
    ]
    assert len(grids) == len(names), f"{len(names)} rater headings but {len(grids)} matrices"
    matrices = {}
    for name, rows in zip(names, grids, strict=True):
        assert [r[0] for r in rows[1:]] == [f"true {c}" for c in CLASSES], rows
        matrices[name] = np.array([[int(v) for v in r[1:]] for r in rows[1:]])
    return matrices
