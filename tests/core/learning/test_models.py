"""Architectures, the one-channel adaptation, offline-safe weights, config and augmentation."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torchvision

from core.learning import models
from core.learning.config import RunConfig
from core.learning.models import ARCHITECTURES, build_model, weights_cache_path
from core.learning.training import augment_batch

torch.set_num_threads(1)
OFFLINE = "ImageNet weights unavailable (offline): resnet18 uses random initialisation"


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """No cached weights and no network: what a fresh offline machine looks like."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("CERVIXSCOPE_OFFLINE", "1")
    return tmp_path / "hub"


@pytest.mark.parametrize("name", sorted(ARCHITECTURES), ids=str)
def test_every_architecture_maps_grey_crops_to_three_class_logits(name):
    model, warnings = build_model(RunConfig(model=name, weights="none"))
    assert warnings == []
    with torch.inference_mode():
        out = model(torch.rand(2, 1, 48, 48))
        emb = model.embed(torch.rand(2, 48, 48))
    assert out.shape == (2, 3)
    assert emb.shape == (2, model.feature_dim)
    assert model.info["model"] == name and model.info["weights_used"] == "random"


def test_the_torch_free_model_names_are_the_architectures():
    from core.learning.config import MODELS

    assert tuple(ARCHITECTURES) == MODELS


def test_summed_rgb_first_conv_equals_feeding_grey_as_three_channels():
    cfg = RunConfig(weights="none", normalize="none")
    torch.manual_seed(0)
    three, _ = build_model(cfg.replace(channel_policy="repeat"))
    torch.manual_seed(0)
    one, _ = build_model(cfg.replace(channel_policy="sum_rgb"))
    assert one.backbone.conv1.in_channels == 1 and three.backbone.conv1.in_channels == 3
    np.testing.assert_allclose(
        one.backbone.conv1.weight.detach().numpy(),
        three.backbone.conv1.weight.detach().sum(1, keepdim=True).numpy(),
    )
    x = torch.rand(3, 1, 40, 40)
    with torch.inference_mode():
        np.testing.assert_allclose(one.embed(x).numpy(), three.embed(x).numpy(), atol=1e-4)
    assert one.info["channel_policy"] == "sum_rgb" and one.info["first_conv_summed"] == "conv1"


def test_auto_weights_offline_warn_once_and_fall_back_quickly(empty_hub):
    start = time.perf_counter()
    model, warnings = build_model(RunConfig(weights="auto"))
    assert time.perf_counter() - start < 60  # never hangs (generous: shared CPU)
    assert warnings == [OFFLINE]
    assert model.info["weights_used"] == "random"


def test_the_offline_check_uses_its_own_socket_timeout_never_the_process_default(
    tmp_path, monkeypatch
):
    """A Streamlit server shares socket.setdefaulttimeout across threads: the probe must not set it."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("CERVIXSCOPE_OFFLINE", raising=False)
    calls = []

    def unreachable(address, timeout=None, *args, **kwargs):
        calls.append((address, timeout))
        raise OSError("network is unreachable")

    def forbidden(value):
        raise AssertionError(f"socket.setdefaulttimeout({value}) called")

    monkeypatch.setattr(models.socket, "create_connection", unreachable)
    monkeypatch.setattr(models.socket, "setdefaulttimeout", forbidden)
    model, warnings = build_model(RunConfig(weights="auto"))
    assert warnings == [OFFLINE] and model.info["weights_used"] == "random"
    host = torchvision.models.ResNet18_Weights.DEFAULT.url.split("/")[2]
    assert calls == [((host, 443), models.PROBE_TIMEOUT_S)]


def test_the_offline_switch_answers_without_any_connection(monkeypatch):
    monkeypatch.setenv("CERVIXSCOPE_OFFLINE", "1")

    def no_connection(*args, **kwargs):
        raise AssertionError("tried to connect")

    monkeypatch.setattr(models.socket, "create_connection", no_connection)
    assert models.weights_server_reachable("https://download.pytorch.org/x.pth") is False


def test_imagenet_weights_offline_are_a_clear_error(empty_hub):
    with pytest.raises(ValueError, match=r"--weights imagenet: resnet18 weights are not in"):
        build_model(RunConfig(weights="imagenet"))
    with pytest.raises(ValueError, match=r"cnn has no ImageNet weights"):
        build_model(RunConfig(model="cnn", weights="imagenet"))


def test_cached_imagenet_weights_are_used_without_network(empty_hub):
    torch.manual_seed(5)
    reference = torchvision.models.resnet18(weights=None).state_dict()
    path = weights_cache_path("resnet18")
    assert str(path).startswith(str(empty_hub))
    path.parent.mkdir(parents=True)
    torch.save(reference, path)
    model, warnings = build_model(RunConfig(weights="auto"))
    assert warnings == [] and model.info["weights_used"] == "imagenet"
    torch.testing.assert_close(
        model.backbone.conv1.weight, reference["conv1.weight"].sum(1, keepdim=True)
    )
    torch.testing.assert_close(
        model.backbone.layer4[1].bn2.weight, reference["layer4.1.bn2.weight"]
    )


def test_weights_from_a_file_and_a_missing_file(tmp_path):
    torch.manual_seed(7)
    reference = torchvision.models.vgg16_bn(weights=None).state_dict()
    torch.save(reference, tmp_path / "vgg.pt")
    model, _ = build_model(RunConfig(model="vgg16_bn", weights=str(tmp_path / "vgg.pt")))
    torch.testing.assert_close(model.backbone.trunk[40].weight, reference["features.40.weight"])
    assert model.info["weights_used"] == str(tmp_path / "vgg.pt")
    with pytest.raises(ValueError, match=r"--weights /no/such.pt: no such file"):
        build_model(RunConfig(weights="/no/such.pt"))


def test_config_round_trips_and_rejects_bad_values():
    cfg = RunConfig(model="vgg16_bn", folds=[3, 0, 3], input_size=64, seed=4)
    assert cfg.folds == [0, 3]
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"RunConfig.model='resnet19': expected one of .*resnet18"):
        RunConfig(model="resnet19")
    with pytest.raises(ValueError, match=r"RunConfig.folds=\[10\]: expected fold numbers in 0..9"):
        RunConfig(folds=[10])
    with pytest.raises(ValueError, match=r"unknown RunConfig field\(s\) \['epoch'\]"):
        RunConfig.from_dict({"epoch": 3})


def test_augmentation_draws_its_own_parameters_for_every_image():
    x = torch.rand(1, 1, 24, 24).expand(8, 1, 24, 24).contiguous()
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    flat = out.flatten(1)
    distinct = {tuple(np.round(row.numpy(), 4)) for row in flat}
    assert len(distinct) == 8
    again = augment_batch(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again)


def test_embedding_cache_key_follows_the_weights_file_content(tmp_path):
    """A retrained weights file at the same path must not reuse the old file's embeddings."""
    from core.learning.features import embedding_key

    path = tmp_path / "weights.pt"
    cfg = RunConfig(model="cnn", weights=str(path))
    source, _ = build_model(cfg.replace(weights="none"))
    torch.save(source.backbone.state_dict(), path)
    first = embedding_key("data", build_model(cfg)[0], cfg)
    assert embedding_key("data", build_model(cfg)[0], cfg) == first  # same bytes, same key

    state = {
        k: v + 1 if v.is_floating_point() else v for k, v in source.backbone.state_dict().items()
    }
    torch.save(state, path)  # retrained in place
    assert embedding_key("data", build_model(cfg)[0], cfg) != first
