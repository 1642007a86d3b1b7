"""Streamlit glue: navigation, sign-in, cached loaders, shared widgets and figures."""
