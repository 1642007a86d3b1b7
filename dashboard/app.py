"""Entry script: `python -m streamlit run dashboard/app.py` from the repository root.

The page list is rebuilt on every rerun from the signed-in role, so a page a role may not see is not
in its navigation at all (and each sensitive page checks the role again itself).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts only dashboard/ on sys.path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import auth, store  # noqa: E402

PAGES = ROOT / "pages"


def _page(script: str, title: str, icon: str, *, default: bool = False) -> st.Page:
    return st.Page(PAGES / script, title=title, icon=icon, default=default)


def pages_for(role: str | None) -> dict[str, list]:
    """The navigation sections a role sees."""
    if role == "admin":
        return {
            "Results": [
                _page("overview.py", "Overview", ":material/dashboard:", default=True),
                _page("cv_results.py", "Cross-validation results", ":material/monitoring:"),
                _page("case_browser.py", "Case browser", ":material/image_search:"),
                _page("annotate.py", "Annotate lesions", ":material/draw:"),
                _page("run_cv.py", "Run a cross-validation", ":material/play_circle:"),
                _page("report.py", "Report export", ":material/download:"),
            ],
            "Reader study": [
                _page("study_admin.py", "Studies and readers", ":material/group:"),
                _page("study_analysis.py", "Reader analysis", ":material/query_stats:"),
            ],
            "Account": [_page("sign_out.py", "Sign out", ":material/logout:")],
        }
    if role == "annotator":
        return {
            "Annotation": [
                _page("annotate.py", "Annotate lesions", ":material/draw:", default=True)
            ],
            "Account": [_page("sign_out.py", "Sign out", ":material/logout:")],
        }
    if role == "reader":
        return {
            "Reading": [_page("reading.py", "Read cases", ":material/visibility:", default=True)],
            "Account": [_page("sign_out.py", "Sign out", ":material/logout:")],
        }
    return {"": [_page("sign_in.py", "Sign in", ":material/login:", default=True)]}


def _code_in_use_elsewhere() -> None:
    """Tell a reader their access code is signed in somewhere else too, and let them end it."""
    others = auth.other_sessions()
    since = min(created for _, created in others)[:16].replace("T", " ")
    st.sidebar.warning(
        f"Your access code is also in use in {len(others)} other session(s) (the first signed in "
        f"at {since} UTC). If that is not you, end them and tell your study admin."
    )
    if st.sidebar.button("End my other sessions", key="end_other_sessions"):
        auth.end_other_sessions()
        st.rerun()


def main() -> None:
    st.set_page_config(
        page_title="CervixScope", page_icon=str(ROOT / "dashboard" / "favicon.png"), layout="wide"
    )  # local: a :material: favicon is fetched from the internet
    store.refuse_global_cache_clear()  # one browser must not clear every session's cache
    auth.restore()  # a reload signs in again from the session token; a revoked one signs out
    if auth.other_sessions():
        _code_in_use_elsewhere()
    navigation = st.navigation(pages_for(auth.current_role()))
    navigation.run()


main()
