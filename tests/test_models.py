import pytest
import torch

from asd_tools.models import build_model
from asd_tools.models.asd_model import FrontendConfig, create_backbone

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
