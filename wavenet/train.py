"""Training loop: one process, or DistributedDataParallel under `torchrun`.

A run folder holds `last/` and `best/` checkpoints (model + `trainer.pt` with optimizer,
step, RNG and data-sampler state, so a killed run resumes exactly), TensorBoard events in
`tb/`, the audio samples logged at each checkpoint in `samples/`, and with `keep_checkpoints`
the weights of every checkpoint in `steps/`.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import signal
import threading
import time
import wave
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wavenet import mulaw
from wavenet.audio import to_pcm16
from wavenet.augment import AUGMENTATIONS, RecordingChain, noisy_history
from wavenet.checkpoint import load_checkpoint, recover_folder, save_checkpoint
from wavenet.data import MANIFEST, ClipSet, DataError
from wavenet.model import WaveNet, WaveNetConfig

TRAINER_STATE = "trainer.pt"
KEPT_CHECKPOINTS = "steps"  # with keep_checkpoints: the weights of every checkpoint, one folder each


PRECISIONS = ("float32", "bf16")
LOG_SECONDS = 30.0  # the longest the training curves go without a point
FLUSH_SECONDS = 30  # how often TensorBoard events reach the disk (the monitor reads them there)


@dataclass
class TrainSettings:
    batch_size: int = 0  # 0: chosen for the model (window_for)
    output_length: int = 0  # samples predicted per window; 0: chosen for the model (window_for)
    accumulate: int = 1  # micro-batches per optimizer step: a large batch's gradient within a small machine's memory
    lr: float = 1e-3
    min_lr_fraction: float = 0.05
    warmup_steps: int = 200
    grad_clip: float = 1.0
    max_steps: int = 0  # 0: no step limit (then --epochs or --time-budget must stop the run)
    epochs: float = 0.0
    time_budget: float = 0.0  # seconds of training; the LR schedule also follows it
    val_every: int = 500
    val_batches: int = 4
    checkpoint_every: int = 1000
    sample_seconds: float = 1.0
    seed: int = 0
    compile: str = "auto"  # auto: on CUDA only
    precision: str = PRECISIONS[0]  # bf16: forward and backward under bfloat16 autocast (weights, Adam and loss stay float)
    augment: str = AUGMENTATIONS[0]  # recording: random room, EQ, noise and level on some training crops
    augment_share: float = 0.5  # with augment="recording": the share of crops that go through a chain
    history_noise: float = 0.0  # μ-law classes: noise (std up to this, per crop) on the inputs, not the targets
    max_bad_steps: int = 20
    init_from: str = ""  # start from these weights (fresh optimizer, with warm-up)
    keep_optimizer: bool = False  # with init_from: also continue the Adam moments saved beside those weights
    keep_checkpoints: bool = False  # also keep every checkpoint's weights in steps/: takes differ from one to the next


STEP_POSITIONS = 80_000  # positions one default batch computes: about 3 GB of activations at 32 channels
VALIDATION_WINDOWS = 8  # at least: a batch of one long window would otherwise be validated at 4 places


def window_for(receptive_field: int, longest_window: int, output_length: int = 0) -> tuple[int, int]:
    """The default batch size and, unless given, window length for a model: each window predicts
    as many samples as its context holds (4,000 at least, fewer where the recordings are too
    short), and a batch computes about STEP_POSITIONS positions (one window at least). A large
    model's 65,532-sample context would otherwise take most of each step, and eight of its
    windows most of a small machine's memory."""
    output = output_length or max(1, min(max(4000, receptive_field), longest_window - receptive_field - 1))
    return max(1, STEP_POSITIONS // (receptive_field + output + 1)), output


def step_samples(settings: dict, processes: int) -> int:
    """Samples one optimizer step predicts, over its accumulated batches and processes (settings as
    in a run's run.json or a checkpoint's training summary)."""
    return (settings.get("batch_size", 0) * settings.get("output_length", 0) * settings.get("accumulate", 1)
            * processes)


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why."""


def pick_device(requested: str = "auto") -> torch.device:
    """`auto` (CUDA when present), `cpu`, `cuda` or `cuda:N`; a clear error for anything else."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ValueError(f"unknown device {requested!r}; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("no CUDA device is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {requested!r}; use auto, cpu or cuda")
    return device


def learning_rate(settings: TrainSettings, step: int, progress: float) -> float:
    """Linear warm-up, then cosine decay to min_lr_fraction over the run's progress (0..1)."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return settings.lr * (settings.min_lr_fraction + (1 - settings.min_lr_fraction) * cosine)


def next_sample_loss(model: torch.nn.Module, crops: torch.Tensor, receptive_field: int,
                     history: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy (nats) of predicting each sample of `crops` after a full receptive field,
    seeing `history` (a noisy copy of the crops, say) in their place when given."""
    logits = model((crops if history is None else history)[:, :-1], causal_pad=False).transpose(1, 2)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), crops[:, receptive_field + 1 :].reshape(-1).long())


