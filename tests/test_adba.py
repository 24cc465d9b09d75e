"""ADBA and GAN inversion: recovered codes, the line through the most uncertain code, the annotator's step fit,
and a tiny end-to-end run that resumes after a kill to exactly the uninterrupted result."""

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import asal.loop as loop
import asal.strategies.adba as adba
from asal.annotators import SKIP
from asal.strategies.adba import LineSampling, fit_latent_classifier, fit_step, line_codes, select_centres
from asal.data.store import ImageStore, write_split
from asal.errors import BadConfig
from asal.files import config_hash
from asal.latent import check_codes, encode_splits, invert, read_codes
from asal.loop import checkpoint_path, run_active_learning
from asal.models.gan import ARCHS, Critic, Generator
from asal.settings import GanConfig, LatentConfig, RunSettings
from asal.runfiles import ROW_COLUMNS

CPU = torch.device("cpu")
TIMES = ["select_seconds", "train_seconds", "search_seconds", "generate_seconds"]
SHAPE, LATENT = (1, 8, 8), 4


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(SHAPE, LATENT, ARCHS["small"]).eval()


# --- inversion --------------------------------------------------------------------------------------------

def test_inversion_recovers_images_the_generator_made():
    generator = tiny_generator()
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    z0 = torch.randn(24, LATENT, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        x = generator(z0)  # (24, 1, 8, 8) float in [0, 1]
    _, mse_start = invert(generator, x, steps=0, lr=0.05, prior_weight=1e-3, seed=1, device=CPU)
    codes, mse = invert(generator, x, steps=150, lr=0.05, seed=1, device=CPU, batch_size=10, prior_weight=0.0)
    assert codes.shape == (24, LATENT) and codes.dtype == np.float32 and mse.dtype == np.float32
    assert mse.mean() < 1e-3 * mse_start.mean()
    with torch.no_grad():
        again = generator(torch.from_numpy(codes))
    spread = (x - x.mean(0)).abs().mean()  # how far apart the generator's images are
    assert (again - x).abs().mean() < 0.02 * spread
    for k, v in generator.state_dict().items():  # the generator is frozen, not trained
        assert torch.equal(v, before[k])
    assert all(p.grad is None and p.requires_grad for p in generator.parameters())
    # uint8 input is read as images in [0, 255]; the seeded start makes the result reproducible
    as_uint8 = (x * 255).round().to(torch.uint8).numpy()
    a, _ = invert(generator, as_uint8, steps=5, lr=0.05, prior_weight=1e-3, seed=3, device=CPU)
    b, _ = invert(generator, as_uint8, steps=5, lr=0.05, prior_weight=1e-3, seed=3, device=CPU)
    np.testing.assert_array_equal(a, b)


def save_tiny_gan(path, generator):
    cfg = asdict(GanConfig.of(latent_dim=LATENT, iterations=7))
    torch.save({"config": cfg, "image_shape": list(SHAPE), "iterations": 7, "pool_hash": "x",
                "generator": generator.state_dict(), "critic": Critic(SHAPE, ARCHS["small"]).state_dict()}, path)


def test_encode_splits_writes_codes_for_both_splits(tmp_path):
    generator = tiny_generator()
    save_tiny_gan(tmp_path / "gan.pt", generator)
    rng = np.random.default_rng(0)
    for name, n in (("pool", 30), ("test", 12)):
        write_split(tmp_path / f"{name}.h5", rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8),
                    rng.integers(0, 2, n), np.arange(n), class_names=[5, 7], source="npz", split=name,
                    config={"split": name})
    encode_splits(tmp_path / "gan.pt", tmp_path / "pool.h5", tmp_path / "test.h5", tmp_path / "codes.h5",
                  LatentConfig.of(steps=5, lr=0.05, seed=2), device=CPU)
    codes = read_codes(tmp_path / "codes.h5")
    assert codes["pool"].shape == (30, LATENT) and codes["test"].shape == (12, LATENT)
    assert codes["pool_mse"].shape == (30,) and codes["test"].dtype == np.float32
    assert codes["attrs"]["steps"] == 5 and codes["attrs"]["gan_iterations"] == 7
    from asal.data import read_split

    pool, test = read_split(tmp_path / "pool.h5"), read_split(tmp_path / "test.h5")
    saved = torch.load(tmp_path / "gan.pt", weights_only=True)
    check_codes(codes, pool=pool, test=test, gan={"gan_config_hash": config_hash(saved["config"]),
                                                  "gan_iterations": saved["iterations"]})
    with pytest.raises(Exception, match="another test store"):
        check_codes(codes, pool=pool, test=pool)
    assert not list(tmp_path.glob(".*.part"))


