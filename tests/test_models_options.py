"""Registry errors, weight files, fine-tuning split, CBAM facial kernels and L2 hook, profiling, `ferlab models`."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ferlab.cli.main import main
from ferlab.errors import ModelError
from ferlab.models import (
    create_model,
    list_models,
    load_weights,
    preprocess,
    set_backbone_trainable,
    split_backbone_head,
)
from ferlab.models.cbam import FACIAL_KERNEL_INTENTS, FACIAL_KERNEL_NAMES, facial_kernels
from ferlab.models.profile import count_params, mflops


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- registry errors ----
def test_unknown_name_lists_close_names():
    with pytest.raises(ModelError, match="vgg_fer"):
        create_model("vgg_fr")


def test_unknown_option_is_a_model_error():
    with pytest.raises(ModelError, match="no option widht.*dropout"):
        create_model("vgg_fer", widht=3)


@pytest.mark.parametrize(("kwargs", "reason"), [({"dropout": 2.0}, "dropout probability"),
                                               ({"input_size": "abc"}, "unsupported operand")])
def test_a_known_option_with_a_value_the_layers_refuse_is_a_model_error(kwargs, reason):
    with pytest.raises(ModelError, match=f"model 'simple_cnn' cannot be built with options .*{reason}"):
        create_model("simple_cnn", **kwargs)


def test_library_weights_refused_for_models_without_them():
    with pytest.raises(ModelError, match="no library weights"):
        create_model("simple_cnn", pretrained="imagenet")


@pytest.mark.parametrize("bad", [1, "7", 2.5, True])
def test_too_few_or_not_whole_classes(bad):
    with pytest.raises(ModelError, match="a whole number of at least 2 classes"):
        create_model("simple_cnn", num_classes=bad)


# ---- weight files ----
def test_mismatched_weights_file_is_one_line_model_error(tmp_path):
    path = tmp_path / "small.pt"
    torch.save(create_model("simple_cnn").state_dict(), path)
    with pytest.raises(ModelError, match="do not fit model 'vgg_fer'") as err:
        create_model("vgg_fer", pretrained=str(path))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("content", [b"not a torch file", None])
def test_unreadable_or_missing_weights_file(tmp_path, content):
    path = tmp_path / "w.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match="cannot read|not found"):
        create_model("simple_cnn", pretrained=str(path))


def test_checkpoint_dict_and_ddp_prefix_load(tmp_path):
    source = create_model("mini_xception", num_classes=4)
    path = tmp_path / "ckpt.pt"
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    torch.save({"format": "ferlab-checkpoint", "model_state": state, "epoch": 3}, path)
    loaded = create_model("mini_xception", num_classes=4, pretrained=str(path))
    assert torch.equal(loaded.classifier.weight, source.classifier.weight)


def test_other_head_size_keeps_fresh_head(tmp_path):
    source = create_model("simple_cnn", num_classes=7)
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    target = create_model("simple_cnn", num_classes=2, pretrained=str(path))
    assert torch.equal(target.features[0][0].weight, source.features[0][0].weight)
    assert target.classifier.weight.shape == (2, 128)


def test_library_file_loads_into_grayscale_backbone(tmp_path):
    """A torchvision ImageNet-layout file (1000 classes, RGB stem, no 'body.' prefix) fits resnet50 in_chans=1."""
    from torchvision.models import resnet50

    torch.manual_seed(0)
    library = resnet50(weights=None)
    path = tmp_path / "resnet50-imagenet.pth"
    torch.save(library.state_dict(), path)
    model = create_model("resnet50", num_classes=7, pretrained=str(path))
    assert torch.allclose(model.body.conv1.weight, library.conv1.weight.sum(dim=1, keepdim=True))
    assert torch.equal(model.body.layer4[2].conv3.weight, library.layer4[2].conv3.weight)
    # the gray image repeated 3x through the RGB stem == the gray image through the adapted stem
    gray = torch.rand(1, 1, 64, 64)
    assert torch.allclose(library.conv1(gray.expand(-1, 3, -1, -1)), model.body.conv1(gray), atol=1e-5)


def test_load_weights_returns_the_model(tmp_path):
    model = create_model("sequential_small")
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    assert load_weights(model, path) is model


# ---- backbones: channels, normalisation, fine-tuning ----
def test_backbone_rgb_config_uses_imagenet_stats_and_preprocess_repeats_gray():
    model = create_model("efficientnet_b0", in_chans=3).eval()
    cfg = model.ferlab_cfg
    assert cfg.input_size == (3, 48, 48) and cfg.mean == (0.485, 0.456, 0.406)
    x = preprocess(torch.randint(0, 256, (2, 48, 48), dtype=torch.uint8), cfg)
    assert x.shape == (2, 3, 48, 48)
    with torch.no_grad():
        assert model(x).shape == (2, 7)
    gray = create_model("efficientnet_b0").ferlab_cfg
    assert gray.input_size[0] == 1 and gray.mean == (pytest.approx(0.449, abs=1e-3),)


def test_split_backbone_head_and_freezing():
    model = create_model("resnet50")
    backbone, head = split_backbone_head(model)
    assert {id(p) for p in head} == {id(p) for p in model.body.fc.parameters()}
    assert len(backbone) + len(head) == len(list(model.parameters()))
    set_backbone_trainable(model, False)
    assert not any(p.requires_grad for p in backbone) and all(p.requires_grad for p in head)
    set_backbone_trainable(model, True)
    assert all(p.requires_grad for p in model.parameters())


# ---- cbam_resnet ----
def test_facial_kernels_named_zero_mean_and_loaded():
    model = create_model("cbam_resnet")
    weight = model.stem.facial.weight
    assert weight.shape[0] == len(FACIAL_KERNEL_NAMES) == len(set(FACIAL_KERNEL_NAMES))
    assert set(FACIAL_KERNEL_INTENTS) == set(FACIAL_KERNEL_NAMES)
    assert torch.equal(weight, facial_kernels(1)) and weight.requires_grad
    assert torch.allclose(weight.mean(dim=(1, 2, 3)), torch.zeros(len(weight)), atol=1e-6)
    assert model.get_submodule(model.ferlab_cfg.first_conv) is model.stem.facial


def test_frozen_facial_kernels_stay_fixed_after_a_step_and_unfreeze():
    torch.manual_seed(0)
    model = create_model("cbam_resnet", freeze_facial_kernels=True).train()
    facial, learned = model.stem.facial.weight.clone(), model.stem.learned.weight.clone()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    x, y = torch.randn(4, 1, 48, 48), torch.tensor([0, 1, 2, 3])
    (nn.functional.cross_entropy(model(x), y) + model.regularization_loss()).backward()
    opt.step()
    assert torch.equal(model.stem.facial.weight, facial)
    assert not torch.equal(model.stem.learned.weight, learned)
    set_backbone_trainable(model, False)
    set_backbone_trainable(model, True)  # the fine-tuning phase switch must not unfreeze designed-frozen filters
    assert not model.stem.facial.weight.requires_grad and model.stem.learned.weight.requires_grad


def test_regularization_loss_is_l2_of_trainable_conv_weights():
    model = create_model("cbam_resnet", l2=0.01)
    convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    expected = 0.01 * sum(float(w.detach().pow(2).sum()) for w in convs)
    assert model.regularization_loss().item() == pytest.approx(expected, rel=1e-5)
    assert create_model("cbam_resnet", l2=0.0).regularization_loss().item() == 0.0


# ---- profiling ----
def test_mflops_counts_two_flops_per_multiply_add():
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)  # 4*4 outputs x 2 maps x 9 MACs = 288 MACs
    assert mflops(conv, (1, 4, 4)) == pytest.approx(2 * 288 / 1e6)
    assert count_params(conv) == 18
    conv.weight.requires_grad_(False)
    assert count_params(conv, trainable_only=True) == 0


# ---- CLI ----
def test_models_command_json(capsys):
    assert main(["models", "simple*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list_models("simple*")
    for r in rows:
        assert set(r) == {"name", "family", "params", "mflops", "input_size", "description"}
        assert r["params"] == count_params(create_model(r["name"])) and r["mflops"] > 0


def test_models_command_lists_classical_baselines(capsys):
    """hog_svm/landmark_svm are trainable by name, so the zoo lists them (size unknown until fitted)."""
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"hog_svm", "landmark_svm"} <= set(rows) and set(list_models()) <= set(rows)
    assert rows["hog_svm"]["family"] == "classical" and rows["hog_svm"]["params"] is None
    assert rows["hog_svm"]["mflops"] is None and rows["hog_svm"]["description"].startswith("HOG")
    assert main(["models", "*svm"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in table[1:]] == ["hog_svm", "landmark_svm"]
    assert table[1].split()[2:4] == ["-", "-"]


def test_models_command_table_and_error(capsys):
    assert main(["models", "mini_xception"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["name", "family", "params"] and out[1].startswith("mini_xception")
    assert main(["models", "no_such_*"]) == 2
    assert "ferlab: error: no model matches" in capsys.readouterr().err


def _kernel_response(image: torch.Tensor) -> dict[str, float]:
    """Each facial filter's response at the centre of a 15x15 pattern (1 = skin, 0 = dark)."""
    out = nn.functional.conv2d(image[None, None], facial_kernels(1), padding=3)[0, :, 7, 7]
    return dict(zip(FACIAL_KERNEL_NAMES, out.tolist(), strict=True))


