import os
import threading

import numpy as np
import pytest
import torch

from wavenet import fastpath, mulaw
from wavenet.model import WaveNetConfig
from wavenet.sampler import (GenerationSettings, StepWeights, empty_state, generate, open_stream, primed_state,
                             step, stream)

from conftest import random_model, shares_of_the_likeliest

needs_fast_step = pytest.mark.skipif(not fastpath.available()[0], reason="no C++ compiler")


def test_torch_step_logits_equal_the_full_forward_pass_at_every_step(tiny_config):
    model = random_model(tiny_config)
    x = torch.randint(0, 256, (2, 120))
    with torch.no_grad():
        full = model(x)
    weights, state = StepWeights.from_model(model), empty_state(model, 2)
    for t in range(120):
        assert torch.allclose(step(weights, state, x[:, t]), full[:, :, t], atol=1e-4)
    primed = primed_state(model, x[:, :70])
    for t in range(69, 120):
        assert torch.allclose(step(weights, primed, x[:, t]), full[:, :, t], atol=1e-4)


@needs_fast_step
@pytest.mark.parametrize("preset", ["small", "medium", "large"])
def test_compiled_step_equals_the_full_forward_across_stack_boundaries_and_after_priming(preset):
    config = WaveNetConfig.preset(preset, residual_channels=4, dilation_channels=4, skip_channels=8)
    model = random_model(config)
    length = 2 ** (config.layers - 1) + 600  # past the largest dilation, so every buffer wraps
    x = torch.randint(0, 256, (1, length))
    with torch.no_grad():
        full = model(x)[0].numpy()
    engine = fastpath.FastStream(model, fastpath.pack_weights(model), 1, 0)
    errors = [np.abs(engine.logits(x[:, t].numpy())[0] - full[:, t]).max() for t in range(length)]
    assert max(errors) < 1e-4
    cut = length - 300
    engine = fastpath.FastStream(model, fastpath.pack_weights(model), 1, 0)
    primed = primed_state(model, x[:, :cut])
    engine.load_buffers(primed.buffers, primed.position)
    errors = [np.abs(engine.logits(x[:, t].numpy())[0] - full[:, t]).max() for t in range(cut - 1, length)]
    assert max(errors) < 1e-4


@needs_fast_step
@pytest.mark.parametrize("skip_channels", [128, 256])
def test_compiled_step_at_the_shipped_widths_equals_the_full_forward(skip_channels):
    """The shipped widths have their own vectorised products: exact with float32 matrices, and
    with half matrices exactly what float32 gives on the weights rounded to half."""
    config = WaveNetConfig(layers=6, stacks=2, residual_channels=32, dilation_channels=32, skip_channels=skip_channels)
    model = random_model(config)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.3)  # 32-wide layers sum 32 terms: keep the activations out of saturation
    x = torch.randint(0, 256, (1, 300))
    with torch.no_grad():
        full = model(x)[0].numpy()

    def logits(weights: np.ndarray, half: bool) -> np.ndarray:
        engine = fastpath.FastStream(model, weights, 1, 0, half_weights=half)
        return np.stack([engine.logits(x[:, t].numpy())[0] for t in range(x.shape[1])], 1)

    weights = fastpath.pack_weights(model)
    assert np.abs(logits(weights, half=False) - full).max() < 1e-4
    if fastpath.reads_half_weights():
        rounded = weights.astype(np.float16).astype(np.float32)
        assert np.abs(logits(rounded, half=True) - logits(rounded, half=False)).max() < 1e-5
        assert np.abs(logits(weights, half=True) - logits(weights, half=False)).max() > 1e-4


