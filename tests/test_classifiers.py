import numpy as np
import pytest
import torch

from asal.models.classifiers import build_classifier, predict_proba, train_classifier
from asal.scores import entropy
from asal.settings import TrainConfig

CPU = torch.device("cpu")


@pytest.mark.parametrize("model", ["linear", "cnn"])
@pytest.mark.parametrize("shape", [(1, 12, 12), (3, 32, 32)])
def test_shapes(model, shape):
    net = build_classifier(TrainConfig.of(model=model), shape, 4)
    x = torch.rand(5, *shape)
    assert net(x).shape == (5, 4)
    assert net.features(x).ndim == 2


@pytest.mark.parametrize(
    "cfg",
    [
        TrainConfig.of(model="linear", optimizer="lbfgs", lr=1.0, steps=50, weight_decay=0.01),
        TrainConfig.of(model="cnn", optimizer="adam", steps=60, batch_size=32),
        TrainConfig.of(model="linear", optimizer="sgd", lr=0.05, steps=80),
    ],
)
def test_learns_tiny_data_and_is_deterministic(tiny_stores, cfg):
    pool, test = tiny_stores
    models = [train_classifier(cfg, pool.images, pool.labels, 3, seed=7, device=CPU) for _ in range(2)]
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    accuracy = (predict_proba(models[0], test.images, device=CPU).argmax(1) == test.labels).mean()
    assert accuracy > 0.8, accuracy


def test_predict_proba_batches_equal_whole(tiny_stores):
    pool, _ = tiny_stores
    net = build_classifier(TrainConfig.of(model="cnn"), pool.image_shape, 3).eval()
    whole = predict_proba(net, pool.images, device=CPU, batch_size=10_000)
    np.testing.assert_allclose(predict_proba(net, pool.images, device=CPU, batch_size=7), whole, atol=1e-6)
    np.testing.assert_allclose(whole.sum(1), 1, atol=1e-5)


def test_entropy_known_values():
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.25, 0.75]], np.float32)
    np.testing.assert_allclose(entropy(probs), [0, np.log(2), -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))], rtol=1e-6)
    assert entropy(np.full((1, 10), 0.1, np.float32))[0] == pytest.approx(np.log(10), rel=1e-6)


@pytest.mark.parametrize("shape, blocks", [((1, 28, 28), 2), ((3, 32, 32), 2), ((3, 64, 64), 3), ((1, 12, 12), 2)])
def test_every_model_serves_every_input_size(shape, blocks):
    """MNIST 28x28x1, CIFAR/SVHN 32x32x3, CelebA/LSUN 64x64x3: the classifiers, GANs and autoencoder are all
    sized from the image shape, so one code path serves every experiment of Table 1."""
    from asal.models.autoencoder import ConvAutoencoder
    from asal.models.classifiers import LinearClassifier, SmallCNN
    from asal.models.gan import ARCHS, Critic, Generator

    x = torch.rand(2, *shape)
    cnn = SmallCNN(shape, n_classes=10)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in cnn.conv) == blocks
    assert cnn(x).shape == (2, 10) and cnn.features(x).shape == (2, 128)
    assert LinearClassifier(shape, n_classes=2)(x).shape == (2, 2)
    for arch in ARCHS.values():
        g, d = Generator(shape, 16, arch), Critic(shape, arch)
        fake = g(torch.randn(2, 16))
        assert fake.shape == (2, *shape) and 0 <= fake.min() and fake.max() <= 1
        assert d(fake).shape == (2,) and d.features(x).shape == (2, d.feature_dim)
    ae = ConvAutoencoder(shape, code_dim=8)
    assert ae(x).shape == x.shape and ae.encode(x).shape == (2, 8)


def test_the_cnn_runs_channels_last_and_keeps_the_layout_through_a_reload(tiny_stores):
    """The CNN's 4-d weights are channels_last (oneDNN's fastest CPU layout) from construction and after
    load_state_dict, and it computes what the same weights compute in the default layout."""
    pool, _ = tiny_stores
    net = build_classifier(TrainConfig.of(model="cnn"), pool.image_shape, 3).eval()
    reloaded = build_classifier(TrainConfig.of(model="cnn"), pool.image_shape, 3).eval()
    reloaded.load_state_dict(net.state_dict())
    conv = [m for m in reloaded.modules() if isinstance(m, torch.nn.Conv2d)][1]  # 16 -> 32: layouts differ
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    x = torch.rand(6, *pool.image_shape)
    plain = net.head(torch.relu(net.fc(torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(
        torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(
            x, net.conv[0].weight.contiguous(), net.conv[0].bias, padding=1)), 2),
        net.conv[3].weight.contiguous(), net.conv[3].bias, padding=1)), 2).flatten(1))))
    torch.testing.assert_close(reloaded(x), plain, rtol=1e-4, atol=1e-5)
