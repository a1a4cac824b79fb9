import math

import pytest
import torch

from asd_tools.config import load_config
from asd_tools.datasets.registry import DCASE2022
from asd_tools.models import build_model
from asd_tools.models.cnn import create_backbone
from asd_tools.models.frontend import FrontendConfig, MelFrontend
from asd_tools.models.sequence import SinusoidalPositions
from asd_tools.systems.serial_oe.config import SerialOEConfig
from asd_tools.systems.serial_oe.recipe import make_model
from tests.conftest import CONF

SECTIONS = DCASE2022.units("fan", "dev") + DCASE2022.units("fan", "eval")  # six sections


SMALL_FRONTEND = FrontendConfig(n_fft=1024, hop_length=512, n_mels=64)


@pytest.mark.parametrize(
    "name, params",
    [
        ("asd_model", dict(backbone="mobilenetv3_small_050", frontend=SMALL_FRONTEND)),
        (
            "asd_model",
            dict(backbone="resnet10t", pooling="gem", neck="option-D", domain_head=True, frontend=SMALL_FRONTEND),
        ),
        ("transformer", dict(num_layers=1, frontend=FrontendConfig(hop_length=512, n_mels=32))),
        ("conformer", dict(num_layers=1, frontend=FrontendConfig(hop_length=512, n_mels=32))),
    ],
)
def test_every_model_gives_the_same_outputs(name, params):
    torch.manual_seed(0)
    model = build_model(name, **params).eval()
    out = model(torch.randn(3, 32000))
    assert out["embedding"].shape == (3, 128)
    assert out["machine"].shape == (3,)
    assert out["section"].shape == (3, 6)
    assert ("domain" in out) == params.get("domain_head", False)
    # the machine logit is an affine function of the embedding's squared norm / 128
    norm = out["embedding"].pow(2).sum(1) / 128
    head = model.heads.machine_head
    assert torch.allclose(out["machine"], head.weight[0, 0] * norm + head.bias[0], atol=1e-5)


def test_cnn_input_is_the_original_mel_image():
    model = build_model("asd_model", backbone="mobilenetv3_small_050")
    spec = model.frontend(torch.randn(2, 32000))
    assert spec.shape == (2, 224, 126)  # 224 mel bands x 126 frames for 2 s, hop 256


def test_unknown_names_are_clear_errors():
    with pytest.raises(KeyError, match="unknown model 'cnn'"):
        build_model("cnn")
    with pytest.raises(ValueError, match="neck"):
        build_model("asd_model", backbone="mobilenetv3_small_050", neck="option-Z")


def test_old_backbone_name_is_accepted():
    backbone = create_backbone("tf_efficientnet_b0_ns")
    assert backbone.num_features == 1280


def test_pretrained_path_loads_local_weights(tmp_path):
    reference = create_backbone("mobilenetv3_small_050")
    path = tmp_path / "weights.pth"
    torch.save(reference.state_dict(), path)
    loaded = create_backbone("mobilenetv3_small_050", pretrained_path=path)
    for (k, a), b in zip(reference.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k


def test_pretrained_without_hub_names_the_offline_option(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="pretrained_path"):
        create_backbone("mobilenetv3_small_050", pretrained=True)


def test_positional_encoding_scale_on_known_inputs():
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]])  # (B=1, T=2, D=4)
    # pe[t, 2i] = sin(t / 10000^(2i/D)), pe[t, 2i+1] = cos(...): for D=4 the rates are 1 and 1/100
    pe = torch.tensor([[0.0, 1.0, 0.0, 1.0], [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)]])
    assert torch.allclose(SinusoidalPositions(4, "sqrt_d")(x), x * 2.0 + pe)  # the original: x * sqrt(d) + pe
    assert torch.allclose(SinusoidalPositions(4, "none")(x), x + pe)
    with pytest.raises(ValueError, match="pe_scale"):
        SinusoidalPositions(4, "sqrt")


@pytest.mark.parametrize("name", ["transformer", "conformer"])
@pytest.mark.parametrize("pe_scale, scale", [("sqrt_d", math.sqrt(32)), ("none", 1.0)])
def test_encoder_input_is_scaled_frames_plus_positions(name, pe_scale, scale):
    model = build_model(name, num_layers=1, pe_scale=pe_scale, frontend=FrontendConfig(hop_length=512, n_mels=32))
    wave = torch.randn(2, 32000)
    frames = model.frontend(wave).transpose(1, 2)  # (B, 63, 32)
    tokens = torch.cat([frames.mean(dim=1, keepdim=True), frames], dim=1)  # the mean "header" token first
    assert torch.allclose(model.tokens(wave), tokens * scale + model.positions.table[:64], rtol=1e-5, atol=1e-5)


def test_frontend_window_normalisation_switch():
    wave = torch.randn(2, 32000)
    raw = MelFrontend(FrontendConfig(normalized=False))(wave)
    normalised = MelFrontend(FrontendConfig())(wave)  # the default: window-normalised
    # torchaudio divides the STFT by the window's L2 norm: sqrt(sum hann^2) = sqrt(3 * 2048 / 8)
    assert torch.allclose(raw, normalised * math.sqrt(3 * 2048 / 8), rtol=1e-4, atol=1e-4)


SEQUENCE_CONFIGS = ["100", "101", "102", "103", "200", "201", "202", "203"]


@pytest.mark.parametrize("no", SEQUENCE_CONFIGS)
def test_sequence_configs_use_the_original_front_end_and_encoder(no):
    cfg = load_config(CONF / f"asd_model.{no}.yaml", SerialOEConfig)
    f = cfg.frontend
    assert (f.n_fft, f.hop_length, f.n_mels, f.f_min, f.f_max) == (2048, 512, 224, 0.0, 8000.0)
    assert not f.normalized and not f.log
    assert cfg.model.params["dropout"] == 0.0 and cfg.model.params["pe_scale"] == "sqrt_d"
    model = make_model(cfg, SECTIONS)
    assert model.positions.scale == pytest.approx(math.sqrt(224))
    assert all(m.p == 0.0 for m in model.encoder.modules() if isinstance(m, torch.nn.Dropout))
    assert not model.frontend.mel.spectrogram.normalized


@pytest.mark.parametrize("name", ["000", "001", "002", "003", "cpu", "tiny"])
def test_cnn_configs_keep_the_window_normalised_front_end(name):
    f = load_config(CONF / f"asd_model.{name}.yaml", SerialOEConfig).frontend
    assert f.normalized and f.f_min == 50.0 and f.f_max == 7800.0
