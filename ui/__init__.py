"""Streamlit widgets shared by the pages (the engine lives in `analytics/`)."""
