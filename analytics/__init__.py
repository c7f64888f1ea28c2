"""Territory Atlas engine: store, import, spatial units, plans and the command line.

Nothing in this package imports Streamlit, so every number the app shows can be computed,
tested and exported from the command line (`python -m analytics --help`).
"""

__version__ = "0.1.0"
