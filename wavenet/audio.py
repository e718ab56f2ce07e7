"""Load, resample and save audio, with clear errors for input a model cannot use."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
SILENCE_PEAK = 1e-4  # below this peak amplitude a file counts as silent


class AudioError(ValueError):
    """Input audio that cannot be used, with a message meant for the user."""


@dataclass(frozen=True)
class Clip:
    """A file's audio as a model hears it, and what was done to get there."""
    audio: np.ndarray  # mono float32 in [-1, 1] at the requested rate
    channels: int  # in the file; more than one were mixed down
    file_rate: int


def load_audio(source: str | Path | bytes, sample_rate: int, max_seconds: float | None = None,
               allow_silence: bool = False) -> np.ndarray:
    """Read WAV/FLAC/OGG/MP3 (a path or the file's bytes), mix to mono, resample; float32 in [-1, 1]."""
    return read_clip(source, sample_rate, max_seconds, allow_silence).audio


def read_clip(source: str | Path | bytes, sample_rate: int, max_seconds: float | None = None,
              allow_silence: bool = False) -> Clip:
    """load_audio, also saying how many channels the file had and its sample rate."""
    import io

    import soundfile as sf
    import soxr

    name = "the upload" if isinstance(source, bytes) else Path(source).name
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise AudioError(f"{source}: no such file")
    if (len(source) if isinstance(source, bytes) else Path(source).stat().st_size) == 0:
        raise AudioError(f"{name} is empty (0 bytes)")
    handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        info = sf.info(handle)
        if max_seconds is not None and info.duration > max_seconds:
            raise AudioError(f"{name} is {info.duration:.0f} s long; the limit is {max_seconds:.0f} s")
        if isinstance(handle, io.BytesIO):
            handle.seek(0)
        audio, rate = sf.read(handle, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception:  # formats libsndfile cannot read go through audioread; else a clear error
        audio, rate = _load_with_fallback(source, name)
    if audio.size == 0:
        raise AudioError(f"{name} contains no audio samples")
    mono = audio.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{name} contains NaN or infinite samples")
    if max_seconds is not None and len(mono) / rate > max_seconds:
        raise AudioError(f"{name} is {len(mono) / rate:.0f} s long; the limit is {max_seconds:.0f} s")
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate).astype(np.float32)
    if not allow_silence and np.abs(mono).max() < SILENCE_PEAK:
        raise AudioError(f"{name} is silent")
    return Clip(np.clip(mono, -1.0, 1.0).astype(np.float32), audio.shape[1], int(rate))


def _load_with_fallback(source: str | Path | bytes, name: str) -> tuple[np.ndarray, int]:
    """Decode through audioread (via librosa) what libsndfile cannot; else a clear AudioError."""
    import tempfile
    import warnings

    try:
        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(source, bytes):
                with tempfile.NamedTemporaryFile(suffix=".audio") as tmp:
                    tmp.write(source)
                    tmp.flush()
                    audio, rate = librosa.load(tmp.name, sr=None, mono=False)
            else:
                audio, rate = librosa.load(str(source), sr=None, mono=False)
    except Exception:
        kind = format_by_signature(_first_bytes(source, 12))
        if kind:
            article = "an" if kind in ("OGG", "MP3") else "a"
            raise AudioError(f"{name} looks like {article} {kind} file but cannot be decoded: it is damaged or "
                             "cut short") from None
        raise AudioError(f"{name} is not a readable audio file (WAV, FLAC, OGG or MP3 expected)") from None
    audio = np.atleast_2d(audio).T.astype(np.float32)
    return audio, int(rate)


def _first_bytes(source: str | Path | bytes, count: int) -> bytes:
    if isinstance(source, bytes):
        return source[:count]
    try:
        with open(source, "rb") as file:
            return file.read(count)
    except OSError:
        return b""


def format_by_signature(head: bytes) -> str | None:
    """The audio format a file's first bytes announce (WAV, FLAC, OGG, MP3), or None. An MP3
    without an ID3 tag starts with an MPEG Layer III frame header (not just any 0xFFEx: that
    would take a UTF-16 text file's byte-order mark, or AAC, for an MP3)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE6 == 0xE2):
        return "MP3"
    return None


def sound_starts(audio: np.ndarray, sample_rate: int, below_peak_db: float = 35.0) -> float:
    """Seconds of silence (or near-silence) before a clip's sound begins: the first 10 ms frame within
    `below_peak_db` of the loudest frame's level. A prime should start there, not in the lead-in."""
    frame = max(1, sample_rate // 100)
    frames = np.asarray(audio[: len(audio) // frame * frame], dtype=np.float64).reshape(-1, frame)
    level = np.sqrt((frames ** 2).mean(axis=1))
    if not len(level) or level.max() == 0:
        return 0.0
    first = np.flatnonzero(level >= level.max() * 10 ** (-below_peak_db / 20))[0]
    return float(first * frame / sample_rate)


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Our own rounding to 16 bits, so WAV and FLAC of one take hold the same samples."""
    return np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)


def save_audio(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write WAV (PCM16) or FLAC (16-bit), chosen by the suffix."""
    import soundfile as sf

    path = Path(path)
    if path.suffix.lower() not in (".wav", ".flac"):
        raise AudioError(f"{path.name}: can only save .wav or .flac")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), to_pcm16(audio), sample_rate, subtype="PCM_16")
    return path


def audio_bytes(audio: np.ndarray, sample_rate: int, fmt: str = "WAV") -> bytes:
    """The encoded file (WAV or FLAC, 16-bit) as bytes, for downloads and players."""
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, to_pcm16(audio), sample_rate, subtype="PCM_16", format=fmt)
    return buffer.getvalue()


def find_audio_files(folder: str | Path) -> list[Path]:
    """Every audio file under `folder`, sorted, by suffix."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
