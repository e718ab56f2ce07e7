"""Training data: fixed-length μ-law sub-audios, split by source recording, with a manifest.

A prepared dataset is a folder:
    manifest.json   rate, clip length, per-source split and clip counts, skipped files
    clips/*.u8      one file per source recording: its clips as raw uint8 μ-law rows
Re-running `prepare` skips sources whose clip file exists, so an interrupted run resumes.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wavenet import mulaw
from wavenet.audio import SILENCE_PEAK, AudioError, find_audio_files, load_audio

MANIFEST = "manifest.json"
CORPUS_GROUPS = "corpus.json"  # written by `wavenet corpus`: which renders share a source score


class DataError(ValueError):
    """A dataset that cannot be prepared or used, with a message meant for the user."""


def cut_clips(audio: np.ndarray, clip_samples: int) -> tuple[np.ndarray, list[int]]:
    """Non-overlapping μ-law clips [n, clip_samples], and how many clips each unbroken stretch of
    them holds: the short remainder and silent clips are dropped, and a dropped clip ends a stretch
    (a training window may run across the clips of one stretch, never across a gap)."""
    count = len(audio) // clip_samples
    rows = audio[: count * clip_samples].reshape(count, clip_samples)
    audible = np.abs(rows).max(axis=1) >= SILENCE_PEAK
    stretches = [len(list(run)) for kept, run in itertools.groupby(audible) if kept]
    return mulaw.encode(rows[audible]), stretches


def split_groups(groups: list[str], val_fraction: float, seed: int) -> set[str]:
    """The groups (source recordings) that go to validation: a seeded, reproducible choice.

    Each group's side depends only on its name and the seed, not on which other groups the
    dataset holds: two datasets built with one seed never put a group on opposite sides, so a
    model trained on one can be evaluated on the other's validation split. At least one group
    goes to each side.
    """
    unique = sorted(set(groups))
    if len(unique) < 2 or val_fraction <= 0:
        return set()

    def draw(group: str) -> float:
        digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    chosen = {g for g in unique if draw(g) < val_fraction}
    if not chosen:
        chosen = {min(unique, key=draw)}
    if len(chosen) == len(unique):
        chosen.discard(max(unique, key=draw))
    return chosen


class DatasetWriter:
    """Appends sources' clips to a prepared dataset folder and keeps its manifest."""

    def __init__(self, out: Path, sample_rate: int, clip_seconds: float, val_fraction: float, seed: int):
        self.out = Path(out)
        (self.out / "clips").mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.out / MANIFEST
        settings = {"sample_rate": sample_rate, "clip_samples": int(round(clip_seconds * sample_rate)),
                    "clip_seconds": clip_seconds, "val_fraction": val_fraction, "seed": seed}
        if self.manifest_path.exists():
            self.manifest = json.loads(self.manifest_path.read_text())
            old = {k: self.manifest.get(k) for k in settings}
            if old != settings:
                raise DataError(f"{out} was prepared with other settings ({old}); use a new folder")
        else:
            self.manifest = {**settings, "sources": {}, "skipped": {}, "description": ""}

    @property
    def clip_samples(self) -> int:
        return self.manifest["clip_samples"]

    def has(self, source: str) -> bool:
        return source in self.manifest["sources"]

    def add(self, source: str, audio: np.ndarray, group: str, extra: dict | None = None) -> int:
        """Cut `audio` into clips, write them atomically, record the source. Returns the clip count."""
        clips, stretches = cut_clips(audio, self.clip_samples)
        shard = hashlib.sha1(source.encode()).hexdigest()[:16] + ".u8"
        tmp = self.out / "clips" / (shard + ".tmp")
        clips.tofile(tmp)
        os.replace(tmp, self.out / "clips" / shard)
        self.manifest["sources"][source] = {"group": group, "shard": shard, "clips": len(clips), "stretches": stretches,
                                            "seconds": round(len(audio) / self.manifest["sample_rate"], 2),
                                            **(extra or {})}
        self.manifest["skipped"].pop(source, None)
        self._write()
        return len(clips)

    def skip(self, source: str, reason: str) -> None:
        self.manifest["skipped"][source] = reason
        self._write()

    def _write(self) -> None:
        """The manifest, atomically: an interrupted run resumes from every source recorded here."""
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.manifest, indent=1))
        os.replace(tmp, self.manifest_path)

    def finish(self, description: str = "", evaluation_only: bool = False) -> dict:
        """Assign splits by source group and write the manifest (atomically). An evaluation-only
        dataset says so in its manifest, so nothing offers it for training."""
        sources = self.manifest["sources"]
        val_groups = split_groups([s["group"] for s in sources.values()], self.manifest["val_fraction"],
                                  self.manifest["seed"])
        single = len({s["group"] for s in sources.values()}) == 1
        for entry in sources.values():
            if single and self.manifest["val_fraction"] > 0:
                # One recording cannot be split by source: its last clips become validation
                # (none when it has a single clip: training comes first).
                clips = entry["clips"]
                validation = min(clips - 1, max(1, round(clips * self.manifest["val_fraction"]))) if clips > 1 else 0
                entry["split"] = "time"
                entry["val_from"] = clips - validation
            else:
                entry["split"] = "val" if entry["group"] in val_groups else "train"
                entry.pop("val_from", None)
        clip_seconds = self.manifest["clip_seconds"]
        totals = {"train": 0, "val": 0}
        for entry in sources.values():
            for split in ("train", "val"):
                totals[split] += len(clip_rows(entry, split))
        self.manifest.update({
            "train_clips": totals["train"], "val_clips": totals["val"],
            "train_hours": round(totals["train"] * clip_seconds / 3600, 3),
            "val_hours": round(totals["val"] * clip_seconds / 3600, 3),
            "description": description or self.manifest.get("description", ""),
            "evaluation_only": evaluation_only,
        })
        if single:
            self.manifest["note"] = "only one source recording: validation is its last clips (split by time)"
        self._write()
        return self.manifest


