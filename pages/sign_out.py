"""Sign out and return to the sign-in page."""

import streamlit as st

from dashboard import auth

auth.sign_out()
st.rerun()
