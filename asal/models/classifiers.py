"""The classifiers h of the paper, trained from scratch on the labelled set in every AL cycle.

Both expose ``features(x)`` (the penultimate activations, for core-set, BADGE and ASAL-CLS), ``classify(f)``
(features to logits, through the optional dropout that BALD samples) and ``forward(x)`` (logits). Inputs are float images in [0, 1], shape (B, C, H, W).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import BadConfig
from ..images import to_float
from ..settings import INFERENCE_BATCH, TrainConfig


def head_dropout(p: float) -> nn.Module:
    """Dropout before the output layer (MC dropout for BALD); p = 0 is the identity and draws no randomness."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


class LinearClassifier(nn.Module):
    """h(x) = Wx + b on raw pixels (the paper's binary experiments); ``dropout`` acts on the pixels."""

    def __init__(self, image_shape: tuple[int, int, int], n_classes: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = head_dropout(dropout)
        self.fc = nn.Linear(math.prod(image_shape), n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)  # (B, C*H*W)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, d) -> logits (B, K), through the dropout."""
        return self.fc(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))  # (B, K)


class SmallCNN(nn.Module):
    """Conv blocks (3x3 convolution, ReLU, max-pool 2; 16, 32, then 64 channels) and a 128-unit hidden layer.

    One network for every input size: blocks are added until the feature map is at most 8 pixels on its shorter
    side, with at least two (as long as the map keeps a pixel), so MNIST's 28x28 and CIFAR's and SVHN's 32x32 get two blocks (7x7 and 8x8 maps)
    and CelebA's and LSUN's 64x64 three (8x8). Sized for CPUs. Weights and inputs are channels_last, the layout
    oneDNN's CPU convolutions run fastest in: at 28x28 on one core of this project's CPU, a 64-image training
    step takes ~11 ms instead of ~14 and inference scores ~17,000 images/s instead of ~8,500
    (``benchmarks/scan_throughput.py``).
    """

    WIDTHS = (16, 32, 64, 128)

    def __init__(self, image_shape: tuple[int, int, int], n_classes: int, dropout: float = 0.0, hidden: int = 128):
        super().__init__()
        c, h, w = image_shape
        side = min(h, w)
        n_blocks = min(len(self.WIDTHS), max(2, math.ceil(math.log2(side / 8))), max(1, int(math.log2(side))))
        layers: list[nn.Module] = []
        for c_in, c_out in zip((c, *self.WIDTHS), self.WIDTHS[:n_blocks]):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(self.WIDTHS[n_blocks - 1] * (h // 2**n_blocks) * (w // 2**n_blocks), hidden)
        self.dropout = head_dropout(dropout)
        self.head = nn.Linear(hidden, n_classes)
        self.to(memory_format=torch.channels_last)  # kept by .to(device) and load_state_dict

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return F.relu(self.fc(self.conv(x).flatten(1)))  # (B, hidden)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, hidden) -> logits (B, K), through the dropout."""
        return self.head(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))  # (B, K)


MODELS = {"linear": LinearClassifier, "cnn": SmallCNN}


def build_classifier(cfg: TrainConfig, image_shape, n_classes: int) -> nn.Module:
    try:
        return MODELS[cfg.model](tuple(image_shape), n_classes, dropout=cfg.dropout)
    except KeyError:
        raise BadConfig(f"classifier.model = {cfg.model!r}: choose one of {sorted(MODELS)}") from None


def _l2_penalty(model: nn.Module) -> torch.Tensor:
    return sum(p.pow(2).sum() for name, p in model.named_parameters() if not name.endswith("bias"))


def train_classifier(
    cfg: TrainConfig, images: np.ndarray, labels: np.ndarray, n_classes: int, *, seed: int,
    device: torch.device,
) -> nn.Module:
    """Train a fresh classifier on ``images`` (N, C, H, W) uint8 and ``labels`` (N,) int64.

    Initialisation and mini-batch order come from ``seed`` alone, so a resumed AL run retrains
    bit for bit the classifier an uninterrupted run would have.
    """
    if cfg.dropout > 0 and cfg.optimizer == "lbfgs":
        raise BadConfig(f"classifier.dropout = {cfg.dropout} with optimizer lbfgs: lbfgs needs a deterministic loss")
    torch.manual_seed(seed)
    model = build_classifier(cfg, images.shape[1:], n_classes).to(device)
    y = torch.from_numpy(labels).to(device)

    def loss_on(xb, yb):
        return F.cross_entropy(model(xb), yb) + 0.5 * cfg.weight_decay * _l2_penalty(model)

    model.train()
    if cfg.optimizer == "lbfgs":
        opt = torch.optim.LBFGS(model.parameters(), lr=cfg.lr, max_iter=cfg.steps, line_search_fn="strong_wolfe")

        x = to_float(images, device)

        def closure():
            opt.zero_grad()
            loss = loss_on(x, y)
            loss.backward()
            return loss

        opt.step(closure)
    else:
        opt = (
            torch.optim.Adam(model.parameters(), lr=cfg.lr) if cfg.optimizer == "adam"
            else torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
        )
        x = torch.from_numpy(np.ascontiguousarray(images)).to(device)  # uint8: a batch is made float when drawn
        gen = torch.Generator().manual_seed(seed)
        batch = min(cfg.batch_size, len(y))
        order = torch.empty(0, dtype=torch.long)
        for _ in range(cfg.steps):
            if len(order) < batch:  # reshuffle: every sample is seen once per epoch
                order = torch.cat([order, torch.randperm(len(y), generator=gen)])
            idx, order = order[:batch].to(device), order[batch:]
            opt.zero_grad()
            loss_on(to_float(x[idx], device), y[idx]).backward()
            opt.step()
    model.eval()
    return model


@torch.inference_mode()
def predict_proba(model: nn.Module, images: np.ndarray, *, device: torch.device,
                  batch_size: int = INFERENCE_BATCH) -> np.ndarray:
    """Class probabilities (N, K) float32 for uint8 images (N, C, H, W), in batches, without autograd."""
    out = [
        F.softmax(model(to_float(images[i : i + batch_size], device)), dim=1).cpu().numpy()
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

