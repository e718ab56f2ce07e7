"""What a visitor made and chose, kept on disk, so that a reload or a restarted studio loses none of it.

A visitor is a random id kept in the page's address (`?studio=…`): whoever opens that address sees
their takes, so it is no secret, only a name. Each take is one `.npz` (its audio, float32, exact) and
one `.json` (its settings); beside them, the last comparison (a shelf of its own), each page's last
upload, the controls as they were left, and what is being sampled. A visitor's folder goes once
nobody has opened their address for KEEP_DAYS.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import numpy as np
import streamlit as st

STORE_ENVIRONMENT = "WAVENET_STUDIO_VISITORS"  # where the folders are; tests point it at a temporary folder
DEFAULT_ROOT = Path.home() / ".cache" / "wavenet-studio" / "visitors"
KEEP_DAYS = 30
VISITOR_ID = re.compile(r"[0-9a-f]{32}")
RUNNING_FILE = "running.json"  # the take or comparison being sampled, by page, for a reload to pick up
CONTROLS_FILE = "controls.json"
# The session state a reload brings back: the controls that persist across pages within a session.
CONTROLS = re.compile(r"checkpoint|training_(run|x)|compare_(checkpoints|use_prime|prime_seconds)"
                      r"|(generate|continue|compare)_(seconds|temperature|min_p|seed|variations|random_first"
                      r"|first_sample|fresh_seed|mode|clip_source|region|region_clip)")
_writing = threading.Lock()  # browser sessions are threads of one process: one read-modify-write at a time


def store_root() -> Path:
    return Path(os.environ.get(STORE_ENVIRONMENT) or DEFAULT_ROOT)


def forget_old_visitors(root: Path, keep_days: float = KEEP_DAYS) -> None:
    """Remove the folders of visitors who have not been back for `keep_days`."""
    oldest = time.time() - keep_days * 86400
    try:
        for folder in root.iterdir():
            if folder.is_dir() and VISITOR_ID.fullmatch(folder.name) and folder.stat().st_mtime < oldest:
                shutil.rmtree(folder, ignore_errors=True)
    except OSError:
        pass  # no store yet, or one this user cannot read: nothing to forget


def saved_fields(record) -> dict:
    """A take's dataclass fields but its audio: what goes into its `.json`."""
    return {each.name: getattr(record, each.name) for each in fields(record) if each.name != "audio"}


