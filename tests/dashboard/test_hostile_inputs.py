"""Fuzz: hostile sign-in inputs and hostile names, through the real app (AppTest) on a real
database file.

Each hostile access code or admin secret must end in exactly one ``st.error`` line (no exception,
no traceback, no server path) and leave nobody signed in. Each hostile name must be stored as
typed and *rendered* as that text: the Markdown the page sends is rendered here by an independent
CommonMark renderer (markdown-it), which must produce no image, link, script or HTML of it.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

import db
from dashboard import safe_text
from tests.dashboard.reader_study_helpers import (
    ADMIN_SECRET,
    by_label,
    session,
    sign_in_admin,
    sign_in_reader,
)
from tests.db.conftest import make_cases

pytestmark = pytest.mark.timeout(300)
BEACON = "http://127.0.0.1:9/beacon.png"

HOSTILE_CODES = {
    "overflow-25-digits": "R" + "9" * 25 + "-AAAA-BBBB-CCCC",
    "overflow-bare": "R" + "9" * 25,
    "int64-max-plus-one": "R9223372036854775808-AAAA-BBBB-CCCC",
    "reader-zero": "R0-AAAA-BBBB-CCCC",
    "negative": "R-1-AAAA-BBBB-CCCC",
    "sql-or": "' OR 1=1 --",
    "sql-drop": "R1-AAAA-BBBB-CCCC'; DROP TABLE readers; --",
    "nul-byte": "R1\x00-AAAA-BBBB-CCCC",
    "only-nul": "\x00",
    "arabic-digits": "R\u0661-AAAA-BBBB-CCCC",
    "superscript-digit": "R\u00b2-AAAA-BBBB-CCCC",
    "emoji-flood": "\U0001f4a5" * 5000,
    "100k-chars": "A" * 100_000,
    "many-groups": "R1-" + "AAAA-" * 5000 + "AAAA",
    "path": "../../etc/passwd",
    "html": "<script>alert(1)</script>",
    "markdown-image": f"![x]({BEACON})",
    "format-string": "%s%s%s%n{0}{__class__}",
    "empty": "",
    "spaces": "   ",
    "lowercase-wrong": "r1-aaaa-bbbb-cccc",
    "math-digit-reader-id": "R\U0001d7d9-AAAA-BBBB-CCCC",
}
HOSTILE_NAMES = {
    "markdown-image": f"![x]({BEACON})",
    "reference-image": "![x][b] [b]: " + BEACON,
    "link": "[click me](javascript:alert(1))",
    "autolink": f"<{BEACON}>",
    "bare-url": BEACON,
    "html-img": f'<img src="{BEACON}">',
    "script": "<script>alert(1)</script>",
    "emphasis": "**bold** _it_ ~~gone~~",
    "streamlit-directives": ":red[alarm] :material/warning: :smile:",
    "katex-href": "$\\href{" + BEACON + "}{x}$",
    "heading": "# Heading",
    "code": "`code` ```",
    "table": "| a | b |",
    "entities": "&lt;img src=x&gt; &amp;",
    "backslashes": "\\*not\\* \\\\",
}
TOO_LONG_OR_BROKEN = {
    "121-chars": ("x" * 121, "at most 120 characters; this one has 121"),
    "newline": ("Dr A\n# heading", "one line of text"),
    "bidi-override": ("Dr \u202eevil", "one line of text"),
    "zero-width": ("Dr\u200bA", "one line of text"),
    "blank": ("   ", "cannot be empty"),
}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.add(tag)

    def handle_data(self, data) -> None:
        self.text.append(data)


def render(markdown: str) -> tuple[set[str], str]:
    """HTML tags and visible text of ``markdown`` as a CommonMark renderer draws it."""
    html = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    parsed = _Tags()
    parsed.feed(html.render(markdown))
    return parsed.tags - {"p"}, "".join(parsed.text).strip()


@pytest.fixture
def app_db(tmp_path, monkeypatch):
    path = tmp_path / "hostile.db"
    conn = db.connect(path)
    try:
        study_id = db.create_study(conn, name="Pilot", case_ids=make_cases(conn, 3))
        db.add_reader(conn, study_id, "Dr R")
    finally:
        conn.close()
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    monkeypatch.setenv("CERVIXSCOPE_ADMIN_SECRET", ADMIN_SECRET)
    return path


def _one_error_line(at) -> str:
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    (line,) = errors
    assert "\n" not in line and "Traceback" not in line and "/" not in line.replace("R<", "")
    assert by_label(at.text_input, "Access code")  # still on the sign-in page
    return line


@pytest.mark.parametrize("code", HOSTILE_CODES.values(), ids=HOSTILE_CODES.keys())
def test_a_hostile_access_code_is_one_error_line(app_db, code):
    line = _one_error_line(sign_in_reader(session(), code))
    assert line.startswith("That access code is not valid.")


@pytest.mark.parametrize("secret", HOSTILE_CODES.values(), ids=HOSTILE_CODES.keys())
def test_a_hostile_admin_secret_is_one_error_line(app_db, secret):
    at = session()
    by_label(at.text_input, "Admin secret").input(secret)
    by_label(at.button, "Sign in").click()
    assert _one_error_line(at.run()) == "That admin secret is not correct."


def _add_reader(name: str):
    admin = sign_in_admin(session())
    admin.switch_page("../pages/study_admin.py").run()
    label = "Reader's display name (readers never see each other's names)"
    by_label(admin.text_input, label).input(name)
    by_label(admin.button, "Add reader").click()
    return admin.run()


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_a_hostile_reader_name_renders_as_its_text(app_db, name):
    admin = _add_reader(name)
    assert not admin.exception and not admin.error, [e.value for e in admin.error]
    (message,) = [s.value for s in admin.success if s.value.startswith("Reader ")]
    tags, text = render(message)
    assert tags == set(), (message, tags)  # no <img>, <a>, <script>, <em>, <h1>, <code>...
    assert text == f"Reader {name} added. Their access code, shown only now:"
    conn = db.connect(app_db)
    try:
        assert name in db.readers_frame(conn, 1)["display_name"].tolist()  # stored as typed
    finally:
        conn.close()


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_a_hostile_name_or_patient_id_renders_as_its_text(name):
    """Every place a name or ID meets Markdown goes through safe_text.plain."""
    tags, text = render(f"**{safe_text.plain(name)}** · open")
    assert tags == {"strong"} and text == f"{name} · open"
    tags, text = render(f"Case {safe_text.plain(name)}: true SCC")
    assert tags == set() and text == f"Case {name}: true SCC"


@pytest.mark.parametrize(
    ("name", "problem"), TOO_LONG_OR_BROKEN.values(), ids=TOO_LONG_OR_BROKEN.keys()
)
def test_a_name_too_long_or_not_one_line_is_one_error_line(app_db, name, problem):
    admin = _add_reader(name)
    assert not admin.exception
    (error,) = [e.value for e in admin.error]
    assert problem in error and "\n" not in error


@pytest.mark.parametrize(
    "instructions",
    [f"![x]({BEACON})", f"[x]({BEACON})", f"<{BEACON}>", f'<img src="{BEACON}">',
     f"![x][b]\n\n[b]: {BEACON}", f"www.example.org and {BEACON}"],
    ids=["image", "link", "autolink", "html-img", "reference-image", "bare-urls"],
)  # fmt: skip
def test_instructions_keep_their_formatting_but_fetch_nothing(instructions):
    tags, text = render(
        safe_text.instructions("# Read carefully\n\n- one **bold** point\n\n" + instructions)
    )
    assert tags == {"h1", "ul", "li", "strong"}, tags
    assert BEACON in text or "www" in text or "[b]" in text


def test_the_aided_arm_never_shows_a_reader_the_grad_cam_failure(eval_db, tmp_path, monkeypatch):
    """A run whose models are not under this home: the worker fails with a path in its reason;
    the reader is told only that there is no Grad-CAM (no run id, no server path)."""
    import numpy as np

    from core.reader_study import heatmaps
    from core.reader_study.viewing import model_view

    monkeypatch.setenv("CERVIXSCOPE_HOME", str(tmp_path))  # no runs/<run_id>/ here
    monkeypatch.setattr(heatmaps, "_FAILED", {})
    run_id = eval_db.run_ids[0]
    conn = db.connect(eval_db.path)
    try:
        case_id = str(db.predictions_frame(conn, run_id)["case_id"].iloc[0])
        view = model_view(conn, run_id, case_id, np.full((32, 32), 0.5, np.float32), True)
    finally:
        conn.close()
    with pytest.raises(RuntimeError) as failed:  # what the worker really said, for the admin
        heatmaps.gradcam_overlay(run_id, np.full((32, 32), 0.5, np.float32), 0, case_id)
    assert str(tmp_path) in str(failed.value)
    problem = view["gradcam_problem"]
    assert problem == "Grad-CAM is not available for this model run."
    assert run_id not in problem and "/" not in problem and "gradcam" not in view
