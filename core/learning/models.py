"""Network architectures: torchvision ResNets and VGG16-BN (ImageNet weights when available) and a
small CNN trained from scratch, each split into a backbone (image -> embedding) and a linear head.

Design choices recorded on every model (``Net.info``) and thus on every run:

- One-channel input: the grey crop is normalised with the ImageNet mean/std averaged over RGB and
  the first convolution's RGB filters are summed into one (fastai's approach). That equals feeding
  the grey image as R=G=B, at a third of the first layer's cost. ``channel_policy="repeat"`` keeps
  three input channels instead (per-channel ImageNet normalisation); both give the same features.
- Input size: crops go in at their native size (100x100) unless ``RunConfig.input_size`` asks for a
  bilinear resize. All backbones end in global average pooling so any size >= 32 works; VGG's
  4096-wide classifier (built for 7x7 maps at 224) is dropped, as timm's ``features`` split does.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import torch
import torchvision
from torch import nn

from core.data.labels import CLASSES

# ImageNet statistics; a grey image stands for R=G=B, so one channel uses their means.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GREY_MEAN = sum(IMAGENET_MEAN) / 3
GREY_STD = sum(IMAGENET_STD) / 3
PROBE_TIMEOUT_S = 3.0  # how long `--weights auto` waits to connect to the weights server


class SmallCNN(nn.Module):
    """The paper's "traditional CNN": four conv-BN-ReLU-pool blocks, global average pooling.

    Deliberately small (~0.1 M parameters, ~35 M multiply-adds at 100x100 with base width 16) so a
    short schedule of 10 folds trains on 2 CPU cores within the demo's time budget.
    """

    def __init__(self, in_channels: int = 1, widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        blocks = []
        for i, width in enumerate(widths):
            prev = in_channels if i == 0 else widths[i - 1]
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(prev, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2),
                )
            )
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(x)).flatten(1)


class _Pooled(nn.Module):
    """A convolutional trunk followed by global average pooling and flatten."""

    def __init__(self, trunk: nn.Module, out_dim: int):
        super().__init__()
        self.trunk = trunk
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.trunk(x)).flatten(1)


class Net(nn.Module):
    """Normalise -> (resize) -> backbone -> linear head. Input: (B, 1, H, W) floats in [0, 1]."""

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        *,
        in_channels: int,
        normalize: bool,
        input_size: int | None,
        n_classes: int = len(CLASSES),
    ):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, n_classes)
        self.feature_dim = feature_dim
        self.in_channels = in_channels
        self.input_size = input_size
        if in_channels == 1:
            mean, std = (GREY_MEAN,), (GREY_STD,)
        else:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        if not normalize:
            mean, std = (0.5,) * in_channels, (0.5,) * in_channels
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.info: dict = {}

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = nn.functional.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        if self.in_channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def _resnet(name: str) -> Callable[[], tuple[nn.Module, int, str, list[str]]]:
    def make() -> tuple[nn.Module, int, str, list[str]]:
        net = getattr(torchvision.models, name)(weights=None)
        dim = net.fc.in_features
        net.fc = nn.Identity()  # torchvision's avgpool + flatten stay: forward gives (B, dim)
        # Grad-CAM on layer3: layer4 is 4x4 at 100x100 input, layer3 is 7x7.
        return net, dim, "layer3", ["layer4."]

    return make


def _vgg16_bn() -> tuple[nn.Module, int, str, list[str]]:
    net = torchvision.models.vgg16_bn(weights=None)
    backbone = _Pooled(net.features, 512)
    # features[34:43] is the conv5 block; its last ReLU (42) is 6x6 at 100x100 input.
    last = [f"trunk.{i}." for i in range(34, 43)]
    return backbone, 512, "trunk.42", last


def _cnn(width: int = 16) -> tuple[nn.Module, int, str, list[str]]:
    net = SmallCNN(in_channels=1, widths=(width, 2 * width, 4 * width, 8 * width))
    return net, net.out_dim, "blocks.2", ["blocks.3."]


ARCHITECTURES: dict[str, Callable[[], tuple[nn.Module, int, str, list[str]]]] = {
    "resnet18": _resnet("resnet18"),
    "resnet34": _resnet("resnet34"),
    "resnet50": _resnet("resnet50"),
    "vgg16_bn": _vgg16_bn,
    "cnn": _cnn,
}
"""name -> factory returning (backbone, feature_dim, Grad-CAM layer name, last-block prefixes)."""

PRETRAINED = {"resnet18", "resnet34", "resnet50", "vgg16_bn"}


def _weights_enum(model: str):
    return torchvision.models.get_model_weights(model).DEFAULT  # ResNet-50: V2, others V1


def weights_cache_path(model: str) -> Path:
    """Where torchvision caches the ImageNet checkpoint of ``model`` (the torch hub cache)."""
    url = _weights_enum(model).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def weights_server_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` seconds.

    The timeout is this one socket's: the process-wide default (``socket.setdefaulttimeout``),
    which every thread of a Streamlit server shares, is never touched. ``CERVIXSCOPE_OFFLINE=1``
    answers False at once.
    """
    if os.environ.get("CERVIXSCOPE_OFFLINE"):
        return False
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _imagenet_state(model: str, *, required: bool) -> tuple[dict | None, str | None]:
    """ImageNet state_dict through torchvision's weights API: from the torch hub cache, else
    downloaded there when the server answers quickly; else (None, warning) or, if ``required``,
    an error."""
    weights = _weights_enum(model)
    path = weights_cache_path(model)
    if path.exists():
        return weights.get_state_dict(progress=False), None
    if not weights_server_reachable(weights.url):
        if required:
            raise ValueError(
                f"--weights imagenet: {model} weights are not in {path.parent} and "
                f"{weights.url} is unreachable; put the file there or use --weights auto|none"
            )
        return None, f"ImageNet weights unavailable (offline): {model} uses random initialisation"
    try:
        return weights.get_state_dict(progress=False), None
    except Exception as exc:  # a dropped connection, a full disk, a proxy's error page...
        if required:
            raise ValueError(
                f"--weights imagenet: download of {weights.url} failed: {exc}"
            ) from exc
        return None, (
            f"ImageNet weights unavailable (download failed: {exc}): "
            f"{model} uses random initialisation"
        )


