"""A data refresh while the app runs: `load` hands the import to the server holding the file.

DuckDB lets one process open a database file for writing. While the app has it open, a
`python -m analytics load` into the same file cannot open it; instead of failing it writes
its request (the files' absolute paths, the column mapping, the options, who acts) into a
folder next to the database, `<database>.requests/`, and waits. The app watches that folder
(`Watcher`, a thread started with the app's store), runs the import in its own process as
the named person (the roles hold: a viewer's import is refused), and writes the report back;
`load` prints it as if it had run the import itself. The app's pages read the new data at
their next run: every cache over data is keyed by the data version an import changes.

If no app takes the request within the wait (the file is held by something else), `load`
withdraws it and says so; nothing is imported. Folder and files are created readable by
their owner only: whoever can write there can write the database file anyway.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

from analytics.errors import InputError

REQUEST, TAKEN, RESULT, WITHDRAWN = "request.json", "taken.json", "result.json", "withdrawn"
POLL_SECONDS = 0.25


def requests_dir(db_path: Path) -> Path:
    """The same folder whichever process asks, whatever its working directory."""
    db_path = Path(db_path).resolve()
    return db_path.with_name(db_path.name + ".requests")


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    tmp.replace(path)  # the reader never sees half a file


# --------------------------------------------------------------------------------------
# the import report across processes
# --------------------------------------------------------------------------------------
def report_to_dict(report) -> dict:
    return dataclasses.asdict(report)


def report_from_dict(data: dict):
    from analytics.ingest import ImportReport, Rejection, TableReport

    tables = [TableReport(**{**t, "rejected": [Rejection(**r) for r in t["rejected"]]})
              for t in data["tables"]]
    return ImportReport(tables=tables, committed=data["committed"])


# --------------------------------------------------------------------------------------
# the command line's side
# --------------------------------------------------------------------------------------
def submit(db_path: Path, request: dict, *, wait: float, taken_wait: float = 3600.0):
    """Hand `request` (ingest.load's keyword arguments, files as absolute paths, plus
    `as_user`) to the app holding `db_path`; the ImportReport it returns, or the error it
    raised (InputError / ImportRejected). InputError when no app takes it in `wait` seconds.
    """
    from analytics.ingest import ImportRejected

    folder = requests_dir(db_path)
    folder.mkdir(mode=0o700, exist_ok=True)
    box = folder / uuid.uuid4().hex
    box.mkdir(mode=0o700)
    try:
        _write_json(box / REQUEST, request)
        start = time.monotonic()
        while True:
            if (box / RESULT).exists():
                result = json.loads((box / RESULT).read_text(encoding="utf-8"))
                break
            waited = time.monotonic() - start
            if waited > wait and (box / REQUEST).exists():
                try:  # withdraw it, unless the app takes it at this very moment
                    (box / REQUEST).rename(box / WITHDRAWN)
                except FileNotFoundError:
                    pass
                else:
                    raise InputError(
                        f"the database is in use by another process and no Territory Atlas "
                        f"app took the import within {wait:g} s; nothing was imported. Stop "
                        "the other process, or import on the app's Data page",
                        file=str(db_path))
            if waited > wait + taken_wait:
                raise InputError(f"the app took the import but gave no answer in "
                                 f"{taken_wait:g} s", file=str(db_path))
            time.sleep(POLL_SECONDS)
    finally:
        shutil.rmtree(box, ignore_errors=True)
    if result.get("error"):
        if result.get("report") is not None:
            raise ImportRejected(result["error"], report_from_dict(result["report"]))
        raise InputError(result["error"])
    return report_from_dict(result["report"])


# --------------------------------------------------------------------------------------
# the app's side
# --------------------------------------------------------------------------------------
def _acting(store, as_user: str | None, os_user: str):
    from analytics import users

    if as_user:
        return users.get_user(store.unscoped_cursor(), as_user)
    return users.User(os_user or "unknown", "admin", local=True)


def serve_pending(store) -> int:
    """Run every waiting request for `store`'s database; how many were run."""
    from analytics import ingest, users

    folder = requests_dir(store.path)
    if not folder.is_dir():
        return 0
    done = 0
    for box in sorted(folder.iterdir()):
        try:  # take it: a rename is atomic, so only one server runs it
            (box / REQUEST).rename(box / TAKEN)
        except (FileNotFoundError, NotADirectoryError):
            continue
        result: dict = {"error": None, "report": None}
        try:
            req = json.loads((box / TAKEN).read_text(encoding="utf-8"))
            with users.acting_as(_acting(store, req.get("as_user"), req.get("os_user"))):
                report = ingest.load(
                    store, accounts=req.get("accounts"), sales=req.get("sales"),
                    reps=req.get("reps"), stage_history=req.get("stage_history"),
                    mapping=req.get("mapping") or {},
                    replace=bool(req.get("replace")),
                    all_or_nothing=bool(req.get("all_or_nothing")),
                    allow_empty=bool(req.get("allow_empty")), labels=req.get("labels"))
            result["report"] = report_to_dict(report)
        except ingest.ImportRejected as exc:
            result = {"error": str(exc), "report": report_to_dict(exc.report)}
        except InputError as exc:
            result["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - the waiting command must hear of it
            result["error"] = f"the app could not import: {type(exc).__name__}: {exc}"
        _write_json(box / RESULT, result)
        done += 1
    return done


class Watcher(threading.Thread):
    """Runs handed-over imports for one store while the app runs (a daemon thread)."""

    def __init__(self, store, interval: float = 0.5) -> None:
        super().__init__(name=f"handover {store.path.name}", daemon=True)
        self.store = store
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            # each request's own failure is answered to its command by serve_pending; an
            # unreadable folder must not stop the watch (the command then times out)
            with contextlib.suppress(Exception):
                serve_pending(self.store)

    def stop(self) -> None:
        self.stopped.set()
