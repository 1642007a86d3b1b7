"""Case browser: filter the out-of-fold predictions, then look at one case's slices, crop and Grad-CAM."""

import streamlit as st

from core.data.labels import CLASS_INDEX, CLASSES
from dashboard import auth, case_focus, loaders, safe_text, widgets

auth.require_role("admin")
st.title("Case browser")

runs = widgets.finished_runs_or_stop()

done = runs[runs["status"].isin(["done", "partial"])]
preferred = st.session_state.pop("browse_run", None)
run_id = widgets.run_picker(runs, key="browse_run_pick", multi=False, preferred=preferred)[0]
labels, version = loaders.run_labels(done), loaders.runs_version(done)
all_predictions = loaders.load_predictions(tuple(sorted(labels)), version)
predictions = all_predictions[all_predictions["run_id"] == run_id]

shown = case_focus.focused(widgets.case_filters(predictions))  # cases handed over by results
wanted = st.session_state.pop("browse_case", None)
shown, page = widgets.case_page(shown, wanted)
st.dataframe(
    page[["case_id", "fold", "label", "predicted", "confidence", "correct"]],
    hide_index=True,
    height=220,
    key="case_table",
)
if page.empty:
    st.stop()

cases = page["case_id"].tolist()
index = cases.index(wanted) if wanted in cases else 0
case_id = st.selectbox("Case", cases, index=index, key="case_pick")
row = shown[shown["case_id"] == case_id].iloc[0]
st.subheader(f"Case {safe_text.plain(case_id)}: true {row['label']}, predicted {row['predicted']}")
origin = loaders.case_cohort(case_id)
if origin["cohort"] is not None:
    st.caption(
        f"Cohort {safe_text.plain(origin['cohort'])}"
        + (f", site {safe_text.plain(origin['site'])}" if origin["site"] else "")
    )

left, right = st.columns([3, 2])
with left:
    crop = widgets.case_viewer(case_id, key="viewer")
with right:
    st.markdown("**Out-of-fold probabilities, every model**")
    widgets.probability_table(loaders.case_probabilities(all_predictions, case_id, labels))
    if crop is None:
        st.stop()
    cam_class = st.selectbox(
        "Grad-CAM for class", CLASSES, index=CLASS_INDEX[row["predicted"]], key="cam_class"
    )
    widgets.gradcam_panel(
        run_id,
        crop,
        CLASS_INDEX[cam_class],
        caption=f"Grad-CAM: {cam_class} (fold model that never saw this case)",
        case_id=case_id,
    )