@pytest.mark.skipif(not fastpath.reads_half_weights(), reason="half weights need an AVX-512 or AVX2+F16C build")
def test_half_precision_weights_cost_the_shipped_model_almost_nothing_on_the_real_clip(piano_clip):
    """The default CPU step reads IEEE-half matrices; bits/sample on real piano barely move."""
    from wavenet.audio import load_audio
    from wavenet.checkpoint import load_checkpoint

    model = load_checkpoint("piano-small")[0]
    audio = load_audio(piano_clip, model.config.sample_rate)
    x = mulaw.encode(audio[32000:32000 + model.config.receptive_field + 8000]).astype(np.int32)
    bits = {}
    for half in (False, True):
        engine = fastpath.FastStream(model, fastpath.pack_weights(model), 1, 0, half_weights=half)
        logits = torch.from_numpy(np.stack([engine.logits(x[t:t + 1])[0] for t in range(len(x) - 1)]))
        nll = -torch.log_softmax(logits, 1)[torch.arange(len(x) - 1), torch.from_numpy(x[1:]).long()]
        bits[half] = nll[-8000:].mean().item() / np.log(2)  # predictions that see a full receptive field
    assert abs(bits[True] - bits[False]) < 0.005
    assert fastpath.FastStream(model, fastpath.pack_weights(model), 1, 0).half_weights


@pytest.mark.parametrize("backend", ["torch", pytest.param("fast", marks=needs_fast_step)])
def test_the_same_seed_gives_bit_identical_audio_and_another_seed_does_not(tiny_config, backend):
    model = random_model(tiny_config)
    take = lambda seed: np.concatenate([c.audio for c in stream(model, GenerationSettings(0.02, seed=seed), backend=backend)], 1)
    assert np.array_equal(take(3), take(3))
    assert not np.array_equal(take(3), take(4))


@needs_fast_step
def test_greedy_and_fixed_first_sample_are_deterministic_and_variations_differ(tiny_config):
    model = random_model(tiny_config)
    a = generate(model, GenerationSettings(0.01, temperature=0, seed=1, first_sample=128))
    b = generate(model, GenerationSettings(0.01, temperature=0, seed=2, first_sample=128))
    assert np.array_equal(a, b)  # greedy ignores the seed
    several = generate(model, GenerationSettings(0.05, seed=9, variations=3))
    assert several.shape == (3, 800)
    assert not np.array_equal(several[0], several[1]) and not np.array_equal(several[1], several[2])


@needs_fast_step
def test_two_interleaved_streams_on_one_model_give_what_each_gives_alone(tiny_config):
    model = random_model(tiny_config)
    settings_a, settings_b = GenerationSettings(0.05, seed=1, chunk_samples=100), GenerationSettings(0.05, seed=2, chunk_samples=100)
    alone_a, alone_b = generate(model, settings_a), generate(model, settings_b)
    gen_a, gen_b = stream(model, settings_a), stream(model, settings_b)
    chunks_a, chunks_b = [], []
    for chunk_a, chunk_b in zip(gen_a, gen_b):
        chunks_a.append(chunk_a.audio)
        chunks_b.append(chunk_b.audio)
    assert np.array_equal(np.concatenate(chunks_a, 1), alone_a)
    assert np.array_equal(np.concatenate(chunks_b, 1), alone_b)