def _sum_first_conv(backbone: nn.Module) -> str:
    """Replace the first 3-channel conv by a 1-channel one whose filter is the sum over RGB."""
    for name, module in backbone.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            new = nn.Conv2d(
                1,
                module.out_channels,
                module.kernel_size,
                module.stride,
                module.padding,
                module.dilation,
                module.groups,
                module.bias is not None,
            )
            with torch.no_grad():
                new.weight.copy_(module.weight.sum(dim=1, keepdim=True))
                if module.bias is not None:
                    new.bias.copy_(module.bias)
            parent = backbone
            *path, last = name.split(".")
            for part in path:
                parent = getattr(parent, part)
            setattr(parent, last, new)
            return name
    raise ValueError("no 3-channel convolution found to adapt to one channel")


def _load_backbone_state(model: str, backbone: nn.Module, state: dict) -> None:
    if model == "vgg16_bn":
        state = {
            "trunk." + k[len("features.") :]: v
            for k, v in state.items()
            if k.startswith("features.")
        }
    else:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"weights for {model} do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_model(cfg) -> tuple[Net, list[str]]:
    """Build the network ``cfg.model`` with its weights and one-channel adaptation.

    Parameters
    ----------
    cfg : core.learning.config.RunConfig
        Uses ``model``, ``weights`` (``auto|imagenet|none|PATH``), ``channel_policy``,
        ``normalize``, ``input_size`` and ``cnn_width``.

    Returns
    -------
    model : Net
        In eval mode; ``model.info`` records weights used, channel policy and input size.
    warnings : list of str
        At most one line per problem, e.g. ``"ImageNet weights unavailable (offline): resnet18
        uses random initialisation"``; callers store them on the run.

    Raises
    ------
    ValueError
        Unknown model, ``--weights imagenet`` when the weights cannot be had, a weights file that
        does not exist or does not fit, or ImageNet weights asked for the from-scratch CNN.
    """
    if cfg.model not in ARCHITECTURES:
        raise ValueError(f"unknown model {cfg.model!r}: expected one of {', '.join(ARCHITECTURES)}")
    factory = ARCHITECTURES[cfg.model]
    if cfg.model == "cnn":
        backbone, dim, cam_layer, last_block = factory(cfg.cnn_width)
    else:
        backbone, dim, cam_layer, last_block = factory()
    used, warnings = _load_weights(cfg, backbone)
    in_channels, first_conv = 1, None
    if cfg.model in PRETRAINED:
        if cfg.channel_policy == "sum_rgb":
            first_conv = _sum_first_conv(backbone)
        else:
            in_channels = 3
    model = Net(
        backbone,
        dim,
        in_channels=in_channels,
        normalize=cfg.normalize == "imagenet",
        input_size=cfg.input_size,
    )
    model.info = {
        "model": cfg.model,
        "weights_used": used,
        # A weights file is known by its content: a retrained file at the same path is new weights.
        "weights_sha256": _file_sha256(used) if used not in ("random", "imagenet") else None,
        "channel_policy": cfg.channel_policy if cfg.model in PRETRAINED else "native_1ch",
        "first_conv_summed": first_conv,
        "input_size": cfg.input_size or "native",
        "feature_dim": dim,
        "cnn_width": cfg.cnn_width if cfg.model == "cnn" else None,
        "cam_layer": "backbone." + cam_layer,
        "last_block": ["backbone." + p for p in last_block],
    }
    return model.eval(), warnings