def stretches_in(entry: dict, rows: range, clip_samples: int, sample_rate: int) -> list[int]:
    """How many of `rows` (one source's clips) each unbroken stretch holds. A manifest written
    before stretches were recorded says only whether a clip was dropped: then, if one was, every
    clip stands alone."""
    stretches = entry.get("stretches")
    if stretches is None:
        whole = round(entry["seconds"] * sample_rate) // clip_samples == entry["clips"]
        stretches = [entry["clips"]] if whole else [1] * entry["clips"]
    ends = np.cumsum(stretches)
    pieces = [min(end, rows.stop) - max(end - length, rows.start) for end, length in zip(ends, stretches)]
    return [piece for piece in pieces if piece > 0]


def clip_rows(entry: dict, split: str) -> range:
    """Which clip rows of one source belong to `split`."""
    if entry.get("split") == "time":
        return range(entry["val_from"]) if split == "train" else range(entry["val_from"], entry["clips"])
    return range(entry["clips"]) if entry.get("split") == split else range(0)


def prepare(src: Path, out: Path, sample_rate: int = 16000, clip_seconds: float = 5.0, val_fraction: float = 0.2,
            seed: int = 0, max_file_seconds: float = 4 * 3600, progress: bool = True) -> dict:
    """Turn a folder of recordings into a prepared dataset (the paper's sub-audio recipe)."""
    from tqdm import tqdm

    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"{src}: no such folder")
    files = find_audio_files(src)
    if not files:
        raise DataError(f"{src}: no audio files (.wav, .flac, .ogg, .mp3) found")
    if not 0 <= val_fraction < 1:
        raise DataError("--val-fraction must be in [0, 1)")
    if clip_seconds <= 0:
        raise DataError("--clip-seconds must be positive")
    groups_file = src / CORPUS_GROUPS
    groups = json.loads(groups_file.read_text()).get("groups", {}) if groups_file.exists() else {}
    writer = DatasetWriter(out, sample_rate, clip_seconds, val_fraction, seed)
    for path in tqdm(files, desc="preparing", unit="file", disable=not progress):
        source = str(path.relative_to(src))
        if writer.has(source):
            continue
        try:
            audio = load_audio(path, sample_rate, max_seconds=max_file_seconds)
        except AudioError as error:
            writer.skip(source, str(error))
            if progress:
                tqdm.write(f"skipped {source}: {error}")
            continue
        writer.add(source, audio, groups.get(source, source))
    manifest = writer.finish(f"prepared from {src}")
    if manifest["train_clips"] == 0:
        raise DataError(f"{src}: no usable clips of {clip_seconds} s (files too short, silent or unreadable)")
    return manifest


