"""CervixScope science layer: ingestion, models, cross-validation, metrics. No Streamlit here."""
