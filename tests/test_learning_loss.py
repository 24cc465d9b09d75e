"""Learning Loss and ASAL for it: the ranking loss worked out by hand, the module's gradient cut, the config
rules, and what each selection maximises."""

import numpy as np
import pytest
import torch

from asal.errors import BadConfig
from asal.models.classifiers import LossPredictingCNN, SmallCNN, ranking_loss, train_classifier
from asal.models.gan import ARCHS, Generator
from asal.settings import LearningLossConfig, RunSettings, TrainConfig
from asal.strategies import LEARNED_LOSS
from asal.strategies.adversarial import uncertainty_ascent
from asal.strategies.base import SelectionContext
from asal.strategies.learning_loss import LearningLossSampling
from conftest import make_images

CPU = torch.device("cpu")


def test_the_ranking_loss_of_hand_computed_pairs():
    # One pair: l0 = 2 > l1 = 1, so sign +1; p0 - p1 = 0.2 - 0.5 = -0.3; max(0, 1 - (+1)(-0.3)) = 1.3.
    assert ranking_loss(torch.tensor([0.2, 0.5]), torch.tensor([2.0, 1.0]), 1.0).item() == pytest.approx(1.3)
    # Ranked right by more than the margin: 0. Reversed target: sign -1, max(0, 1 - (-1)(1.5 - 0)) = 0 as well
    # only when p0 < p1 by the margin, so here 2.5.
    assert ranking_loss(torch.tensor([1.5, 0.0]), torch.tensor([2.0, 1.0]), 1.0).item() == 0.0
    assert ranking_loss(torch.tensor([1.5, 0.0]), torch.tensor([1.0, 2.0]), 1.0).item() == pytest.approx(2.5)
    # Four samples pair as (0, 3) and (1, 2): l0 - l3 = 3 - 0 > 0, p0 - p3 = 0.1 - 0.4 = -0.3 -> 1 + 0.3 = 1.3;
    # l1 - l2 = 1 - 1 = 0, a tie counts as -1 (the paper's code), p1 - p2 = 0.9 - 0.2 = 0.7 -> 1 + 0.7 = 1.7.
    # Mean 1.5; with margin 0.5: (0.8 + 1.2) / 2 = 1.0.
    p, l = torch.tensor([0.1, 0.9, 0.2, 0.4]), torch.tensor([3.0, 1.0, 1.0, 0.0])
    assert ranking_loss(p, l, 1.0).item() == pytest.approx(1.5)
    assert ranking_loss(p, l, 0.5).item() == pytest.approx(1.0)
    assert ranking_loss(torch.tensor([0.3]), torch.tensor([1.0]), 1.0).item() == 0.0  # a batch of one has no pair


def test_the_module_predicts_from_every_block_and_its_gradient_stops_when_detached():
    torch.manual_seed(0)
    model = LossPredictingCNN(SmallCNN((1, 28, 28), 10), width=8)
    assert len(model.heads) == 2 and model.out.in_features == 16  # two blocks at 28x28, 8 units each
    x = torch.rand(6, 1, 28, 28)
    logits, predicted = model.forward_with_loss(x)
    torch.testing.assert_close(logits, model(x))
    torch.testing.assert_close(predicted, model.predict_loss(x))
    for detach, reaches_cnn in ((False, True), (True, False)):
        model.zero_grad()
        model.forward_with_loss(x, detach=detach)[1].sum().backward()
        cnn = [p.grad for p in model.classifier.conv.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in cnn) == reaches_cnn
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.heads.parameters())


def cnn_weights(model) -> list[torch.Tensor]:
    cnn = model.classifier if isinstance(model, LossPredictingCNN) else model
    return [p.detach().clone() for p in cnn.parameters()]


def test_after_the_cut_only_the_cross_entropy_trains_the_cnn():
    """Cut from step 0, the CNN trains exactly as without the module (same seed, same batches, Adam per
    parameter); never cut, the module's ranking loss changes it."""
    images, labels = make_images(96, n_classes=3, side=12, seed=2)
    images = images[:, None]  # (N, 1, 12, 12)
    cfg = TrainConfig.of(model="cnn", steps=12, batch_size=16)
    plain = cnn_weights(train_classifier(cfg, images, labels, 3, seed=4, device=CPU))
    for detach_after, same in ((0.0, True), (1.0, False)):
        ll = LearningLossConfig.of(detach_after=detach_after, weight=1.0)
        joint = cnn_weights(train_classifier(cfg, images, labels, 3, seed=4, device=CPU, loss_prediction=ll))
        assert all(torch.equal(a, b) for a, b in zip(plain, joint)) == same, detach_after


@pytest.mark.parametrize("name", ["learning-loss", "asal-ll-raw"])
@pytest.mark.parametrize("classifier", [{"model": "linear"}, {"model": "cnn", "optimizer": "lbfgs"}])
def test_learning_loss_needs_the_cnn_and_mini_batches(name, classifier):
    with pytest.raises(BadConfig, match="intermediate feature maps"):
        RunSettings.of({"classifier": classifier}, strategy=name)
    RunSettings.of({"classifier": {"model": "cnn"}}, strategy=name)


class BrightnessLoss(torch.nn.Module):
    """A stand-in model whose predicted loss is an image's mean brightness: the answer is known."""

    def forward(self, x):
        return torch.zeros(len(x), 3)

    def predict_loss(self, x):
        return x.mean(dim=(1, 2, 3))


def test_learning_loss_takes_the_highest_predicted_losses(tiny_stores):
    pool, _ = tiny_stores
    brightness = pool.images.reshape(len(pool), -1).mean(1)
    labelled = np.argsort(-brightness)[:5]  # the five brightest are labelled: never taken again
    ctx = SelectionContext(pool, labelled, BrightnessLoss(), CPU, np.random.default_rng(0), batch_size=50)
    picked = LearningLossSampling(LearningLossConfig.of()).select(ctx, 10)
    np.testing.assert_array_equal(picked.pool_idx, np.argsort(-brightness, kind="stable")[5:15])


def test_asal_ll_climbs_the_predicted_loss():
    torch.manual_seed(0)
    generator = Generator((1, 12, 12), 8, ARCHS["small"]).eval()
    model = LossPredictingCNN(SmallCNN((1, 12, 12), 3), width=8).eval()
    ascent = uncertainty_ascent(generator, model, 6, steps=30, lr=0.1, seed=1, device=CPU, score=LEARNED_LOSS)
    assert ascent.history[-1] > ascent.history[0]
    with torch.no_grad():
        np.testing.assert_allclose(ascent.score_end, model.predict_loss(ascent.images).numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(BadConfig, match="diversity"):
        uncertainty_ascent(generator, model, 6, steps=3, lr=0.1, seed=1, device=CPU, score=LEARNED_LOSS, diversity=1.0)