@dataclass
class ClipSet:
    """All clips of one split in memory: uint8 [N, clip_samples] (on the training device).

    An unbroken stretch of one recording is consecutive rows, `stretch_clips` of them per stretch
    in order (default: each clip stands alone), so a training window may run across a stretch's
    clips: a model whose receptive field nearly fills one clip still gets long windows to predict.
    """

    clips: torch.Tensor
    sample_rate: int
    stretch_clips: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.stretch_clips is None:
            self.stretch_clips = torch.ones(self.clips.shape[0], dtype=torch.long)
        self.stretch_clips = self.stretch_clips.cpu()  # drawn against CPU generators
        if int(self.stretch_clips.sum()) != self.clips.shape[0]:
            raise DataError("the stretches' clip counts do not add up to the clips held")

    @classmethod
    def load(cls, folder: Path, split: str, device: str | torch.device = "cpu") -> "ClipSet":
        folder = Path(folder)
        manifest_path = folder / MANIFEST
        if not manifest_path.exists():
            raise DataError(f"{folder}: not a prepared dataset (no {MANIFEST}); run `wavenet prepare` first")
        manifest = json.loads(manifest_path.read_text())
        if split == "train" and manifest.get("evaluation_only", False):
            raise DataError(f"{folder} is an evaluation set ({manifest.get('description', '')}): "
                            "training on it would spoil it; train on another dataset")
        width = manifest["clip_samples"]
        parts, stretches = [], []
        for entry in manifest["sources"].values():
            rows = clip_rows(entry, split)
            if len(rows):
                data = np.fromfile(folder / "clips" / entry["shard"], dtype=np.uint8).reshape(-1, width)
                parts.append(data[rows.start : rows.stop])
                stretches += stretches_in(entry, rows, width, manifest["sample_rate"])
        clips = torch.from_numpy(np.concatenate(parts)) if parts else torch.zeros((0, width), dtype=torch.uint8)
        return cls(clips.to(device), manifest["sample_rate"], torch.tensor(stretches, dtype=torch.long))

    def __len__(self) -> int:
        return self.clips.shape[0]

    @property
    def hours(self) -> float:
        return self.clips.numel() / self.sample_rate / 3600

    @property
    def longest_stretch(self) -> int:
        """Samples in the longest unbroken stretch: the longest window that can be drawn."""
        return int(self.stretch_clips.max()) * self.clips.shape[1] if len(self.stretch_clips) else 0

    def reachable_share(self, length: int) -> float:
        """The share of the clips that lie in stretches long enough for windows of `length` samples."""
        long_enough = self.stretch_clips * self.clips.shape[1] >= length
        return float(self.stretch_clips[long_enough].sum() / max(1, len(self)))

    def random_crops(self, batch: int, length: int, generator: torch.Generator, history: int = 0) -> torch.Tensor:
        """`batch` windows of `length` samples, each inside one unbroken stretch and every such
        window as likely, drawn with `generator`: uint8 [batch, history + length].

        `history` more samples come before each window (silence before its stretch's start); they
        do not change which windows are drawn.
        """
        if length > self.longest_stretch:
            raise DataError(f"crops of {length} samples do not fit in any recording (the longest unbroken stretch "
                            f"has {self.longest_stretch}); prepare longer recordings or train with a shorter "
                            "--output-length")
        width = self.clips.shape[1]
        stretch_samples = self.stretch_clips * width
        first_sample = torch.cumsum(stretch_samples, 0) - stretch_samples
        windows = (stretch_samples - length + 1).clamp(min=0)
        windows_through = torch.cumsum(windows, 0)  # windows in this stretch and every one before it
        drawn = torch.randint(0, int(windows_through[-1]), (batch,), generator=generator)
        stretch = torch.searchsorted(windows_through, drawn, right=True)
        starts = first_sample[stretch] + drawn - (windows_through[stretch] - windows[stretch])
        index = starts[:, None] - history + torch.arange(history + length)[None, :]
        before_stretch = index < first_sample[stretch][:, None]
        device = self.clips.device
        crops = self.clips.reshape(-1)[index.clamp(min=0).to(device)]
        return torch.where(before_stretch.to(device), torch.full_like(crops, mulaw.SILENCE), crops)