@needs_fast_step
def test_generations_in_worker_threads_share_one_model_and_stop_on_their_event(tiny_config):
    model = random_model(tiny_config)
    settings = [GenerationSettings(0.2, seed=s, chunk_samples=200) for s in range(3)]
    alone = [generate(model, s) for s in settings]
    results: dict[int, np.ndarray] = {}

    def work(i):
        results[i] = np.concatenate([c.audio for c in stream(model, settings[i])], 1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(np.array_equal(results[i], alone[i]) for i in range(3))

    cancel = threading.Event()
    received = []
    for chunk in stream(model, GenerationSettings(10.0, chunk_samples=200), cancel=cancel):
        received.append(chunk)
        if len(received) == 3:
            cancel.set()
    assert len(received) == 3 and received[-1].done == 600


def test_closing_the_iterator_cancels_and_a_prime_can_lead_the_take(tiny_config):
    model = random_model(tiny_config)
    generation = stream(model, GenerationSettings(100.0, chunk_samples=50))
    first = next(generation)
    generation.close()
    assert first.done == 50 and first.total == 1_600_000
    prime = np.sin(np.linspace(0, 60, 900)).astype(np.float32) * 0.5
    take = generate(model, GenerationSettings(0.01, include_prime=True), prime=prime)
    assert take.shape == (1, 900 + 160)
    assert np.array_equal(take[0, :900], mulaw.decode(mulaw.encode(prime)))


def test_impossible_settings_are_refused(tiny_config):
    model = random_model(tiny_config)
    with pytest.raises(ValueError, match="first sample"):
        next(stream(model, GenerationSettings(1.0, first_sample=300)))
    with pytest.raises(ValueError, match="positive"):
        next(stream(model, GenerationSettings(0.0)))
    with pytest.raises(ValueError, match="min-p"):
        next(stream(model, GenerationSettings(1.0, min_p=1.0)))


@pytest.mark.parametrize("backend", ["torch", pytest.param("fast", marks=needs_fast_step)])
def test_min_p_never_draws_a_sample_below_its_share_of_the_likeliest(tiny_config, backend):
    model = random_model(tiny_config)

    def shares(min_p: float) -> np.ndarray:
        engine = open_stream(model, 1, 3, backend)
        engine.start(np.array([128]))
        return shares_of_the_likeliest(model, np.concatenate([[128], engine.sample(400, 1.0, min_p)[0]]))

    assert (shares(0.0) < 0.2).mean() > 0.05  # plain sampling does draw such unlikely samples
    assert shares(0.2).min() >= 0.2 - 1e-3


@pytest.mark.parametrize("backend", ["torch", pytest.param("fast", marks=needs_fast_step)])
def test_a_long_prime_continues_exactly_as_the_full_forward_pass_predicts(tiny_config, backend):
    """Only the prime's last receptive field matters; greedy continuation = argmax of the full pass."""
    model = random_model(tiny_config)
    prime = np.sin(np.linspace(0, 300, 3000)).astype(np.float32) * 0.6
    take = generate(model, GenerationSettings(0.002, temperature=0, variations=2), prime=prime)  # 32 samples
    history = torch.from_numpy(mulaw.encode(prime).astype(np.int64))
    for value in mulaw.encode(take[0]):
        with torch.no_grad():
            expected = model(history[None])[0, :, -1].argmax().item()
        assert value == expected
        history = torch.cat([history, torch.tensor([expected])])
    assert np.array_equal(take[0], take[1])


def test_packing_for_the_compiled_step_leaves_the_model_where_it_is_and_follows_training(tiny_config):
    from wavenet.sampler import packed_weights

    model = random_model(tiny_config)
    before = packed_weights(model).copy()
    with torch.no_grad():
        model.end2.bias.add_(1.0)  # an in-place update, as an optimizer step does
    assert not np.array_equal(before, packed_weights(model))
    assert model.embed.weight.device.type == "cpu"


def _cpu_flags() -> set[str]:
    try:
        return {flag for line in open("/proc/cpuinfo") if line.startswith("flags") for flag in line.split()}
    except OSError:
        return set()


@pytest.mark.skipif(not {"avx512f", "avx2", "f16c", "fma"} <= _cpu_flags() or not fastpath.available()[0],
                    reason="needs an AVX-512 CPU (to build the AVX2 variant beside it) and a C++ compiler")
def test_the_avx2_build_of_the_compiled_step_passes_the_same_checks():
    """Laptops without AVX-512 get the 8-wide products: build them here with AVX-512 switched off."""
    import subprocess
    import sys

    compiler = fastpath.BUILD_DIR / "g++-no-avx512"  # a fixed path: its build is reused next time
    fastpath.BUILD_DIR.mkdir(parents=True, exist_ok=True)
    compiler.write_text('#!/bin/sh\nexec g++ "$@" -mno-avx512f\n')
    compiler.chmod(0o755)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                             "shipped_widths or half_precision_weights_cost"],
                            env={**os.environ, "CXX": str(compiler)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "3 passed" in result.stdout, result.stdout[-2000:]