def test_facial_kernels_respond_to_what_they_are_named_after():
    yy, xx = torch.meshgrid(torch.arange(15.0), torch.arange(15.0), indexing="ij")
    brow = _kernel_response((yy >= 7).float())  # dark band above skin
    side = _kernel_response((xx >= 7).float())  # vertical edge
    pupil = _kernel_response(1 - ((yy - 7) ** 2 + (xx - 7) ** 2 <= 2).float())
    lips = _kernel_response(1 - ((yy - 7).abs() <= 1).float())
    furrow = _kernel_response(1 - ((xx - 7).abs() <= 0).float())
    chin = _kernel_response((yy < 7).float())  # skin above, dark below
    assert brow["brow_edge"] > 1 and abs(side["brow_edge"]) < 0.1
    assert side["nose_bridge"] > 1 and abs(brow["nose_bridge"]) < 0.1
    assert pupil["eye_blob"] > 1 and pupil["eye_socket"] > 1
    assert lips["mouth_line"] > 1 and lips["mouth_line"] > pupil["mouth_line"]
    assert furrow["brow_furrow"] > 0.5 and furrow["brow_furrow"] > abs(lips["brow_furrow"])
    assert chin["jaw_curve"] > 1


def test_failed_library_download_is_a_model_error():
    from urllib.error import URLError

    from ferlab.models.backbones import _download

    def offline():
        raise URLError("no route to host")

    with pytest.raises(ModelError, match="cannot download .*offline.*local weights file"):
        _download(offline, "torchvision ResNet-50 weights")