RUN_LOCK = "in_use.pid"


def process_alive(pid: int) -> bool:
    """Whether `pid` is a live (not finished, not zombie) process; False where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def process_started(pid: int) -> float | None:
    """When `pid` started (seconds since the epoch), from /proc; None where that cannot be read."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def lock_holder(run: Path) -> int | None:
    """The training process holding `run` (its pid), or None. A lock left by a killed run names a
    pid that a later process may reuse: that one started after the lock was written."""
    lock = run / RUN_LOCK
    try:
        pid, written = int(lock.read_text()), lock.stat().st_mtime
    except (OSError, ValueError):
        return None
    started = process_started(pid)
    return pid if process_alive(pid) and (started is None or started <= written + 1.0) else None


def claim_run_folder(run: Path) -> None:
    """One training process per run folder: a second one (say, a restart while the stopped run
    still writes its last checkpoint) would mix its checkpoints and logs into the first's."""
    lock = run / RUN_LOCK
    holder = lock_holder(run)
    if holder is not None and holder != os.getpid():
        raise TrainingError(f"{run} is in use by training process {holder}: wait for it to end "
                            f"(or stop it), or choose another --run")
    run.mkdir(parents=True, exist_ok=True)
    lock.write_text(str(os.getpid()))


def autocast(precision: str, device: torch.device):
    """The context a training step's forward pass runs in: bfloat16 autocast for "bf16" (weights
    and the cross-entropy stay float32), plain float32 otherwise. Validation never uses it."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """PCM16 WAV through the standard library (training must not need soundfile)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(to_pcm16(audio).astype("<i2").tobytes())
    return buffer.getvalue()


