import librosa
import numpy as np

from wavenet import mulaw


def test_encode_equals_librosa_on_a_dense_sweep_including_the_edges():
    x = np.concatenate([np.linspace(-1, 1, 400001), [-1.0, 0.0, 1.0, 1e-9, -1e-9, 0.5]])
    ours = mulaw.encode(x).astype(int) - 128
    assert np.array_equal(ours, librosa.mu_compress(x, mu=255, quantize=True))
    assert mulaw.encode(np.array([-1.0, 1.0])).tolist() == [0, 255]


def test_decode_equals_librosa_for_every_class():
    classes = np.arange(256)
    expected = librosa.mu_expand(classes - 128, mu=255, quantize=True)
    assert np.allclose(mulaw.decode(classes), expected, atol=1e-6)


def test_round_trip_error_is_small_for_quiet_and_loud_signals():
    x = np.linspace(-1, 1, 10001)
    error = np.abs(mulaw.decode(mulaw.encode(x)) - x)
    assert error.max() < 0.05  # the top μ-law step is ~0.043
    quiet = np.linspace(-0.01, 0.01, 1001)
    assert np.abs(mulaw.decode(mulaw.encode(quiet)) - quiet).max() < 0.001


def test_class_edges_bound_what_each_class_holds():
    edges = mulaw.class_edges()
    assert np.isclose(edges[0], -1.0) and np.isclose(edges[-1], 1.0) and (np.diff(edges) > 0).all()
    inside = (edges[:-1] + edges[1:]) / 2  # a value between two edges is encoded as the upper edge's class
    assert np.array_equal(mulaw.encode(inside), np.arange(1, mulaw.CLASSES))
