"""Case browser: filter the out-of-fold predictions, then look at one case's slice, crop and Grad-CAM."""

import streamlit as st

from core.labels import CLASS_INDEX, CLASSES
from dashboard import auth, loaders, widgets

auth.require_role("admin")
st.title("Case browser")

runs = widgets.finished_runs_or_stop()

done = runs[runs["status"].isin(["done", "partial"])]
preferred = st.session_state.pop("browse_run", None)
run_id = widgets.run_picker(runs, key="browse_run_pick", multi=False, preferred=preferred)[0]
labels, version = loaders.run_labels(done), loaders.runs_version(done)
all_predictions = loaders.load_predictions(tuple(sorted(labels)), version)
predictions = all_predictions[all_predictions["run_id"] == run_id]

shown = widgets.case_filters(predictions)
st.caption(f"{len(shown)} of {len(predictions)} cases")
st.dataframe(
    shown[["case_id", "fold", "label", "predicted", "confidence", "correct"]],
    hide_index=True,
    height=220,
    key="case_table",
)
if shown.empty:
    st.stop()

cases = shown["case_id"].tolist()
wanted = st.session_state.pop("browse_case", None)
index = cases.index(wanted) if wanted in cases else 0
case_id = st.selectbox("Case", cases, index=index, key="case_pick")
row = shown[shown["case_id"] == case_id].iloc[0]
st.subheader(f"Case {case_id}: true {row['label']}, predicted {row['predicted']}")

images = loaders.load_case_images(case_id, loaders.cohort_version())
if images.empty:
    st.warning(f"Case {case_id} has no images recorded in the database.")
    st.stop()
pick = 0
if len(images) > 1:
    pick = st.selectbox(
        "Slice", range(len(images)), format_func=lambda i: images["image_id"].iloc[i], key="slice"
    )
image = images.iloc[pick]
left, right = st.columns([3, 2])
with left:
    widgets.dicom_viewer(image, key="viewer")
with right:
    st.markdown("**Out-of-fold probabilities, every model**")
    widgets.probability_table(loaders.case_probabilities(all_predictions, case_id, labels))
    try:
        crop = widgets.crop_of(image)
    except (FileNotFoundError, OSError, IndexError) as exc:
        st.error(str(exc))
        st.stop()
    cam_class = st.selectbox(
        "Grad-CAM for class", CLASSES, index=CLASS_INDEX[row["predicted"]], key="cam_class"
    )
    a, b = st.columns(2)
    a.image(crop, caption=f"{crop.shape[0]}x{crop.shape[1]} crop", width="stretch", clamp=True)
    with b:
        widgets.gradcam_panel(
            run_id, crop, CLASS_INDEX[cam_class], caption=f"Grad-CAM: {cam_class}"
        )