def _plain(value: object) -> object:
    """numpy's numbers as JSON's."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} cannot be saved")


def _write_whole(path: Path, data: bytes) -> None:
    """Whole or not at all: a reader never sees half a file."""
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)


def _write_json(path: Path, value: object) -> None:
    _write_whole(path, json.dumps(value, default=_plain).encode())


def _read_json(path: Path) -> dict:
    """The file's object, or {} when it is missing or damaged."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class VisitorStore:
    """One visitor's folder: takes by key (any file-name-safe string), each page's last upload, the
    controls, and what is being sampled. A `shelf` keeps another kind of take (a comparison's) apart
    from the take list."""

    def __init__(self, root: Path, visitor: str, shelf: str = "") -> None:
        if not VISITOR_ID.fullmatch(visitor):
            raise ValueError(f"not a visitor id: {visitor!r}")
        self.folder = root / visitor / shelf if shelf else root / visitor

    def touch(self) -> None:
        """The visitor is back: their folder is not old."""
        if self.folder.is_dir():
            os.utime(self.folder)

    def put(self, key: str, settings: dict, audio: np.ndarray) -> None:
        """Write one take; its settings go last, so a half-written take is never listed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        packed = io.BytesIO()
        np.savez_compressed(packed, audio=np.asarray(audio, np.float32))
        _write_whole(self.folder / f"{key}.npz", packed.getvalue())
        _write_json(self.folder / f"{key}.json", settings)

    def remove(self, key: str) -> None:
        for suffix in (".json", ".npz"):
            (self.folder / f"{key}{suffix}").unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove every take on this shelf, readable or not."""
        for path in [*self.folder.glob("*.json"), *self.folder.glob("*.npz")]:
            if path.name not in (RUNNING_FILE, CONTROLS_FILE):
                path.unlink(missing_ok=True)

    def items(self) -> Iterator[tuple[str, dict, np.ndarray]]:
        """(key, settings, audio) of every readable take, in no particular order; a damaged one is skipped
        (and left on disk, where it harms nothing)."""
        for settings_file in self.folder.glob("*.json"):
            if settings_file.name in (RUNNING_FILE, CONTROLS_FILE):
                continue
            try:
                settings = json.loads(settings_file.read_text())
                with np.load(settings_file.with_suffix(".npz")) as saved:
                    audio = saved["audio"]
            except Exception:  # noqa: BLE001 - a damaged file raises whatever its decoder meets (zip, zlib, ...)
                continue
            if isinstance(settings, dict):
                yield settings_file.stem, settings, audio

    def keep_upload(self, page: str, name: str, data: bytes) -> None:
        """The page's last usable upload (one per page), so that a reload still has the clip to continue."""
        uploads = self.folder / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        _write_whole(uploads / f"{page}.clip", data)
        _write_json(uploads / f"{page}.json", {"name": name, "bytes": len(data)})

    def kept_upload(self, page: str) -> tuple[str, bytes] | None:
        """(file name, bytes) of the page's last usable upload, if it is whole."""
        about = _read_json(self.folder / "uploads" / f"{page}.json")
        try:
            data = (self.folder / "uploads" / f"{page}.clip").read_bytes()
        except OSError:
            return None
        if about.get("bytes") != len(data) or not isinstance(about.get("name"), str):
            return None
        return about["name"], data

    def controls(self) -> dict:
        return _read_json(self.folder / CONTROLS_FILE)

    def set_controls(self, values: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_json(self.folder / CONTROLS_FILE, values)

    def running(self) -> dict[str, str]:
        """The ids of the takes (or comparisons) being sampled, by page."""
        return {page: work_id for page, work_id in _read_json(self.folder / RUNNING_FILE).items()
                if isinstance(work_id, str)}

    def note_running(self, page: str, work_id: str) -> None:
        with _writing:
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_json(self.folder / RUNNING_FILE, {**self.running(), page: work_id})

    def forget_running(self, page: str, work_id: str) -> None:
        """Only if the page's entry is still `work_id`: another tab may have started something newer."""
        with _writing:
            running = self.running()
            if running.get(page) == work_id:
                del running[page]
                _write_json(self.folder / RUNNING_FILE, running)


def visitor_id() -> str:
    """This visitor's id, kept in the page's address (`?studio=…`) so that a reload finds their takes.
    Called on every run: moving to another page clears the address's parameters."""
    if "visitor" not in st.session_state:
        given = st.query_params.get("studio", "")
        st.session_state["visitor"] = given if VISITOR_ID.fullmatch(given) else uuid.uuid4().hex
    if st.query_params.get("studio") != st.session_state["visitor"]:
        st.query_params["studio"] = st.session_state["visitor"]
    return st.session_state["visitor"]


@st.cache_resource(show_spinner=False, ttl=86400)
def _old_visitors_forgotten(root: Path) -> bool:
    """Once a day per studio process and store folder."""
    forget_old_visitors(root)
    return True


def visitor_store(shelf: str = "") -> VisitorStore:
    root = store_root()
    _old_visitors_forgotten(root)
    return VisitorStore(root, visitor_id(), shelf)


def remember_running(page: str, work_id: str) -> None:
    """Note the take or comparison this visitor has running on a page, for a reload to pick up."""
    try:
        visitor_store().note_running(page, work_id)
    except OSError:
        pass  # only a reload's convenience: the work itself is unaffected


def forget_running(page: str, work_id: str) -> None:
    """The page's running work has ended (unless something newer has been noted since)."""
    try:
        visitor_store().forget_running(page, work_id)
    except OSError:
        pass


def running_before_reload(page: str) -> str:
    """The id `remember_running` noted for the page ('' for none)."""
    return visitor_store().running().get(page, "")


def restore_controls() -> None:
    """On a browser session's first run: the controls as this visitor left them before a reload.
    Pages check what they get back (a checkpoint or clip that has gone is replaced as on a first visit)."""
    if "controls_restored" in st.session_state:
        return
    st.session_state["controls_restored"] = True
    store = visitor_store()
    store.touch()
    for key, value in store.controls().items():
        if not CONTROLS.fullmatch(key):
            continue
        if key.endswith("_region"):
            try:
                start, end = (float(bound) for bound in value)
            except (TypeError, ValueError):
                continue
            value = (start, end)
        st.session_state.setdefault(key, value)
    st.session_state["controls_remembered"] = _controls()


def remember_controls() -> None:
    """Keep the controls for a reload (written only when they changed). Called as each run starts, when
    the browser's changes to the widgets are already in the session state."""
    values = _controls()
    if values == st.session_state.get("controls_remembered"):
        return
    try:
        visitor_store().set_controls(values)
    except (OSError, TypeError):
        return  # a reload starts from the defaults: nothing made is lost
    st.session_state["controls_remembered"] = values


def _controls() -> dict:
    return {key: value for key, value in st.session_state.items() if CONTROLS.fullmatch(key)}