# --- the line ---------------------------------------------------------------------------------------------

def test_centre_is_nearest_unlabelled_code_and_line_is_perpendicular_to_the_boundary():
    rng = np.random.default_rng(0)
    w_true, b_true = np.array([1.0, 2.0]) / np.sqrt(5), -0.3  # the boundary w.z + b = 0, ||w|| = 1
    along = np.array([-2.0, 1.0]) / np.sqrt(5)

    def at(dist, t):  # points at signed distance `dist` from the boundary, position t along it
        return (dist - b_true) * w_true + t * along

    far = np.array([at(s * rng.uniform(1.0, 3.0), rng.uniform(-3, 3)) for s in np.repeat([-1, 1], 40)])
    unlabelled = np.array([at(0.9, 0.0), at(-0.03, 1.5), at(-0.8, -1.0), at(1.2, 2.0)])
    codes = np.concatenate([far, [at(0.0, 0.5)], unlabelled]).astype(np.float32)  # (85, 2)
    labels = (codes @ w_true + b_true > 0).astype(np.int64)
    labelled = np.arange(81)  # the far points and one exactly on the boundary
    clf = fit_latent_classifier(codes[labelled], labels[labelled], C=100.0)
    available = np.ones(len(codes), bool)
    available[labelled] = False
    distance = np.abs(clf.decision_function(codes))
    (centre,) = select_centres(distance, available, 1)
    assert centre == 82  # the unlabelled code nearest the boundary, not the labelled one on it
    assert centre == min(np.flatnonzero(available), key=lambda i: abs(codes[i] @ w_true + b_true))
    line = line_codes(codes[[centre]], clf.coef_[0], points=11, half_length=2.0)[0]  # (11, 2)
    steps = np.diff(line, axis=0)
    np.testing.assert_allclose(steps, np.repeat(steps[:1], 10, axis=0), atol=1e-6)  # a straight, even line
    np.testing.assert_allclose(np.linalg.norm(steps, axis=1), 0.4, atol=1e-6)  # 2 * 2.0 / 10
    np.testing.assert_allclose(line[5], codes[centre], atol=1e-6)  # centred on the chosen code
    direction = steps[0] / np.linalg.norm(steps[0])
    assert direction @ clf.coef_[0] / np.linalg.norm(clf.coef_[0]) > 1 - 1e-6  # along the classifier's normal
    assert direction @ w_true > 0.99 and abs(direction @ along) < 0.15  # perpendicular to the true boundary
    assert (np.diff(clf.decision_function(line)) > 0).all()  # from class 0's side to class 1's


def test_select_centres_breaks_ties_to_the_lower_index():
    distance = np.array([0.5, 0.1, 0.3, 0.1, 0.1, 0.0])
    available = np.array([True, True, True, True, True, False])
    np.testing.assert_array_equal(select_centres(distance, available, 3), [1, 3, 4])
    with pytest.raises(Exception, match="left"):
        select_centres(distance, available, 6)


# --- the annotator ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("oracle, step, s", [
    ([0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1], [0] * 3 + [1] * 8, 3),  # clean
    ([1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0], [1] * 7 + [0] * 4, 7),  # the other orientation
    ([0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1], [0] * 6 + [1] * 5, 6),  # noisy: 2 disagreements
    ([0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1], [0] * 5 + [1] * 6, 5),  # s = 5 and 7 tie at one error: nearer the centre
    ([1] * 11, [1] * 11, 0),  # all one class: no transition
    ([0] * 11, [0] * 11, 0),
    ([1, 0, 1, 0], [1, 0, 0, 0], 1),  # one error at s = 1 and s = 3 (class 1 first), as near the centre: lower s
])
def test_step_labelling(oracle, step, s):
    got, s_got = fit_step(np.array(oracle))
    np.testing.assert_array_equal(got, step)
    assert s_got == s
    assert set(np.diff(got)) <= {0, 1} or set(np.diff(got)) <= {0, -1}  # one transition at most


# --- whole runs -------------------------------------------------------------------------------------------

class BrightnessOracle(nn.Module):
    """Class 1 when an image's mean brightness is above a threshold."""

    def __init__(self, threshold: float):
        super().__init__()
        self.register_buffer("threshold", torch.tensor(threshold))

    def forward(self, x):  # (B, C, H, W) in [0, 1] -> (B, 2) logits
        m = 200 * (x.mean((1, 2, 3)) - self.threshold)
        return torch.stack([-m, m], dim=1)


