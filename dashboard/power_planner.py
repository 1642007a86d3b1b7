"""The study planner widget: power and cases needed for a pivotal study, from the selected pilot
study's Obuchowski-Rockette variance components (or components typed in). Self-contained, so a
page mounts it with one call."""

from __future__ import annotations

import streamlit as st

import db
from core.reader_study.mrmc_inputs import MRMC_FOMS, check_pilot_arms, pilot_components
from core.reader_study.study_data import load_study_data
from core.statistics.power import (
    POWER_ANALYSES,
    VarianceComponents,
    cases_for_power,
    power_given_jk,
    power_table,
)
from dashboard import saved
from dashboard.store import LIBRARY_ERRORS, connection

_DEFAULTS = VarianceComponents(  # the Van Dyke pilot (RJafroc dataset02), to start from
    var_tr=0.00020040252, var=0.00080228827, cov1=0.00034661371, cov2=0.00034407483,
    cov3=0.00023902837, n_cases=114, effect_size=-0.0438,
)  # fmt: skip


def _pilot(study_id: int | None, fom: str) -> tuple[VarianceComponents, str]:
    """The selected study's components, or the typed-in defaults with the reason."""
    if study_id is None:
        return _DEFAULTS, "No study selected: start from the components below."
    try:
        with connection() as conn:
            version = db.reads_version(conn, study_id)
        found, problem = _study_components(study_id, fom, version)
    except LIBRARY_ERRORS as exc:
        found, problem = None, str(exc)
    if found is None:
        return _DEFAULTS, f"Study {study_id} cannot serve as a pilot yet ({problem})."
    return (
        found,
        f"Filled from study {study_id} ({found.n_readers} readers, {found.n_cases} cases).",
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _study_components(
    study_id: int, fom: str, version: str
) -> tuple[VarianceComponents | None, str | None]:
    """A study's OR components, or why it has none, recomputed only when its reads changed
    (``version``; kept in the database too): a study that cannot be a pilot is not re-read on
    every rerun either."""

    def compute() -> tuple[VarianceComponents | None, str | None]:
        try:
            with connection() as conn:
                check_pilot_arms(db.get_study(conn, study_id)["arms"])  # before 128,000 reads
                return pilot_components(load_study_data(conn, study_id), fom=fom), None
        except LIBRARY_ERRORS as exc:
            return None, str(exc)

    return saved.remembered(f"study:{study_id}", f"pilot components {fom}|{version}", compute)


def _typed(pilot: VarianceComponents, key: str) -> VarianceComponents:
    """Number inputs holding the pilot's components, editable."""
    cols = st.columns(6)
    values = {}
    for col, (name, label) in zip(
        cols,
        [("var", "Var"), ("cov1", "Cov1"), ("cov2", "Cov2"), ("cov3", "Cov3"),
         ("var_tr", "Var(T*R)")],
        strict=False,
    ):  # fmt: skip
        values[name] = col.number_input(
            label, value=float(getattr(pilot, name)), format="%.8f", step=1e-5, key=f"{key}_{name}"
        )
    cases = cols[5].number_input("Pilot cases K*", 2, 100000, int(pilot.n_cases), key=f"{key}_k")
    return VarianceComponents(n_cases=int(cases), effect_size=pilot.effect_size, **values)


def power_planner(study_id: int | None, *, key: str = "planner") -> None:
    """Mount the planner: pilot components, design inputs, power, cases needed and a table."""
    st.subheader("Plan the next study: power and sample size")
    st.caption(
        "Hillis, Obuchowski & Berbaum (2011), as RJafroc's SsPowerGivenJK / SsSampleSizeKGivenJ: "
        "the pilot's aided-vs-unaided variance components scaled to the new study's readers and "
        "cases."
    )
    fom = st.selectbox(
        "Pilot figure of merit", list(MRMC_FOMS), format_func=MRMC_FOMS.get, key=f"{key}_fom"
    )
    pilot, note = _pilot(study_id, fom)
    st.caption(note)
    try:
        components = _typed(pilot, f"{key}_{study_id}_{fom}")
        left, mid, right = st.columns(3)
        effect = left.number_input(
            "Effect size (AUC difference)",
            value=float(pilot.effect_size or 0.05),
            format="%.4f",
            step=0.005,
            key=f"{key}_effect",
        )
        readers = mid.number_input("Readers J", 2, 200, 10, key=f"{key}_j")
        cases = right.number_input("Cases K", 2, 100000, 150, key=f"{key}_k_new")
        analysis = st.radio(
            "Generalise to",
            list(POWER_ANALYSES),
            format_func=POWER_ANALYSES.get,
            horizontal=True,
            key=f"{key}_analysis",
        )
        target = st.slider("Target power", 0.5, 0.99, 0.8, 0.01, key=f"{key}_target")
        options = {"effect_size": effect, "analysis": analysis}
        result = power_given_jk(components, n_readers=int(readers), n_cases=int(cases), **options)
        st.metric("Power", f"{result.power:.3f}")
        st.markdown(result.summary())
        needed = cases_for_power(components, n_readers=int(readers), target=target, **options)
        st.markdown(
            f"Cases needed for power {target:.2f} with {readers} readers: **{needed.n_cases}**."
        )
        grid = power_table(
            components, readers=[4, 6, 8, 10, 15], cases=[50, 100, 200, 300, 500], **options
        )
        st.dataframe(grid.round(3))
    except LIBRARY_ERRORS as exc:
        st.error(str(exc))
