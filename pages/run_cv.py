"""Run a cross-validation: queue it, start it in the background, follow its progress."""

import os

import streamlit as st

from core.learning import jobs
from core.learning.config import MODELS
from dashboard import auth, loaders
from dashboard.store import connection

auth.require_role("admin")
st.title("Run a cross-validation")
st.caption(
    "The run starts as a separate background process: leaving or reloading this page neither "
    "stops nor repeats it. Features mode (frozen ImageNet embeddings + logistic head) suits a CPU; "
    "finetune wants a GPU."
)

try:
    runs = loaders.runs()
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
        runs = loaders.runs()


@st.fragment(run_every=float(os.environ.get("CERVIXSCOPE_POLL_S", "2")))
def progress_panel() -> None:
    active = loaders.runs()
    active = active[active["status"].isin(jobs.ACTIVE)]
    before, now = st.session_state.get("_active_runs", set()), set(active["run_id"])
    st.session_state["_active_runs"] = now
    if before - now:  # a run finished: refresh the whole page (recent runs table)
        st.rerun(scope="app")
    if active.empty:
        st.caption("No run is queued or running.")
        return
    for row in active.itertuples():
        st.progress(
            float(row.progress or 0.0),
            text=f"{row.run_id} · {row.model} ({row.mode}) · {row.status}: {row.message or ''}",
        )


st.subheader("Queued and running")
progress_panel()

st.subheader("Recent runs")
st.dataframe(loaders.runs_overview(runs).head(10), hide_index=True, key="recent_runs")