def quantised(generator, z):
    with torch.no_grad():
        return (generator(torch.from_numpy(z)) * 255).round().to(torch.uint8).numpy()


class Decoder(nn.Module):
    """A toy generator whose images brighten along the first latent axis: sigmoid(A z + c) as 8x8 images."""

    latent_dim = LATENT

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(LATENT, 64)
        with torch.no_grad():
            self.fc.weight[:, 0] += 1.5

    def forward(self, z):  # (B, d) -> (B, 1, 8, 8) in [0, 1]
        return torch.sigmoid(self.fc(z)).view(len(z), *SHAPE)


@pytest.fixture
def problem():
    """(pool, test, codes, generator, oracle): images made from known codes, labelled by the oracle."""
    generator = Decoder().eval()
    rng = np.random.default_rng(0)
    z = rng.normal(size=(240, LATENT)).astype(np.float32)
    images = quantised(generator, z)
    brightness = images.mean((1, 2, 3)) / 255
    oracle = BrightnessOracle(float(np.median(brightness))).eval()
    labels = (brightness > oracle.threshold.item()).astype(np.int64)
    pool = ImageStore("pool.h5", images[:180], labels[:180], ["5", "7"], "poolhash")
    test = ImageStore("test.h5", images[180:], labels[180:], ["5", "7"], "testhash")
    codes = {"pool": z[:180], "test": z[180:], "path": "codes.h5",
             "attrs": {"pool_config_hash": "poolhash", "test_config_hash": "testhash"}}
    return pool, test, codes, generator, oracle


SETTINGS = {"al": {"initial": 10, "new": 4, "budget": 26}, "adba": {"points": 11, "half_length": 2.0, "C": 1.0}}


def run_on(pool, test, codes, generator, oracle, tmp_path, name="run", settings=SETTINGS, seed=0):
    """ADBA on the one AL loop: its strategy (with the oracle as its annotator of lines) and its latent learner."""
    settings = RunSettings.of(settings)
    strategy = LineSampling(generator, codes, settings.adba, {}, oracle, CPU).named("adba")
    return run_active_learning(pool, test, strategy=strategy, seed=seed, settings=settings,
                               out_csv=tmp_path / f"{name}.csv", out_indices=tmp_path / f"{name}_idx.csv",
                               outputs={"lines": tmp_path / f"{name}_lines.npz"}, device=CPU)


def run(problem, tmp_path, name="run", settings=SETTINGS, seed=0):
    rows = run_on(*problem, tmp_path, name=name, settings=settings, seed=seed)
    with np.load(tmp_path / f"{name}_lines.npz") as fh:
        lines = dict(fh)
    return rows, pd.read_csv(tmp_path / f"{name}_idx.csv"), lines


def test_non_binary_pool_is_refused(problem, tmp_path):
    pool, test, codes, generator, oracle = problem
    three = ImageStore("pool3.h5", pool.images, pool.labels, ["a", "b", "c"], "poolhash")
    with pytest.raises(BadConfig, match="binary.*3 classes"):
        run_on(three, test, codes, generator, oracle, tmp_path)