class Trainer:
    def __init__(self, config: WaveNetConfig, data: Path, run: Path, settings: TrainSettings,
                 device: str = "auto", resume: bool = False, progress: bool = True):
        if settings.precision not in PRECISIONS:
            raise TrainingError(f"unknown precision {settings.precision!r}; use one of {', '.join(PRECISIONS)}")
        if settings.augment not in AUGMENTATIONS:
            raise TrainingError(f"unknown augmentation {settings.augment!r}; use one of {', '.join(AUGMENTATIONS)}")
        if not 0.0 < settings.augment_share <= 1.0:
            raise TrainingError("the augmentation share must be above 0 and at most 1")
        if settings.accumulate < 1:
            raise TrainingError("--accumulate counts micro-batches per step: 1 or more")
        if not 0.0 <= settings.history_noise < mulaw.CLASSES:
            raise TrainingError(f"history noise must be between 0 and {mulaw.CLASSES} μ-law classes")
        self.settings, self.run, self.progress = settings, Path(run), progress
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))  # processes training together (torchrun)
        self.distributed = self.world_size > 1
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = pick_device(device)
        if self.distributed:
            self._init_distributed()
        self.is_main = self.rank == 0
        if self.is_main:
            claim_run_folder(self.run)
        self.data_path = Path(data)
        self.train_set = ClipSet.load(self.data_path, "train", self.device)
        self.val_set = ClipSet.load(self.data_path, "val", self.device)
        if len(self.train_set) == 0:
            raise DataError(f"{data}: the training split is empty")
        self.manifest = json.loads((self.data_path / MANIFEST).read_text())

        last = recover_folder(self.run / "last")
        self.init_samples = None  # what the --init-from weights had heard, for the cards
        if resume and last is not None:
            model, info = load_checkpoint(last, self.device)
            config = model.config
            self.init_samples = (info.get("training") or {}).get("init_samples_seen")
        elif settings.init_from:
            model, info = load_checkpoint(settings.init_from, self.device)
            config = model.config
            before = info.get("training") or {}  # a run's card counts its own audio, after its init's
            self.init_samples = (before.get("samples_seen") or 0) + (before.get("init_samples_seen") or 0)
        else:
            if resume and self.is_main:
                print(f"nothing to resume in {self.run}; starting a new run")
            torch.manual_seed(settings.seed)
            model = WaveNet(config).to(self.device)
        if config.sample_rate != self.train_set.sample_rate:
            raise DataError(f"the model is for {config.sample_rate} Hz but {data} is {self.train_set.sample_rate} Hz")
        self.config, self.model = config, model.train()
        longest_window = min(split.longest_stretch for split in (self.train_set, self.val_set) if len(split))
        if config.receptive_field + 2 > longest_window:
            raise DataError(f"the longest unbroken recording in one of {data}'s splits has {longest_window} samples: "
                            f"too short for this model's receptive field ({config.receptive_field}) and a sample to "
                            "predict; add longer recordings or train a smaller model")
        batch_size, output_length = window_for(config.receptive_field, longest_window, settings.output_length)
        self.settings = settings = replace(settings, batch_size=settings.batch_size or batch_size,
                                           output_length=output_length)
        self.crop_length = config.receptive_field + settings.output_length + 1
        self.augmentation = (RecordingChain(config.sample_rate, probability=settings.augment_share)
                             if settings.augment == "recording" else None)
        if self.crop_length > longest_window:
            raise DataError(f"crops of {self.crop_length} samples (receptive field {config.receptive_field} + "
                            f"output {settings.output_length} + 1) do not fit in {data}: the longest unbroken "
                            f"recording in one of its splits has {longest_window}; lower --output-length")
        reachable = self.train_set.reachable_share(self.crop_length)
        if reachable < 0.9 and self.is_main:
            print(f"warning: windows of {self.crop_length} samples fit in recordings holding only {reachable:.0%} "
                  f"of {data}'s training clips; the rest is never trained on (a lower --output-length reaches more)")
        self.optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
        if settings.keep_optimizer and not (resume and last is not None):
            self._continue_optimizer(Path(settings.init_from))
        self.step, self.samples_seen, self.elapsed, self.best_val = 0, 0, 0.0, math.inf
        self.bad_steps = 0
        self.generator = torch.Generator().manual_seed(settings.seed * 1000 + self.rank)
        if resume and last is not None:
            self._load_trainer_state(last)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
        self.compiled = settings.compile == "on" or (settings.compile == "auto" and self.device.type == "cuda")
        self.replicated = None  # the DistributedDataParallel module, when there is one
        self.forward_model = self._wrap(model)
        self.writer = None
        if self.is_main:
            self.run.mkdir(parents=True, exist_ok=True)
            (self.run / "run.json").write_text(json.dumps({"settings": asdict(settings), "model": config.to_dict(),
                                                           "data": str(data), "processes": self.world_size},
                                                          indent=1))

    # ------------------------------------------------------------ set-up helpers

    def _init_distributed(self) -> None:
        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.device.type == "cuda":
            self.device = torch.device("cuda", local_rank)
            torch.cuda.set_device(self.device)
        dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    def _wrap(self, model: WaveNet) -> torch.nn.Module:
        wrapped: torch.nn.Module = model
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            wrapped = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            self.replicated = wrapped
        if self.compiled:
            wrapped = torch.compile(wrapped)
        return wrapped

    def _continue_optimizer(self, folder: Path) -> None:
        """Adam's moments from the run that made the --init-from weights, so that a stage continues that
        run's optimizer (a GPU lease's second call, a CPU stage after a lease) rather than re-estimating
        them from its first few batches. Only the moments: step count, clock and data order start anew."""
        if not self.settings.init_from:
            raise TrainingError("--keep-optimizer continues the optimizer of the --init-from weights: give --init-from")
        state_file = folder / TRAINER_STATE
        if not state_file.exists():
            raise TrainingError(f"{folder} has no {TRAINER_STATE} (optimizer state is not committed with shipped "
                                f"weights; a run's last/ or a GPU lease's folder has one): drop --keep-optimizer to "
                                f"start a fresh Adam")
        try:
            self.optimizer.load_state_dict(torch.load(state_file, map_location="cpu", weights_only=True)["optimizer"])
            moments = [self.optimizer.state[p]["exp_avg"].shape == p.shape for p in self.model.parameters()]
        except (KeyError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
            raise TrainingError(f"{state_file} does not hold an optimizer for these weights ({error})") from None
        if not all(moments):
            raise TrainingError(f"{state_file} holds an optimizer for weights of other shapes than {folder}'s")

    def _load_trainer_state(self, folder: Path) -> None:
        state = torch.load(folder / TRAINER_STATE, map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.samples_seen = state["step"], state["samples_seen"]
        self.elapsed, self.best_val = state["elapsed"], state["best_val"]
        generators = state["generators"]
        self.generator.set_state(generators[min(self.rank, len(generators) - 1)])
        torch.set_rng_state(state["torch_rng"])
        if self.is_main:
            print(f"resumed {self.run} at step {self.step} ({self.samples_seen / 3.6e3 / self.config.sample_rate:.2f} h of audio seen)")

    # ------------------------------------------------------------ the loop

    @property
    def hours_seen(self) -> float:
        return self.samples_seen / self.config.sample_rate / 3600

    def total_steps(self) -> int:
        s = self.settings
        if s.max_steps:
            return s.max_steps
        if s.epochs:
            return max(1, int(s.epochs * self.train_set.clips.numel() / self.samples_per_step()))
        return 0

    def samples_per_step(self) -> int:
        return step_samples(asdict(self.settings), self.world_size)

    def progress_fraction(self) -> float:
        total = self.total_steps()
        fractions = [self.step / total] if total else []
        if self.settings.time_budget:
            fractions.append(self.elapsed / self.settings.time_budget)
        return max(fractions) if fractions else 0.0

    def done(self) -> bool:
        total = self.total_steps()
        return (bool(total) and self.step >= total) or (bool(self.settings.time_budget)
                                                         and self.elapsed >= self.settings.time_budget)

    def train(self) -> dict:
        from tqdm import tqdm

        s = self.settings
        if not (self.total_steps() or s.time_budget):
            raise TrainingError("give --max-steps, --epochs or --time-budget so the run knows when to stop")
        if self.is_main:
            self._open_writer()
        total = self.total_steps()
        bar = tqdm(total=total or None, initial=self.step, disable=not (self.progress and self.is_main),
                   unit="step", dynamic_ncols=True)
        window_start, window_samples, loss = time.perf_counter(), 0, math.nan
        stop, restore_signal = self._stop_on_sigterm()
        while not self.done() and not stop.is_set():
            started = time.perf_counter()
            if self.distributed and s.time_budget:
                self._agree_on_elapsed()
            lr = learning_rate(s, self.step, self.progress_fraction())
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            loss = self._optimise()
            self.step += 1
            batch_samples = self.samples_per_step()
            self.samples_seen += batch_samples
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.elapsed += time.perf_counter() - started
            window_samples += batch_samples
            if self.step == 1 and self.is_main:
                print(f"first step took {time.perf_counter() - started:.1f} s (compile: {self.compiled})", flush=True)
            # Every 20 steps, and at least every LOG_SECONDS: accumulated CPU steps take ~13 s each.
            if self.is_main and (self.step % 20 == 0 or self.step == 1
                                 or time.perf_counter() - window_start >= LOG_SECONDS):
                rate = window_samples / max(1e-9, time.perf_counter() - window_start)
                window_start, window_samples = time.perf_counter(), 0
                self._log_scalars({"loss/train": loss, "lr": lr, "samples_per_s": rate,
                                   "audio_hours_seen": self.hours_seen, "elapsed_seconds": self.elapsed})
                status = f"loss {loss:.3f} | {rate / 1e3:.1f}k samples/s | {self.hours_seen:.2f} h seen" + self._eta(rate)
                bar.set_postfix_str(status)
                if bar.disable and self.step % 200 == 0:
                    print(f"step {self.step} | {status}", flush=True)
            bar.update(1)
            checkpoint_now = self.step % s.checkpoint_every == 0 or self.done() or stop.is_set()
            if self.step % s.val_every == 0 or checkpoint_now:
                val = self.validate()
                if self.is_main and val is not None:
                    self._log_scalars({"loss/val": val, "bits/val": val / math.log(2)})
                if checkpoint_now:
                    self.save(loss, val)
        bar.close()
        restore_signal()
        summary = self.summary(loss)
        summary["stopped_early"] = stop.is_set()
        if self.writer:
            self.writer.close()
        if self.is_main:
            (self.run / RUN_LOCK).unlink(missing_ok=True)
        if self.distributed:
            import torch.distributed as dist

            summary["replica_difference"] = self._replica_difference()
            dist.barrier()  # no replica tears the group down while another is still in a collective
            dist.destroy_process_group()
        return summary

    def _stop_on_sigterm(self):
        """SIGTERM (the studio's Stop, `kill`) ends the run after the current step, with a checkpoint;
        `--resume` continues it. Only a single process in its main thread takes the signal.
        Returns the stop event and a function that puts the previous handler back."""
        stop = threading.Event()
        if self.distributed or threading.current_thread() is not threading.main_thread():
            return stop, lambda: None
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        return stop, lambda: signal.signal(signal.SIGTERM, previous)

    def _replica_difference(self) -> float:
        """Largest difference between any replica's weights and rank 0's (0.0 when DDP kept them in sync)."""
        import torch.distributed as dist

        flat = torch.cat([p.detach().flatten() for p in self.model.parameters()])
        reference = flat.clone()
        dist.broadcast(reference, src=0)
        difference = (flat - reference).abs().max()
        dist.all_reduce(difference, op=dist.ReduceOp.MAX)
        return float(difference.item())

    def _agree_on_elapsed(self) -> None:
        """Replicas stop on the same step: they share the slowest replica's clock."""
        import torch.distributed as dist

        clock = torch.tensor([self.elapsed], dtype=torch.float64, device=self.device)
        dist.all_reduce(clock, op=dist.ReduceOp.MAX)
        self.elapsed = float(clock.item())

    def _eta(self, rate: float) -> str:
        s = self.settings
        remaining = []
        if self.total_steps():
            remaining.append((self.total_steps() - self.step) * self.samples_per_step() / max(rate, 1e-9))
        if s.time_budget:
            remaining.append(s.time_budget - self.elapsed)
        return f" | ETA {min(remaining) / 60:.1f} min" if remaining else ""

    def _training_crops(self) -> torch.Tensor:
        """The next batch of μ-law crops, run through random recording chains when augmenting."""
        if self.augmentation is None:
            return self.train_set.random_crops(self.settings.batch_size, self.crop_length, self.generator)
        crops = self.train_set.random_crops(self.settings.batch_size, self.crop_length, self.generator,
                                            history=self.augmentation.head)
        return self.augmentation.apply(crops, self.generator)

    def _loss(self, crops: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        with autocast(self.settings.precision, self.device):
            return next_sample_loss(self.forward_model, crops, self.config.receptive_field, history)

    def _accumulate_gradients(self) -> float:
        """Gradients of the mean loss over `accumulate` fresh micro-batches; returns that loss.
        Replicas average their summed gradients once, on the last micro-batch."""
        self.optimizer.zero_grad(set_to_none=True)
        parts, total = self.settings.accumulate, 0.0
        for part in range(parts):
            crops = self._training_crops()
            holding_back = self.replicated is not None and part < parts - 1
            with self.replicated.no_sync() if holding_back else contextlib.nullcontext():
                loss = self._loss(crops, noisy_history(crops, self.settings.history_noise, self.generator)) / parts
                loss.backward()
            total += loss.item()
        return total

    def _optimise(self) -> float:
        """One Adam step; a non-finite loss or gradient skips the step instead of poisoning the weights."""
        try:
            value = self._accumulate_gradients()
        except Exception as error:  # noqa: BLE001 - a torch.compile failure must not end the run
            if not self.compiled:
                raise
            print(f"torch.compile failed ({type(error).__name__}: {str(error)[:300]}); training in eager mode")
            self.compiled = False
            self.forward_model = self._wrap(self.model)
            value = self._accumulate_gradients()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        if not (math.isfinite(value) and torch.isfinite(norm)):
            self.bad_steps += 1
            if self.is_main:
                print(f"step {self.step}: non-finite loss or gradient, step skipped ({self.bad_steps} in a row)")
            if self.bad_steps >= self.settings.max_bad_steps:
                raise TrainingError(f"{self.bad_steps} non-finite steps in a row; lower --lr or check the data")
            return value
        self.bad_steps = 0
        self.optimizer.step()
        return value

    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean next-sample cross-entropy on fixed validation crops (nats/sample)."""
        data = self.val_set if len(self.val_set) else None
        if data is None:
            return None
        generator = torch.Generator().manual_seed(12345)
        batches = max(self.settings.val_batches, math.ceil(VALIDATION_WINDOWS / self.settings.batch_size))
        self.model.eval()
        losses = [next_sample_loss(self.model, data.random_crops(self.settings.batch_size, self.crop_length, generator),
                                   self.config.receptive_field).item() for _ in range(batches)]
        self.model.train()
        return float(np.mean(losses))

    # ------------------------------------------------------------ checkpoints and logs

    def summary(self, loss: float) -> dict:
        summary = {"steps": self.step, "samples_seen": self.samples_seen, "audio_hours_seen": round(self.hours_seen, 4),
                   "train_loss": round(loss, 4) if math.isfinite(loss) else None,
                   "val_loss": round(self.best_val, 4) if math.isfinite(self.best_val) else None,
                   "val_bits_per_sample": round(self.best_val / math.log(2), 4) if math.isfinite(self.best_val) else None,
                   "wall_seconds": round(self.elapsed, 1), "device": torch.cuda.get_device_name(self.device)
                   if self.device.type == "cuda" else "cpu",
                   "batch_size": self.settings.batch_size, "accumulate": self.settings.accumulate,
                   "processes": self.world_size,
                   "output_length": self.settings.output_length,
                   "precision": self.settings.precision, "augment": self.settings.augment,
                   "augment_share": self.settings.augment_share if self.settings.augment == "recording" else 0.0,
                   "history_noise": self.settings.history_noise}
        if self.settings.init_from:
            summary |= {"init_from": self.settings.init_from, "init_samples_seen": self.init_samples,
                        "keep_optimizer": self.settings.keep_optimizer}
        return summary

    def save(self, loss: float, val: float | None) -> None:
        """Write last/ (and best/ when validation improved). Called on every rank: each
        replica's data-sampler state is gathered so a resumed run draws what it would have."""
        generators = [self.generator.get_state()]
        if self.distributed:
            import torch.distributed as dist

            generators = [None] * self.world_size
            dist.all_gather_object(generators, self.generator.get_state())
        if not self.is_main:
            return
        improved = val is not None and val < self.best_val
        if improved:
            self.best_val = val
        summary = self.summary(loss)
        summary["last_val_loss"] = round(val, 4) if val is not None else None
        data = self.manifest.get("description", "") or str(self.data_path)
        state = {"optimizer": self.optimizer.state_dict(), "step": self.step, "samples_seen": self.samples_seen,
                 "elapsed": self.elapsed, "best_val": self.best_val, "generators": generators,
                 "torch_rng": torch.get_rng_state()}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        save_checkpoint(self.run / "last", self.model, summary, data, extra_files={TRAINER_STATE: buffer.getvalue()})
        if improved or val is None:
            save_checkpoint(self.run / "best", self.model, summary, data)
        if self.settings.keep_checkpoints:
            save_checkpoint(self.run / KEPT_CHECKPOINTS / f"step{self.step:08d}", self.model, summary, data)
        self._log_sample()
        if self.writer:
            self.writer.flush()

    def _open_writer(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("tensorboard is not installed: no event logs are written")
            return
        self.writer = SummaryWriter(str(self.run / "tb"), purge_step=self.step + 1 if self.step else None,
                                    flush_secs=FLUSH_SECONDS)

    def _log_scalars(self, values: dict) -> None:
        if self.writer:
            for name, value in values.items():
                self.writer.add_scalar(name, value, self.step)

    def _log_sample(self) -> None:
        """A short unique generation at this checkpoint: WAV in samples/, audio and CQT in TensorBoard."""
        if self.settings.sample_seconds <= 0:
            return
        from wavenet.sampler import GenerationSettings, generate

        self.model.eval()
        audio = generate(self.model, GenerationSettings(seconds=self.settings.sample_seconds, seed=self.step))[0]
        self.model.train()
        rate = self.config.sample_rate
        folder = self.run / "samples"
        folder.mkdir(exist_ok=True)
        (folder / f"step{self.step:08d}.wav").write_bytes(wav_bytes(audio, rate))
        if self.writer:
            self.writer.add_audio("sample", torch.from_numpy(audio)[None], self.step, sample_rate=rate)
            image = cqt_image(audio, rate)
            if image is not None:
                (folder / f"step{self.step:08d}.png").write_bytes(image)
                from PIL import Image

                pixels = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
                self.writer.add_image("sample_cqt", pixels, self.step, dataformats="HWC")
            self.writer.flush()


def cqt_image(audio: np.ndarray, sample_rate: int) -> bytes | None:
    """A PNG of the sample's CQT, or None where librosa/matplotlib are missing (GPU machines)."""
    try:
        from wavenet.analysis import cqt_png
    except ImportError:
        return None
    try:
        return cqt_png(audio, sample_rate)
    except ImportError:
        return None

