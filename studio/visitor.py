"""What a visitor made and chose, kept on disk, so that a reload or a restarted studio loses none of it.

A visitor is a random id kept in the page's address (`?studio=…`): whoever opens that address sees
their takes, so it is no secret, only a name. Each take is one `.npz` (its audio, float32, exact) and
one `.json` (its settings); beside them, the last comparison (a shelf of its own), each page's last
upload, the controls as they were left, and which takes are being sampled. Folders nobody opened for
KEEP_DAYS go when the studio next starts.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import streamlit as st

STORE_ENVIRONMENT = "WAVENET_STUDIO_TAKES"  # where the folders are; tests point it at a temporary folder
DEFAULT_ROOT = Path.home() / ".cache" / "wavenet-studio" / "takes"
KEEP_DAYS = 30
VISITOR_ID = re.compile(r"[0-9a-f]{32}")
LIVE_FILE = "live.json"  # the takes being sampled, by page, so that a reload can pick them up again
CONTROLS_FILE = "controls.json"
# The session state a reload brings back: the controls that persist across pages within a session.
CONTROLS = re.compile(r"checkpoint|training_(run|x)|compare_(checkpoints|use_prime|prime_seconds)"
                      r"|(generate|continue|compare)_(seconds|temperature|min_p|seed|variations|random_first"
                      r"|first_sample|fresh_seed|mode|clip_source|region|region_clip)")


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


def _plain(value):
    """numpy's numbers as JSON's."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} cannot be saved")


class VisitorStore:
    """One visitor's folder: takes by key (any file-name-safe string), each page's last upload, the
    controls, and what is being sampled. A `shelf` keeps another kind of take (a comparison's) apart
    from the take list."""

    def __init__(self, root: Path, visitor: str, shelf: str = "") -> None:
        if not VISITOR_ID.fullmatch(visitor):
            raise ValueError(f"not a visitor id: {visitor!r}")
        self.folder = root / visitor / shelf if shelf else root / visitor

    def put(self, key: str, settings: dict, audio: np.ndarray) -> None:
        """Write one take; the settings file is written last, so a half-written take is never listed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{key}.npz.part", "wb") as file:
            np.savez_compressed(file, audio=np.asarray(audio, np.float32))
        os.replace(self.folder / f"{key}.npz.part", self.folder / f"{key}.npz")
        (self.folder / f"{key}.json.part").write_text(json.dumps(settings, default=_plain))
        os.replace(self.folder / f"{key}.json.part", self.folder / f"{key}.json")

    def remove(self, key: str) -> None:
        for suffix in (".json", ".npz"):
            (self.folder / f"{key}{suffix}").unlink(missing_ok=True)

    def clear(self) -> None:
        for key, _, _ in list(self.items()):
            self.remove(key)

    def items(self) -> Iterator[tuple[str, dict, np.ndarray]]:
        """(key, settings, audio) of every readable take, in no particular order; a damaged one is skipped
        (and left on disk, where it harms nothing)."""
        if not self.folder.is_dir():
            return
        os.utime(self.folder)  # the visitor is back: their folder is not old
        for settings_file in self.folder.glob("*.json"):
            if settings_file.name in (LIVE_FILE, CONTROLS_FILE):
                continue
            try:
                settings = json.loads(settings_file.read_text())
                with np.load(settings_file.with_suffix(".npz")) as saved:
                    audio = saved["audio"]
            except (OSError, ValueError, KeyError, EOFError):
                continue
            yield settings_file.stem, settings, audio

    def keep_upload(self, page: str, name: str, data: bytes) -> None:
        """The page's last usable upload (one per page), so that a reload still has the clip to continue."""
        uploads = self.folder / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        (uploads / f"{page}.part").write_bytes(data)
        os.replace(uploads / f"{page}.part", uploads / f"{page}.clip")
        (uploads / f"{page}.json").write_text(json.dumps({"name": name, "bytes": len(data)}))

    def kept_upload(self, page: str) -> tuple[str, bytes] | None:
        """(file name, bytes) of the page's last usable upload, if it is whole."""
        try:
            name = json.loads((self.folder / "uploads" / f"{page}.json").read_text())
            data = (self.folder / "uploads" / f"{page}.clip").read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(name, dict) or name.get("bytes") != len(data) or not isinstance(name.get("name"), str):
            return None
        return name["name"], data

    def controls(self) -> dict:
        try:
            return dict(json.loads((self.folder / CONTROLS_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return {}

    def set_controls(self, values: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / CONTROLS_FILE).write_text(json.dumps(values, default=_plain))

    def live(self) -> dict[str, str]:
        """The ids of the takes being sampled, by page."""
        try:
            return dict(json.loads((self.folder / LIVE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return {}

    def set_live(self, page: str, take_id: str | None) -> None:
        live = self.live()
        if live.get(page) == take_id:
            return
        if take_id:
            live[page] = take_id
        else:
            live.pop(page, None)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / LIVE_FILE).write_text(json.dumps(live))


def visitor_id() -> str:
    """This visitor's id, kept in the page's address (`?studio=…`) so that a reload finds their takes.
    Called on every run: moving to another page clears the address's parameters."""
    if "visitor" not in st.session_state:
        given = st.query_params.get("studio", "")
        st.session_state["visitor"] = given if VISITOR_ID.fullmatch(given) else uuid.uuid4().hex
    if st.query_params.get("studio") != st.session_state["visitor"]:
        st.query_params["studio"] = st.session_state["visitor"]
    return st.session_state["visitor"]


@st.cache_resource(show_spinner=False)
def _old_visitors_forgotten(root: Path) -> bool:
    """Once per studio process and store folder."""
    forget_old_visitors(root)
    return True


def visitor_store(shelf: str = "") -> VisitorStore:
    root = store_root()
    _old_visitors_forgotten(root)
    return VisitorStore(root, visitor_id(), shelf)


def remember_running(page: str, work_id: str | None) -> None:
    """Note (or, with None, forget) the take or comparison this visitor has running on a page, for a
    reload to pick up."""
    try:
        visitor_store().set_live(page, work_id)
    except OSError:
        pass  # only a reload's convenience: the work itself is unaffected


def running_before_reload(page: str) -> str:
    """The id `remember_running` noted for the page ('' for none)."""
    return visitor_store().live().get(page, "")


def restore_controls() -> None:
    """On a browser session's first run: the controls as this visitor left them before a reload.
    Pages check what they get back (a checkpoint or clip that has gone is replaced as on a first visit)."""
    if "controls_restored" in st.session_state:
        return
    st.session_state["controls_restored"] = True
    for key, value in visitor_store().controls().items():
        if CONTROLS.fullmatch(key):
            st.session_state.setdefault(key, tuple(value) if key.endswith("_region") else value)
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
