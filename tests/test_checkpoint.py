import json

import pytest
import torch
from torch import nn

from wavenet.checkpoint import CheckpointError, import_reference, load_checkpoint, save_checkpoint
from wavenet.cli import main
from wavenet.model import WaveNet
from wavenet.reference import ReferenceWaveNet


def test_a_saved_checkpoint_loads_with_identical_weights_and_its_summary(tmp_path, tiny_config):
    model = WaveNet(tiny_config)
    save_checkpoint(tmp_path / "ck", model, {"steps": 12, "val_loss": 3.2}, data="unit test", licence="CC0")
    loaded, info = load_checkpoint(tmp_path / "ck")
    assert loaded.config == tiny_config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert info["training"]["steps"] == 12 and info["licence"] == "CC0" and info["created"]


def test_truncated_corrupt_missing_and_mismatched_checkpoints_give_clear_errors(tmp_path, tiny_config):
    folder = save_checkpoint(tmp_path / "ck", WaveNet(tiny_config))
    weights = folder / "model.safetensors"
    content = weights.read_bytes()
    weights.write_bytes(content[: len(content) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(folder)
    weights.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(folder)
    weights.write_bytes(content)
    info = json.loads((folder / "config.json").read_text())
    info["model"]["skip_channels"] = 32
    (folder / "config.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(folder)
    (folder / "config.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nowhere")


def test_import_seed_converts_a_reference_checkpoint_to_the_same_logits(tmp_path):
    torch.manual_seed(1)
    reference = ReferenceWaveNet(layers=3, stacks=2, residual=6, dilation=5, skip=7).eval()
    for p in reference.parameters():
        nn.init.normal_(p, std=0.3)
    pth = tmp_path / "model.pth"
    torch.save({"epoch": 3, "model_state_dict": reference.state_dict()}, pth)
    assert main(["import-seed", str(pth), str(tmp_path / "imported"), "--layers", "3", "--stacks", "2"]) == 0
    model, _ = load_checkpoint(tmp_path / "imported")
    x = torch.randint(0, 256, (2, 64))
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-4)


def test_import_seed_defaults_to_the_reference_size_and_rejects_other_files(tmp_path):
    torch.save({"model_state_dict": ReferenceWaveNet(13, 5, 2, 2, 2).state_dict()}, tmp_path / "ref.pth")
    folder = import_reference(tmp_path / "ref.pth", tmp_path / "out")
    model, _ = load_checkpoint(folder)
    assert (model.config.layers, model.config.stacks) == (13, 5)
    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no reference WaveNet weights"):
        import_reference(tmp_path / "other.pth", tmp_path / "x")
    (tmp_path / "junk.pth").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="not a readable"):
        import_reference(tmp_path / "junk.pth", tmp_path / "y")
