"""Sign in: researchers with the admin secret, readers with their one-time access code."""

import streamlit as st

from dashboard import auth
from dashboard.store import LIBRARY_ERRORS

st.title("CervixScope")
st.caption(
    "Cervical cancer type from T2-weighted sagittal MRI: cross-validation and reader studies."
)

reader_tab, admin_tab = st.tabs(["Reader or annotator", "Researcher (admin)"])

with reader_tab, st.form("reader_sign_in"):
    code = st.text_input(
        "Access code",
        type="password",
        help="The code your admin gave you: R... to read a study, A... to mark lesions.",
    )
    if st.form_submit_button("Continue", type="primary"):
        try:
            auth.sign_in_with_code(code)
        except LIBRARY_ERRORS as exc:  # a wrong code, throttled, or a broken database path
            st.error(str(exc))
        else:
            st.rerun()

with admin_tab:
    if auth.admin_secret() is None:
        st.warning(
            f"No admin secret is configured. Set `{auth.ADMIN_SECRET_ENV}` or `admin_secret` in "
            "`.streamlit/secrets.toml` and restart; there is no default password."
        )
    else:
        with st.form("admin_sign_in"):
            secret = st.text_input("Admin secret", type="password")
            if st.form_submit_button("Sign in", type="primary"):
                try:
                    auth.sign_in_admin(secret)
                except LIBRARY_ERRORS as exc:  # wrong, throttled or locked out
                    st.error(str(exc))
                else:
                    st.rerun()
