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
from ..settings import INFERENCE_BATCH, LearningLossConfig, TrainConfig


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
        return self.features_of_map(self.conv(x))  # (B, hidden)

    def features_of_map(self, last_map: torch.Tensor) -> torch.Tensor:
        """The last block's feature map (B, c, h, w) -> penultimate features (B, hidden)."""
        return F.relu(self.fc(last_map.flatten(1)))

    def block_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature map after each conv block, [(B, c_i, h_i, w_i)], the last one that ``features`` reads:
        what Learning Loss's module predicts the loss from."""
        x = x.contiguous(memory_format=torch.channels_last)
        maps = []
        for start in range(0, len(self.conv), 3):  # conv, ReLU, max-pool
            x = self.conv[start : start + 3](x)
            maps.append(x)
        return maps

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, hidden) -> logits (B, K), through the dropout."""
        return self.head(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))  # (B, K)


class LossPredictingCNN(nn.Module):
    """Learning Loss's model (Yoo & Kweon, CVPR 2019): the CNN, and a module that predicts each sample's loss
    from the CNN's block feature maps: per block, global average pooling and a fully connected layer of
    ``width`` units with ReLU; the blocks' outputs concatenated, then one linear output. As a classifier it is
    the CNN (``forward``, ``features``, ``classify``), so everything that scores the classifier scores it."""

    def __init__(self, classifier: SmallCNN, width: int):
        super().__init__()
        self.classifier = classifier
        channels = [layer.out_channels for layer in classifier.conv if isinstance(layer, nn.Conv2d)]
        self.heads = nn.ModuleList(nn.Linear(c, width) for c in channels)
        self.out = nn.Linear(width * len(channels), 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier.classify(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)  # (B, K)

    def loss_from_maps(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """Block feature maps -> predicted loss (B,)."""
        pooled = [F.relu(head(m.mean(dim=(2, 3)))) for head, m in zip(self.heads, maps)]
        return self.out(torch.cat(pooled, dim=1)).squeeze(1)

    def predict_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] -> predicted loss (B,); differentiable in ``x`` (ASAL's ascent)."""
        return self.loss_from_maps(self.classifier.block_maps(x))

    def forward_with_loss(self, x: torch.Tensor, *, detach: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, K) and predicted loss (B,) from one pass through the blocks; with ``detach`` the loss
        module's gradient stops at the feature maps (the paper's cut after a set epoch)."""
        maps = self.classifier.block_maps(x)
        logits = self.classifier.classify(self.classifier.features_of_map(maps[-1]))
        return logits, self.loss_from_maps([m.detach() for m in maps] if detach else maps)


def ranking_loss(predicted: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
    """Learning Loss's margin ranking loss over the pairs of a batch: sample i against sample B-1-i for
    i < B/2 (the batch against itself reversed, as the paper's code pairs them), each pair
    max(0, margin - sign(l_i - l_j) * (p_i - p_j)) with sign +1 where l_i > l_j, else -1; the mean over
    pairs. ``predicted`` (B,), ``target`` (B,) the true losses, detached. 0 for a batch of one."""
    half = len(predicted) // 2
    if half == 0:
        return predicted.sum() * 0.0
    difference = (predicted - predicted.flip(0))[:half]
    sign = torch.where((target - target.flip(0))[:half] > 0, 1.0, -1.0)
    return (margin - sign * difference).clamp_min(0.0).mean()


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
    device: torch.device, loss_prediction: LearningLossConfig | None = None,
) -> nn.Module:
    """Train a fresh classifier on ``images`` (N, C, H, W) uint8 and ``labels`` (N,) int64.

    Initialisation and mini-batch order come from ``seed`` alone, so a resumed AL run retrains
    bit for bit the classifier an uninterrupted run would have. With ``loss_prediction`` the CNN is a
    :class:`LossPredictingCNN` trained jointly: each mini-batch adds ``weight`` times the
    :func:`ranking_loss` of the predicted against the true per-sample losses, and after ``detach_after`` of
    the steps the module's gradient no longer reaches the CNN.
    """
    if cfg.dropout > 0 and cfg.optimizer == "lbfgs":
        raise BadConfig(f"classifier.dropout = {cfg.dropout} with optimizer lbfgs: lbfgs needs a deterministic loss")
    if loss_prediction is not None and (cfg.model != "cnn" or cfg.optimizer == "lbfgs"):
        raise BadConfig(f"Learning Loss needs classifier.model cnn with adam or sgd, not {cfg.model} with {cfg.optimizer}")
    torch.manual_seed(seed)
    model = build_classifier(cfg, images.shape[1:], n_classes)
    if loss_prediction is not None:
        model = LossPredictingCNN(model, loss_prediction.width)
    model = model.to(device)
    y = torch.from_numpy(labels).to(device)
    detach_from = math.inf if loss_prediction is None else int(loss_prediction.detach_after * cfg.steps)

    def loss_on(xb, yb, step: int = 0):
        penalty = 0.5 * cfg.weight_decay * _l2_penalty(model)
        if loss_prediction is None:
            return F.cross_entropy(model(xb), yb) + penalty
        logits, predicted = model.forward_with_loss(xb, detach=step >= detach_from)
        losses = F.cross_entropy(logits, yb, reduction="none")  # (B,)
        ranking = ranking_loss(predicted, losses.detach(), loss_prediction.margin)
        return losses.mean() + loss_prediction.weight * ranking + penalty

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
        for step in range(cfg.steps):
            if len(order) < batch:  # reshuffle: every sample is seen once per epoch
                order = torch.cat([order, torch.randperm(len(y), generator=gen)])
            idx, order = order[:batch].to(device), order[batch:]
            opt.zero_grad()
            loss_on(to_float(x[idx], device), y[idx], step).backward()
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