def test_end_to_end_and_resume(problem, tmp_path, monkeypatch):
    pool, test, codes, _, _ = problem
    rows, indices, lines = run(problem, tmp_path, name="ref")
    assert list(rows.columns) == ROW_COLUMNS and (rows.strategy == "adba").all()
    assert rows.n_labelled.tolist() == [10, 14, 18, 22, 26] and rows.n_selected.tolist() == [4, 4, 4, 4, 0]
    assert rows.selected_entropy.iloc[:-1].between(0, np.log(2)).all() and np.isnan(rows.selected_entropy.iloc[-1])
    assert rows[["synthetic_entropy", "match_distance", "features_seconds"]].isna().all().all()
    if "oracle_confidence" in rows:
        assert rows.oracle_confidence.iloc[:-1].between(0.5, 1).all()
    assert rows.test_accuracy.iloc[0] < 0.9 < rows.test_accuracy.iloc[-1]  # the lines teach the oracle's boundary
    from asal.loop import initial_labelled

    assert set(indices.pool_idx[indices.cycle == 0]) == set(initial_labelled(len(pool), 10, 0))
    assert len(indices) == 26 and indices.pool_idx.is_unique
    initial_rows = indices[indices.cycle == 0]
    np.testing.assert_array_equal(initial_rows.label, pool.labels[initial_rows.pool_idx])
    assert (indices.label[indices.cycle > 0] == SKIP).all()  # a line's centre is taken, never labelled
    assert lines["codes"].shape == (16, 11, LATENT) and lines["images"].shape == (16, 11, *SHAPE)
    assert lines["images"].dtype == np.uint8 and lines["step"].shape == lines["oracle"].shape == (16, 11)
    np.testing.assert_array_equal(lines["centre"], indices.pool_idx[indices.cycle > 0])
    # every line: its images are the generator's, labelled by the oracle, the step fit of those labels
    _, _, _, generator, oracle = problem
    np.testing.assert_array_equal(lines["images"].reshape(-1, *SHAPE),
                                  quantised(generator, lines["codes"].reshape(-1, LATENT)))
    for o, s in zip(lines["oracle"], lines["step"]):
        np.testing.assert_array_equal(s, fit_step(o)[0])
    # replay each cycle's selection: the centres are the unlabelled codes nearest that cycle's boundary
    initial = indices.pool_idx[indices.cycle == 0].to_numpy()
    for cycle in range(4):
        before = lines["cycle"] < cycle
        x = np.concatenate([codes["pool"][initial], lines["codes"][before].reshape(-1, LATENT)])
        y = np.concatenate([pool.labels[initial], lines["step"][before].reshape(-1)])
        clf = fit_latent_classifier(x, y, C=1.0)
        assert rows.test_accuracy[cycle] == (clf.predict(codes["test"]) == test.labels).mean()
        taken = np.concatenate([initial, lines["centre"][before]])
        free = np.setdiff1d(np.arange(len(pool)), taken)
        distance = np.abs(clf.decision_function(codes["pool"]))
        expected = free[np.argsort(distance[free], kind="stable")[:4]]
        now = lines["cycle"] == cycle
        np.testing.assert_array_equal(lines["centre"][now], expected)
        direction = np.diff(lines["codes"][now], axis=1)  # (4, 10, d)
        unit = clf.coef_[0] / np.linalg.norm(clf.coef_[0])
        np.testing.assert_allclose(direction / np.linalg.norm(direction, axis=2, keepdims=True),
                                   np.broadcast_to(unit, direction.shape), atol=1e-5)
        np.testing.assert_allclose(lines["codes"][now][:, 5], codes["pool"][expected], atol=1e-6)
    assert not checkpoint_path(tmp_path / "ref.csv").exists() and not checkpoint_path(tmp_path / "ref.csv").with_suffix(".npz").exists()

    # killed after cycle 3's lines reached the side file but before its JSON: resumes from cycle 2
    real_write, calls = loop.write_json, []

    def dying_write(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_write(*args)

    monkeypatch.setattr(loop, "write_json", dying_write)
    with pytest.raises(KeyboardInterrupt):
        run(problem, tmp_path, name="cut")
    assert not (tmp_path / "cut.csv").exists()
    with np.load(checkpoint_path(tmp_path / "cut.csv").with_suffix(".npz")) as fh:
        assert len(fh["centre"]) == 12  # one cycle ahead of the JSON
    monkeypatch.setattr(loop, "write_json", real_write)
    real_fit, fits = adba.fit_latent_classifier, []
    monkeypatch.setattr(adba, "fit_latent_classifier", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    rows2, indices2, lines2 = run(problem, tmp_path, name="cut")
    assert len(fits) == 3  # cycles 2, 3, 4: the two finished ones were not redone
    pd.testing.assert_frame_equal(rows2.drop(columns=TIMES), rows.drop(columns=TIMES))
    pd.testing.assert_frame_equal(indices2, indices)
    assert lines2.keys() == lines.keys()
    for key in lines:
        np.testing.assert_array_equal(lines2[key], lines[key])


def test_checkpoint_of_another_oracle_is_ignored(problem, tmp_path, monkeypatch):
    real_write, calls = loop.write_json, []

    def dying_write(*args):
        calls.append(1)
        real_write(*args)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "write_json", dying_write)
    with pytest.raises(KeyboardInterrupt):
        run(problem, tmp_path)
    monkeypatch.setattr(loop, "write_json", real_write)
    pool, test, codes, generator, _ = problem
    other = BrightnessOracle(0.9).eval()
    real_fit, fits = adba.fit_latent_classifier, []
    monkeypatch.setattr(adba, "fit_latent_classifier", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    rows, _, _ = run((pool, test, codes, generator, other), tmp_path)
    assert len(fits) == 5 and len(rows) == 5  # started afresh
