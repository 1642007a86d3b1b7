"""Run a cross-validation: queue it, start it in the background, follow its progress, cancel it."""

import os

import streamlit as st

from core.learning import jobs
from core.learning.config import MODELS
from dashboard import auth, loaders
from dashboard.store import connection
from db.clock import utc_now

auth.require_role("admin")
st.title("Run a cross-validation")
st.caption(
    "The run starts as a separate background process: leaving or reloading this page neither "
    "stops nor repeats it. Features mode (frozen ImageNet embeddings + logistic head) suits a CPU; "
    "finetune wants a GPU."
)

try:
    ingestion = loaders.load_cohort(loaders.cohort_version())["ingestion"]
except Exception as exc:
    st.error(str(exc))
    st.stop()

with st.form("new_run"):
    default_dir = (ingestion or {}).get("data_dir") or "data/demo"
    data_dir = st.text_input("Data folder (DICOM files + manifest.csv)", value=default_dir)
    c1, c2, c3 = st.columns(3)
    model = c1.selectbox("Model", MODELS, key="run_model")
    mode = c2.selectbox("Mode", ["features", "finetune"], key="run_mode")
    balance = c3.selectbox("Class balance (training folds only)", ["smote", "weights", "none"])
    n_folds = c1.number_input("Folds", min_value=2, max_value=20, value=10, step=1)
    seed = c2.number_input("Seed", min_value=0, value=0, step=1)
    submitted = st.form_submit_button("Start", type="primary")

if submitted:
    request = jobs.CvRequest(str(data_dir), model, mode, int(n_folds), int(seed), balance)
    try:
        with connection() as conn:
            run_id = jobs.start_cv(conn, request)
    except (ValueError, OSError) as exc:
        st.error(str(exc))
    else:
        st.success(f"Started run {run_id}. It appears on the results page when it finishes.")


def cancel(run_id: str) -> None:
    try:
        with connection() as conn:
            st.session_state["_run_cancelled"] = jobs.cancel_cv(conn, run_id)
    except (ValueError, LookupError, OSError) as exc:
        st.session_state["_run_cancelled"] = str(exc)


@st.fragment(run_every=float(os.environ.get("CERVIXSCOPE_POLL_S", "2")))
def runs_panel() -> None:
    """Progress bars, a Cancel button per active run and the runs table, from one fresh read."""
    try:
        runs = loaders.runs()
    except Exception as exc:
        st.error(str(exc))
        return
    active = runs[runs["status"].isin(jobs.ACTIVE)]
    said = st.session_state.pop("_run_cancelled", None)
    if said:
        st.info(said)
    st.subheader("Queued and running")
    if active.empty:
        st.caption("No run is queued or running.")
    now = utc_now()
    for row in active.to_dict("records"):
        bar, button = st.columns([6, 1], vertical_alignment="bottom")
        bar.progress(float(row["progress"] or 0.0), text=jobs.progress_line(row, now))
        button.button(
            "Cancel", key=f"cancel_{row['run_id']}", on_click=cancel, args=(row["run_id"],)
        )
    st.subheader("Recent runs")
    st.dataframe(loaders.runs_overview(runs).head(10), hide_index=True, key="recent_runs")


runs_panel()
