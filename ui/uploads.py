"""Uploaded files: saved to a temporary folder under their own name for the importer."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import streamlit as st

from analytics import ingest
from analytics.columns import match_columns
from analytics.errors import InputError
from analytics.schema import TableSpec
from ui.text import literal


def save_upload(upload, folder: str) -> Path:
    """Write a Streamlit UploadedFile to `folder`, keeping its name (and so its type)."""
    path = Path(folder) / Path(upload.name).name
    path.write_bytes(upload.getvalue())
    return path


def temp_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="atlas-upload-")


@contextmanager
def uploaded(upload) -> Iterator[Path]:
    """The upload saved to a temporary file for one import; a refused import is shown (its
    report as a table: file, row, column, value, reason), a bad input as an error, and the
    file is removed either way."""
    tmp = temp_folder()
    try:
        yield save_upload(upload, tmp.name)
    except ingest.ImportRejected as exc:
        st.error(literal(exc))
        st.dataframe(exc.report.frame(), hide_index=True)
    except InputError as exc:
        st.error(literal(exc))
    finally:
        tmp.cleanup()


def detected_columns(path: Path, label: str, spec: TableSpec) -> tuple[list[str], dict]:
    """(the file's headers, the automatic field -> column match) without storing anything."""
    con = duckdb.connect()
    try:
        headers = ingest.read_source(con, path, "preview", label)
        # partial: a file still lacking a required column shows what did match
        return headers, match_columns(headers, spec, partial=True)
    finally:
        con.close()
