"""The fused, persistent GPU step (wavenet/csrc/fused_step.cuh) for one stream (batch 1).

On a CUDA device the kernel is compiled at first use with NVRTC (shipped with PyTorch's CUDA
wheels, so no CUDA toolkit is needed) and launched through the driver API as a cooperative
kernel, so all its blocks are resident at once. Without a GPU the same source runs in the CPU
emulator (wavenet/csrc/fused_emulator.cpp, built with g++): that is how its correctness is
tested here. `FusedStream` has the interface of the other generation back-ends.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wavenet.fastpath import build_library
from wavenet.model import WaveNet, WaveNetConfig

CSRC = Path(__file__).resolve().parent / "csrc"
KERNEL = CSRC / "fused_step.cuh"
EMULATOR = CSRC / "fused_emulator.cpp"
THREADS = 256  # WN_NV in the kernel: threads per block
H100_SHARED_BYTES, H100_SMS = 227 * 1024, 132  # the emulator plans as for an H100


class FusedUnavailable(RuntimeError):
    """The fused kernel cannot run here (no GPU, no NVRTC, too little shared memory, ...)."""


@dataclass(frozen=True)
class Plan:
    """How the network is spread over thread blocks."""

    per_block: int  # residual layers per chain block
    chains: int  # chain blocks
    workers: int  # skip/head blocks
    shared_floats: int  # dynamic shared memory per block
    half_weights: bool  # chain blocks keep their matrices as IEEE half (biases and sums stay float)

    @property
    def blocks(self) -> int:
        return self.chains + self.workers


def chain_floats(config: WaveNetConfig, per_block: int, half_weights: bool) -> int:
    """Shared memory of a chain block in floats (the kernel's wn_chain_floats)."""
    r, d, c = config.residual_channels, config.dilation_channels, config.classes
    matrices = 5 * r * d
    layer = ((matrices + 1) // 2 if half_weights else matrices) + 2 * d + r
    return 2 * (2 * c + 2) + (c + 2) + 2 * c + per_block * (layer + 2 * r) + max(THREADS, 2 * d, r) + d


def worker_floats(config: WaveNetConfig, per_block: int, workers: int) -> int:
    """Shared memory of a worker block in floats (the kernel's wn_worker_floats)."""
    s, cs, co = config.skip_channels, config.skip_channels // workers, config.classes // workers
    return s * cs + cs + s * co + co + cs + max(cs, co) + s + per_block * config.dilation_channels + max(THREADS, cs, co)


def plan(config: WaveNetConfig, shared_bytes: int = H100_SHARED_BYTES, sms: int = H100_SMS,
         per_block: int | None = None, workers: int | None = None, half_weights: bool = True) -> Plan:
    """As many layers per chain block as fit in shared memory (fewer hand-overs per sample: the
    reason for half-precision matrices), and up to 64 worker blocks, all resident at once (one
    block per multiprocessor)."""
    layers, classes, skip = config.layers * config.stacks, config.classes, config.skip_channels
    if classes & (classes - 1):
        raise FusedUnavailable("the fused kernel needs a power-of-two number of classes")
    if workers is None:
        workers = 64
        while workers > 1 and (skip % workers or classes % workers):
            workers //= 2
    if skip % workers or classes % workers:
        raise FusedUnavailable(f"{workers} worker blocks do not divide {skip} skip channels and {classes} classes")
    limit = shared_bytes // 4
    candidates = [per_block] if per_block else range(layers, 0, -1)
    for count in candidates:
        chains = -(-layers // count)
        need = max(chain_floats(config, count, half_weights), worker_floats(config, count, workers))
        if need <= limit and chains + workers <= sms:
            return Plan(count, chains, workers, need, half_weights)
    raise FusedUnavailable(f"this model does not fit the fused kernel's layout in {sms} blocks of "
                           f"{shared_bytes // 1024} KiB shared memory")


@torch.no_grad()
def as_computed(model: WaveNet, layout: Plan) -> WaveNet:
    """The model the kernel computes with this layout: with half weights, a copy whose dilated and
    residual matrices are rounded to IEEE half (everything else, sums included, stays float)."""
    if not layout.half_weights:
        return model
    import copy

    rounded = copy.deepcopy(model)
    for layer in rounded.layers:
        for conv in (layer.dilated, layer.residual):
            if conv is not None:
                conv.weight.copy_(conv.weight.half().float())
    return rounded


class _Params(ctypes.Structure):
    """FusedParams in fused_step.cuh: every field 8 bytes."""

    _fields_ = [(name, ctypes.c_void_p) for name in (
        "weights", "weights_half", "ring_offset", "dilation", "state", "control", "out", "logits_out", "scratch", "flags")] + [
        (name, ctypes.c_int64) for name in (
            "L", "R", "D", "S", "C", "per_block", "chains", "workers", "n", "sample", "shared_floats")] + [
        ("temperature", ctypes.c_double), ("min_p", ctypes.c_double)]


# ---- executors: where the kernel runs ------------------------------------------------------

_lock = threading.Lock()
_emulator: ctypes.CDLL | None = None


def _emulator_library() -> ctypes.CDLL:
    global _emulator
    with _lock:
        if _emulator is None:
            flags = ["-O2", "-std=c++17", "-pthread", "-shared", "-fPIC", f"-I{CSRC}"]
            try:
                library = build_library("fused_emulator", EMULATOR, flags, headers=(KERNEL,))
            except (OSError, subprocess.CalledProcessError) as error:
                raise FusedUnavailable(f"the kernel emulator could not be built: {error}") from error
            library.wavenet_fused_emulate.restype = ctypes.c_int
            library.wavenet_fused_emulate.argtypes = [ctypes.POINTER(_Params), ctypes.c_int]
            _emulator = library
    return _emulator


class Emulator:
    """Runs the kernel on CPU threads (tests). Plans as for an H100 unless told otherwise."""

    device = torch.device("cpu")

    def __init__(self, shared_bytes: int = H100_SHARED_BYTES, sms: int = H100_SMS):
        self.shared_bytes, self.sms = shared_bytes, sms

    def launch(self, params: _Params, plan_: Plan) -> None:
        _emulator_library().wavenet_fused_emulate(ctypes.byref(params), plan_.blocks)


def _nvrtc() -> ctypes.CDLL:
    """NVRTC from PyTorch's CUDA wheels (nvidia-cuda-nvrtc), a CUDA toolkit, or the loader path."""
    names = []
    for root in sys.path:
        names += sorted(glob.glob(os.path.join(root, "nvidia", "**", "libnvrtc.so*"), recursive=True))
    names += sorted(glob.glob("/usr/local/cuda*/lib64/libnvrtc.so*"))
    found = ctypes.util.find_library("nvrtc")
    names += [found] if found else []
    for name in names:
        if "builtins" in name or "alt" in os.path.basename(name):
            continue
        try:
            for builtins in glob.glob(os.path.join(os.path.dirname(name), "libnvrtc-builtins.so*")):
                ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)  # NVRTC opens it by name at compile time
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise FusedUnavailable("NVRTC (libnvrtc) was not found: install PyTorch's CUDA build or a CUDA toolkit")


def compile_kernel(arch: str) -> bytes:
    """The kernel compiled by NVRTC to a cubin for `arch` (e.g. "sm_90"); needs no GPU."""
    nvrtc = _nvrtc()
    program = ctypes.c_void_p()
    source = KERNEL.read_bytes()

    def check(result: int, what: str) -> None:
        if result != 0:
            log = b""
            if program:
                size = ctypes.c_size_t()
                nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
                buffer = ctypes.create_string_buffer(size.value)
                nvrtc.nvrtcGetProgramLog(program, buffer)
                log = buffer.value
            raise FusedUnavailable(f"NVRTC {what} failed ({result}): {log.decode(errors='replace')[:2000]}")

    check(nvrtc.nvrtcCreateProgram(ctypes.byref(program), source, b"fused_step.cu", 0, None, None), "create")
    options = [f"--gpu-architecture={arch}".encode(), b"-std=c++17", b"-default-device"]
    check(nvrtc.nvrtcCompileProgram(program, len(options), (ctypes.c_char_p * len(options))(*options)), "compile")
    size = ctypes.c_size_t()
    check(nvrtc.nvrtcGetCUBINSize(program, ctypes.byref(size)), "cubin size")
    cubin = ctypes.create_string_buffer(size.value)
    check(nvrtc.nvrtcGetCUBIN(program, cubin), "cubin")
    nvrtc.nvrtcDestroyProgram(ctypes.byref(program))
    return cubin.raw


class CudaKernel:
    """The kernel loaded on one CUDA device through the driver API (libcuda, ctypes)."""

    _MAX_DYNAMIC_SHARED = 8  # CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    _SHARED_OPTIN, _SM_COUNT = 97, 16  # CU_DEVICE_ATTRIBUTE_...

    def __init__(self, device: torch.device):
        self.device = device
        torch.zeros(1, device=device)  # creates PyTorch's (primary) context
        try:
            self.cuda = ctypes.CDLL("libcuda.so.1")
        except OSError as error:
            raise FusedUnavailable(f"the CUDA driver library is missing: {error}") from error
        major, minor = torch.cuda.get_device_capability(device)
        cubin = compile_kernel(f"sm_{major}{minor}")
        self._current_context()
        self.module, self.function = ctypes.c_void_p(), ctypes.c_void_p()
        self._check(self.cuda.cuModuleLoadData(ctypes.byref(self.module), cubin), "load module")
        self._check(self.cuda.cuModuleGetFunction(ctypes.byref(self.function), self.module, b"wavenet_fused"),
                    "get function")
        self.shared_bytes = self._attribute(self._SHARED_OPTIN)
        self.sms = self._attribute(self._SM_COUNT)
        self.lock = threading.Lock()  # one persistent grid at a time owns the multiprocessors

    def _check(self, result: int, what: str) -> None:
        if result != 0:
            name = ctypes.c_char_p()
            self.cuda.cuGetErrorName(result, ctypes.byref(name))
            raise FusedUnavailable(f"CUDA {what} failed: {(name.value or b'?').decode()}")

    def _current_context(self) -> None:
        """Driver calls need a current context on this thread: PyTorch's primary one."""
        context = ctypes.c_void_p()
        self.cuda.cuCtxGetCurrent(ctypes.byref(context))
        if not context.value:
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            self._check(self.cuda.cuDevicePrimaryCtxRetain(ctypes.byref(context), index), "retain context")
            self._check(self.cuda.cuCtxSetCurrent(context), "set context")

    def _attribute(self, attribute: int) -> int:
        value = ctypes.c_int()
        index = self.device.index if self.device.index is not None else torch.cuda.current_device()
        self._check(self.cuda.cuDeviceGetAttribute(ctypes.byref(value), attribute, index), "device attribute")
        return value.value

    def launch(self, params: _Params, plan_: Plan) -> None:
        self._current_context()
        shared = plan_.shared_floats * 4
        self._check(self.cuda.cuFuncSetAttribute(self.function, self._MAX_DYNAMIC_SHARED, shared), "shared size")
        resident = ctypes.c_int()
        self._check(self.cuda.cuOccupancyMaxActiveBlocksPerMultiprocessor(
            ctypes.byref(resident), self.function, THREADS, ctypes.c_size_t(shared)), "occupancy")
        if resident.value * self.sms < plan_.blocks:
            raise FusedUnavailable(f"{plan_.blocks} blocks cannot all be resident on {self.sms} multiprocessors")
        stream = ctypes.c_void_p(torch.cuda.current_stream(self.device).cuda_stream)
        arguments = (ctypes.c_void_p * 1)(ctypes.addressof(params))
        with self.lock:
            self._check(self.cuda.cuLaunchCooperativeKernel(
                self.function, plan_.blocks, 1, 1, THREADS, 1, 1, shared, stream, arguments), "launch")
            torch.cuda.synchronize(self.device)


_kernels: dict[str, CudaKernel] = {}


def cuda_kernel(device: torch.device) -> CudaKernel:
    """The compiled kernel for a device, built once per process."""
    with _lock:
        if str(device) not in _kernels:
            _kernels[str(device)] = CudaKernel(device)
        return _kernels[str(device)]


def available(device: torch.device) -> tuple[bool, str]:
    if device.type != "cuda":
        return False, "the fused kernel runs on CUDA devices (and in the CPU emulator for tests)"
    try:
        cuda_kernel(device)
    except FusedUnavailable as error:
        return False, str(error)
    return True, "fused persistent CUDA kernel"


# ---- the stream ------------------------------------------------------------------------------

class FusedStream:
    """One generation (batch 1) on the fused kernel; the state lives on the kernel's device."""

    name = "fused"

    def __init__(self, model: WaveNet, weights: np.ndarray, seed: int, executor: Emulator | CudaKernel | None = None,
                 layout: Plan | None = None):
        config = model.config
        self.executor = executor or cuda_kernel(model.embed.weight.device)
        self.plan = layout or plan(config, self.executor.shared_bytes, self.executor.sms)
        device = self.executor.device
        self.config = config
        self.weights = torch.from_numpy(weights).to(device)
        self.weights_half = (torch.from_numpy(weights.astype(np.float16).view(np.int16)).to(device)
                             if self.plan.half_weights else None)
        dilations = np.array(config.dilations, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(dilations[:-1] * config.residual_channels)]).astype(np.int64)
        self.dilation = torch.from_numpy(dilations).to(device)
        self.ring_offset = torch.from_numpy(offsets).to(device)
        self.state = torch.zeros(int(dilations.sum()) * config.residual_channels, device=device)
        rng = np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0]  # as the CPU step
        self.control = torch.tensor([0, 0, int(rng.astype(np.int64)), 0], dtype=torch.int64, device=device)
        layers = config.layers * config.stacks
        r, d, s, c = config.residual_channels, config.dilation_channels, config.skip_channels, config.classes
        self.scratch = torch.zeros(self.plan.chains * r + layers * d + 2 * s + c, device=device)
        self.flags = torch.zeros(self.plan.chains + 3 * self.plan.workers, dtype=torch.int32, device=device)

    def load_buffers(self, buffers: list[torch.Tensor], position: int) -> None:
        """Take over ring buffers filled by the PyTorch priming pass ([1, R, d] per layer)."""
        flat = torch.cat([b[0].detach().T.reshape(-1) for b in buffers]).float()
        self.state.copy_(flat.to(self.state.device))
        self.control[0] = position

    def start(self, first: np.ndarray) -> None:
        self.control[1] = int(np.asarray(first).reshape(-1)[0])

    def _run(self, steps: int, sample: bool, temperature: float, min_p: float,
             logits: torch.Tensor | None) -> torch.Tensor:
        config, plan_ = self.config, self.plan
        out = torch.zeros(max(steps, 1), dtype=torch.uint8, device=self.state.device)
        self.flags.zero_()
        pointer = lambda t: t.data_ptr() if t is not None else None  # noqa: E731
        params = _Params(
            pointer(self.weights), pointer(self.weights_half), pointer(self.ring_offset), pointer(self.dilation), pointer(self.state),
            pointer(self.control), pointer(out), pointer(logits), pointer(self.scratch), pointer(self.flags),
            config.layers * config.stacks, config.residual_channels, config.dilation_channels,
            config.skip_channels, config.classes, plan_.per_block, plan_.chains, plan_.workers, steps,
            int(sample), plan_.shared_floats, float(temperature), float(min_p))
        self.executor.launch(params, plan_)
        if int(self.control[3]):
            raise FusedUnavailable(f"the fused kernel stopped with error {int(self.control[3])}")
        return out

    def logits(self, current: np.ndarray) -> np.ndarray:
        """Feed `current` [1] and return the logits [1, classes] for the next sample (oracle tests)."""
        self.start(current)
        logits = torch.zeros(1, self.config.classes, device=self.state.device)
        self._run(1, False, 0.0, 0.0, logits)
        return logits.cpu().numpy()

    def sample(self, count: int, temperature: float, min_p: float = 0.0) -> np.ndarray:
        """`count` new samples: uint8 [1, count]; the last one is fed next time."""
        if count <= 0:
            return np.zeros((1, 0), dtype=np.uint8)
        return self._run(count, True, temperature, min_p, None).cpu().numpy()[None, :count]

    def sample_with_logits(self, count: int, temperature: float, min_p: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """As `sample`, plus the logits [count, classes] each sample was drawn from (oracle tests)."""
        logits = torch.zeros(count, self.config.classes, device=self.state.device)
        samples = self._run(count, True, temperature, min_p, logits).cpu().numpy()[None, :count]
        return samples, logits.cpu().numpy()
