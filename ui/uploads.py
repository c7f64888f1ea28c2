"""Uploaded files: saved to a temporary folder under their own name for the importer."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

from analytics import ingest
from analytics.schema import TableSpec


def save_upload(upload, folder: str) -> Path:
    """Write a Streamlit UploadedFile to `folder`, keeping its name (and so its type)."""
    path = Path(folder) / Path(upload.name).name
    path.write_bytes(upload.getvalue())
    return path


def temp_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="atlas-upload-")


def detected_columns(path: Path, label: str, spec: TableSpec) -> tuple[list[str], dict]:
    """(the file's headers, the automatic field -> column match) without storing anything."""
    con = duckdb.connect()
    try:
        headers = ingest.read_source(con, path, "preview", label)
        try:
            chosen = ingest.match_columns(spec, headers, {}, label)
        except ingest.InputError:
            chosen = {}
            norm = {ingest._norm(h): h for h in headers}
            for f in spec.fields:
                for cand in (f.name, *f.aliases):
                    if ingest._norm(cand) in norm:
                        chosen[f.name] = norm[ingest._norm(cand)]
                        break
        return headers, chosen
    finally:
        con.close()