def _load_weights(cfg, backbone: nn.Module) -> tuple[str, list[str]]:
    """Load ``cfg.weights`` into ``backbone``; return what was used and any warning."""
    weights = str(cfg.weights)
    if cfg.model not in PRETRAINED:
        if weights == "imagenet":
            raise ValueError(
                f"--weights imagenet: {cfg.model} has no ImageNet weights (from scratch)"
            )
        if weights in ("auto", "none"):
            return "random", []
        _load_file(cfg.model, weights, lambda state: backbone.load_state_dict(state))
        return weights, []
    if weights in ("auto", "imagenet"):
        state, warning = _imagenet_state(cfg.model, required=weights == "imagenet")
        if state is None:
            return "random", [warning]
        _load_backbone_state(cfg.model, backbone, state)
        return "imagenet", []
    if weights == "none":
        return "random", []
    _load_file(cfg.model, weights, lambda state: _load_backbone_state(cfg.model, backbone, state))
    return str(Path(weights)), []


def _load_file(model: str, weights: str, load) -> None:
    """``load(state)`` of the state_dict in file ``weights``, or one ValueError line saying why not
    (no such file, not a state_dict saved by torch.save, or one of another architecture)."""
    path = Path(weights)
    if not path.is_file():
        raise ValueError(
            f"--weights {weights}: no such file; expected auto, imagenet, none or a path"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch errors alike mean "not ours"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise ValueError(
            f"--weights {weights}: not a PyTorch state_dict file ({first}); give a file saved "
            "with torch.save(model.state_dict(), PATH), or auto, imagenet or none"
        ) from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(
            f"--weights {weights}: holds a {type(state).__name__}, not a state_dict of tensors"
        )
    try:
        load(state)
    except (RuntimeError, KeyError, IndexError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise ValueError(f"--weights {weights}: does not fit {model} ({first})") from None


def trainable_parameters(model: Net, scope: str) -> list[nn.Parameter]:
    """Parameters to fine-tune: ``"all"``, or ``"last_block"`` (last stage + head); freezes the rest."""
    if scope == "all":
        for p in model.parameters():
            p.requires_grad_(True)
        return list(model.parameters())
    prefixes = tuple(model.info["last_block"]) + ("head.",)
    chosen = []
    for name, p in model.named_parameters():
        keep = name.startswith(prefixes)
        p.requires_grad_(keep)
        if keep:
            chosen.append(p)
    return chosen
