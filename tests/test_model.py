import pytest
import torch

from wavenet.model import WaveNet, WaveNetConfig


@pytest.mark.parametrize("preset, field", [("small", 5115), ("medium", 40955), ("large", 65532)])
def test_presets_have_the_papers_receptive_fields(preset, field):
    config = WaveNetConfig.preset(preset)
    assert config.receptive_field == field
    assert len(config.dilations) == config.layers * config.stacks


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown preset"):
        WaveNetConfig.preset("huge")


@pytest.mark.parametrize("preset", ["small", "medium", "large"])
def test_changing_future_samples_leaves_all_earlier_logits_unchanged(preset):
    torch.manual_seed(0)
    config = WaveNetConfig.preset(preset, residual_channels=4, dilation_channels=4, skip_channels=8)
    model = WaveNet(config).eval()
    x = torch.randint(0, 256, (1, 300))
    cut = 170
    changed = x.clone()
    changed[:, cut:] = torch.randint(0, 256, (1, 300 - cut))
    with torch.no_grad():
        before, after = model(x), model(changed)
    assert torch.equal(before[:, :, :cut], after[:, :, :cut])
    assert not torch.allclose(before[:, :, cut:], after[:, :, cut:])


def test_unpadded_forward_gives_the_fully_informed_tail_of_the_padded_one(tiny_config):
    model = WaveNet(tiny_config).eval()
    x = torch.randint(0, 256, (2, 100))
    with torch.no_grad():
        padded, valid = model(x), model(x, causal_pad=False)
    assert valid.shape[2] == 100 - tiny_config.receptive_field
    assert torch.allclose(valid, padded[:, :, -valid.shape[2]:], atol=1e-6)


def test_unpadded_forward_on_less_than_a_receptive_field_is_a_clear_error(tiny_config):
    model = WaveNet(tiny_config).eval()
    with pytest.raises(ValueError, match="receptive field"):
        model(torch.randint(0, 256, (2, tiny_config.receptive_field)), causal_pad=False)


def test_widths_and_sample_rate_are_recorded_in_the_config():
    config = WaveNetConfig.preset("small", residual_channels=48, skip_channels=96, sample_rate=8000)
    again = WaveNetConfig.from_dict(config.to_dict())
    assert again == config and again.sample_rate == 8000 and again.residual_channels == 48
    assert config.receptive_field_ms == pytest.approx(5115 / 8)


def test_every_parameter_gets_its_own_gradient_so_clipping_scales_all_of_them_alike():
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig.preset("small", residual_channels=4, dilation_channels=4, skip_channels=8))
    x = torch.randint(0, 256, (2, model.config.receptive_field + 60))
    logits = model(x[:, :-1], causal_pad=False)
    torch.nn.functional.cross_entropy(logits, x[:, model.config.receptive_field + 1:].long()).backward()
    before = [p.grad.clone() for p in model.parameters()]
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1e-3)
    for name, old, parameter in zip([n for n, _ in model.named_parameters()], before, model.parameters()):
        torch.testing.assert_close(parameter.grad, old * (1e-3 / norm), msg=name)
