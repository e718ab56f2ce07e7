"""The fused persistent GPU kernel, run in its CPU emulator (same source, same work split,
every thread block a CPU thread): its logits must equal the full forward pass."""
import shutil

import numpy as np
import pytest
import torch

from wavenet import fastpath, fused
from wavenet.model import PAPER_WIDTHS, WaveNet, WaveNetConfig
from wavenet.sampler import primed_state

from conftest import random_model, shares_of_the_likeliest

needs_compiler = pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler for the emulator")


def emulated(model: WaveNet, seed: int = 0, **layout) -> fused.FusedStream:
    executor = fused.Emulator()
    chosen = fused.plan(model.config, executor.shared_bytes, executor.sms, **layout)
    return fused.FusedStream(model, fastpath.pack_weights(model), seed, executor, chosen)


def full_logits(model: WaveNet, fed: np.ndarray) -> np.ndarray:
    """Logits [T, classes] of the full causal forward pass over the samples fed."""
    with torch.no_grad():
        return model(torch.from_numpy(fed.astype(np.int64))[None])[0].T.numpy()


@needs_compiler
@pytest.mark.parametrize("preset,layout", [
    ("small", {"per_block": 3, "workers": 4, "half_weights": False}),  # chain blocks cut across stacks
    ("small", {"per_block": 3, "workers": 4}),
    ("medium", {"per_block": 13, "workers": 2, "half_weights": False}),  # one stack per chain block
    ("large", {}),  # the layout an H100 would get
])
def test_fused_kernel_logits_equal_the_full_forward_at_every_step(preset, layout):
    config = WaveNetConfig.preset(preset, residual_channels=4, dilation_channels=4, skip_channels=8)
    model = random_model(config)
    engine = emulated(model, **layout)
    engine.start(np.array([100]))
    length = 2 ** (config.layers - 1) + 300  # past the largest dilation: every ring buffer wraps
    samples, logits = engine.sample_with_logits(length, 0.0)
    fed = np.concatenate([[100], samples[0, :-1]])
    assert np.abs(logits - full_logits(fused.as_computed(model, engine.plan), fed)).max() < 1e-4
    assert (samples[0] == logits.argmax(axis=1)).all()  # greedy picks the first maximum


@needs_compiler
def test_fused_kernel_continues_a_prime_like_the_full_forward_pass():
    config = WaveNetConfig(layers=5, stacks=2, residual_channels=8, dilation_channels=8, skip_channels=16)
    model = random_model(config, seed=1)
    prime = torch.randint(0, 256, (1, 90))
    engine = emulated(model, per_block=2, workers=4, half_weights=False)
    primed = primed_state(model, prime)
    engine.load_buffers(primed.buffers, primed.position)
    engine.start(prime[0, -1:].numpy())
    samples, logits = engine.sample_with_logits(200, 0.0)
    fed = np.concatenate([prime[0].numpy(), samples[0, :-1]])
    assert np.abs(logits - full_logits(model, fed)[89:]).max() < 1e-4


@needs_compiler
@pytest.mark.parametrize("half_weights", [False, True])
def test_fused_kernel_at_paper_widths_with_the_h100_layout_matches_the_full_forward(half_weights):
    config = WaveNetConfig(layers=4, stacks=2, **PAPER_WIDTHS)
    model = random_model(config)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.2)  # 1024-wide sums of N(0, 0.3) weights would make logits in the thousands
    engine = emulated(model, half_weights=half_weights)
    assert engine.plan.workers == 64 and engine.plan.per_block >= 2
    engine.start(np.array([7]))
    samples, logits = engine.sample_with_logits(40, 0.0)
    expected = full_logits(fused.as_computed(model, engine.plan), np.concatenate([[7], samples[0, :-1]]))
    assert np.abs(logits - expected).max() < 1e-4 * max(1.0, np.abs(expected).max())


@needs_compiler
def test_fused_sampling_is_reproducible_from_the_seed_and_split_into_chunks_freely(tiny_config):
    model = random_model(tiny_config)

    def take(seed: int, chunks: list[int]) -> np.ndarray:
        engine = emulated(model, seed=seed)
        engine.start(np.array([128]))
        return np.concatenate([engine.sample(n, 1.0) for n in chunks], axis=1)

    first = take(5, [300])
    assert (first == take(5, [100, 37, 163])).all()
    assert (first != take(6, [300])).any()
    assert len(np.unique(first)) > 10  # it samples, it does not just repeat the maximum


@needs_compiler
def test_fused_min_p_never_draws_a_sample_below_its_share_of_the_likeliest(tiny_config):
    model = random_model(tiny_config)

    def shares(min_p: float) -> np.ndarray:
        engine = emulated(model, seed=3, half_weights=False)
        engine.start(np.array([128]))
        return shares_of_the_likeliest(model, np.concatenate([[128], engine.sample(300, 1.0, min_p)[0]]))

    assert (shares(0.0) < 0.2).mean() > 0.05  # plain sampling does draw such unlikely samples
    assert shares(0.2).min() >= 0.2 - 1e-3


def test_plan_fits_paper_medium_on_one_h100_and_refuses_what_cannot_fit():
    medium = WaveNetConfig.preset("medium", **PAPER_WIDTHS)
    layout = fused.plan(medium)
    assert layout.blocks <= fused.H100_SMS and layout.per_block * layout.chains >= 65
    assert layout.shared_floats * 4 <= fused.H100_SHARED_BYTES
    assert layout.half_weights and layout.per_block >= 2 * fused.plan(medium, half_weights=False).per_block


def test_half_weights_change_the_logits_only_slightly(tiny_config):
    model = random_model(tiny_config)
    layout = fused.plan(tiny_config)
    fed = np.random.default_rng(0).integers(0, 256, 300)
    exact, rounded = full_logits(model, fed), full_logits(fused.as_computed(model, layout), fed)
    assert 0 < np.abs(exact - rounded).max() < 1e-2 * np.abs(exact).max()
    with pytest.raises(fused.FusedUnavailable, match="does not fit"):
        fused.plan(WaveNetConfig.preset("medium", **PAPER_WIDTHS), shared_bytes=48 * 1024)


def test_fused_kernel_is_not_offered_without_a_gpu():
    ok, why = fused.available(torch.device("cpu"))
    assert not ok and "CUDA" in why


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no CUDA compiler to check the device code")
def test_the_kernel_source_compiles_for_hopper_without_spilling(tmp_path):
    import subprocess

    source = tmp_path / "fused_step.cu"
    source.write_text(fused.KERNEL.read_text())
    result = subprocess.run(["nvcc", "-cubin", "-arch=sm_90", "-Xptxas", "-v", str(source), "-o",
                             str(tmp_path / "fused.cubin")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "0 bytes spill stores" in result.stderr
