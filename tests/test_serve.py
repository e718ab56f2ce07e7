"""The Gradio app and API, called over HTTP with gradio_client."""
import socket

import numpy as np
import pytest
import soundfile as sf
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import tone
from wavenet.checkpoint import save_checkpoint
from wavenet.model import WaveNet, WaveNetConfig
from wavenet.serve import Limits, build_app, provide_ffmpeg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ck") / "tiny"
    config = WaveNetConfig(layers=4, stacks=2, residual_channels=8, dilation_channels=8, skip_channels=16)
    save_checkpoint(folder, WaveNet(config))
    provide_ffmpeg()
    port = free_port()
    app = build_app(str(folder), Limits(max_seconds=5, max_variations=2))
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False), str(folder)
    app.close()


def take_of(result) -> np.ndarray:
    audio, rate = sf.read(result[1], dtype="int16")
    assert rate == 16000
    return audio


def test_generate_endpoint_returns_the_take_of_the_requested_length_and_seed(client):
    api, checkpoint = client
    first = take_of(api.predict(checkpoint, 0.5, 1.0, 7, -1, 1, api_name="/generate"))
    again = take_of(api.predict(checkpoint, 0.5, 1.0, 7, -1, 1, api_name="/generate"))
    other = take_of(api.predict(checkpoint, 0.5, 1.0, 8, -1, 1, api_name="/generate"))
    assert len(first) == 8000
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_min_p_comes_last_so_older_calls_still_work_and_it_changes_the_take(client):
    api, checkpoint = client
    plain = take_of(api.predict(checkpoint, 0.5, 1.0, 7, -1, 1, api_name="/generate"))
    explicit_off = take_of(api.predict(checkpoint, 0.5, 1.0, 7, -1, 1, 0.0, api_name="/generate"))
    result = api.predict(checkpoint, 0.5, 1.0, 7, -1, 1, 0.3, api_name="/generate")
    assert np.array_equal(plain, explicit_off)
    assert not np.array_equal(plain, take_of(result)) and "_minp0.3_" in result[1]


def test_generate_streams_chunks_before_the_take_is_done(client):
    api, checkpoint = client
    job = api.submit(checkpoint, 1.0, 1.0, 1, -1, 1, api_name="/generate")
    updates = list(job)
    assert len(updates) >= 4  # 4 chunks of 0.25 s, then the finished take
    assert job.result()[2].endswith(".png")


def test_continue_endpoint_continues_an_uploaded_clip(client, tmp_path):
    api, checkpoint = client
    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(2.0), 16000)
    result = api.predict(checkpoint, handle_file(str(clip)), 0.5, 1.5, 0.5, 1.0, 3, 1, api_name="/continue")
    assert len(take_of(result)) == 16000 + 8000  # the 1 s prime, then 0.5 s of continuation


@pytest.mark.parametrize("content, message", [(b"not audio at all", "not a readable audio file"),
                                              (b"", "is empty")])
def test_a_bad_upload_gets_a_clear_error(client, tmp_path, content, message):
    api, checkpoint = client
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    with pytest.raises(AppError, match=message):
        api.predict(checkpoint, handle_file(str(bad)), 0.0, 1.0, 0.5, 1.0, 0, 1, api_name="/continue")


def test_limits_are_enforced_by_the_server(client):
    api, checkpoint = client
    with pytest.raises(AppError, match="greater than maximum value 5|seconds must be in"):
        api.predict(checkpoint, 50.0, 1.0, 0, -1, 1, api_name="/generate")
    with pytest.raises(AppError, match="greater than maximum value 2|variations must be 1..2"):
        api.predict(checkpoint, 0.5, 1.0, 0, -1, 3, api_name="/generate")
    with pytest.raises(AppError, match="not in the list of choices|no checkpoint"):
        api.predict("no-such-model", 0.5, 1.0, 0, -1, 1, api_name="/generate")
