"""The labelling session and its JSON API (asal label), driven through Flask's test client on tiny data: a
session answered with the dataset's labels ends as `asal run-al` does; every bad request is refused with a
4xx and writes nothing; a session closed mid-batch or mid-training restarts in the same state."""

import json
import time

import numpy as np
import pandas as pd
import pytest

from asal import paths
from asal.labelling import Journal, LabellingSession
from asal.labelling.app import MAX_BODY_BYTES, create_app
from asal.loop import checkpoint_path, run_active_learning
from asal.settings import RunSettings
from asal.strategies import spec
from asal.strategies.base import load_strategy
from asal_fixtures import CPU, StrategyWorld

AL = {"initial": 10, "new": 10, "budget": 40}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return StrategyWorld(tmp_path_factory.mktemp("world"))


def build(world, name: str):
    """(strategy, pool, test, settings) of ``name`` in the world's 3-class experiment, with :data:`AL`."""
    files = {kind: str(world.root / where) for kind, where in paths.run_inputs(spec(name), "multi", world.exp).items()
             if kind in paths.STRATEGY_FILES}
    settings = RunSettings.of({"al": AL, "classifier": {"model": "linear", "optimizer": "lbfgs", "lr": 1.0,
                                                       "steps": 20}}, strategy=name)
    pool, test = world.stores["multi"]
    return load_strategy(name, settings=settings, device=CPU, files=files), pool, test, settings


def open_session(world, name: str, out, *, token=None):
    """A started session of ``name``, seed 0, writing under ``out``, and a test client of its app."""
    strategy, pool, test, settings = build(world, name)
    session = LabellingSession(pool, test, strategy=strategy, settings=settings, seed=0, device=CPU,
                               out_csv=out / "seed0.csv", out_indices=out / "seed0_indices.csv",
                               journal=Journal(out / "seed0_journal.jsonl"), experiment="multi")
    session.start()
    return session, create_app(session, token=token).test_client()


def wait(client, status: str, cycle: int | None = None, timeout: float = 60.0, **kw) -> dict:
    """Poll /api/state until ``status`` (and ``cycle``) holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get("/api/state", **kw).get_json()
        if state["status"] == "failed":
            raise AssertionError(state["error"])
        if state["status"] == status and (cycle is None or state["cycle"] == cycle):
            return state
        time.sleep(0.02)
    raise AssertionError(f"no status {status!r} (cycle {cycle}) within {timeout} s: {state}")


def answer_batch(client, pool, *, skip=(), stop_after=None) -> int:
    """Answer the open batch with the dataset's labels (None for pool rows in ``skip``); return its cycle."""
    state = wait(client, "labelling")
    items = client.get("/api/batch").get_json()["items"]
    classes = state["classes"]
    for item in [i for i in items if not i["answered"]][:stop_after]:
        i = item["pool_index"]
        label = None if i in skip else classes[int(pool.labels[i])]
        response = client.post("/api/label", json={"pool_index": i, "label": label})
        assert response.status_code == 200, response.get_json()
    return state["cycle"]


def label_until_done(client, pool, timeout: float = 120.0, **kw) -> None:
    """Answer batch after batch until the session is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get("/api/state").get_json()
        if state["status"] == "done":
            return
        if state["status"] == "labelling":
            answer_batch(client, pool, **kw)
        else:
            assert state["status"] == "training", state
            time.sleep(0.02)
    raise AssertionError(f"the session did not end within {timeout} s")


def simulated(world, name: str, out) -> tuple[pd.DataFrame, pd.DataFrame]:
    strategy, pool, test, settings = build(world, name)
    rows = run_active_learning(pool, test, strategy=strategy, seed=0, settings=settings, out_csv=out / "sim.csv",
                               out_indices=out / "sim_indices.csv", device=CPU)
    return rows, pd.read_csv(out / "sim_indices.csv")


@pytest.mark.parametrize("name", ["random", "asal-raw"])
def test_a_session_answered_with_the_labels_is_the_simulated_run(world, tmp_path, name):
    """One loop: the person's session ends with the labelled set, indices and accuracies of run-al."""
    rows, indices = simulated(world, name, tmp_path)
    session, client = open_session(world, name, tmp_path / "person")
    label_until_done(client, world.stores["multi"][0])
    session.close()
    got = pd.read_csv(tmp_path / "person" / "seed0.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "person" / "seed0_indices.csv"), indices)
    assert (got["strategy"] == f"{name} (person)").all()
    for column in ("cycle", "n_labelled", "test_accuracy", "n_selected", "selected_entropy"):
        np.testing.assert_allclose(got[column], rows[column], rtol=1e-6, err_msg=column)
    state = client.get("/api/state").get_json()
    assert state["status"] == "done" and state["n_labelled"] == AL["budget"]
    assert state["outputs"]["runs"].endswith("seed0.csv")


def test_an_asal_batch_shows_the_synthetic_image_behind_each_item(world, tmp_path):
    session, client = open_session(world, "asal-raw", tmp_path)
    pool = world.stores["multi"][0]
    answer_batch(client, pool)
    wait(client, "labelling", cycle=1)
    items = client.get("/api/batch").get_json()["items"]
    assert len(items) == AL["new"] and all(item["synthetic"] == f"/api/synthetic/1/{k}" for k, item in enumerate(items))
    assert all(item["suggestion"] in ("0", "1", "2") and 0 < item["confidence"] <= 1 for item in items)
    image = client.get(items[3]["synthetic"])
    assert image.status_code == 200 and image.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/api/synthetic/1/10").status_code == 404 and client.get("/api/synthetic/0/0").status_code == 404
    session.close()


def test_skipped_items_are_never_offered_again_and_not_counted(world, tmp_path):
    session, client = open_session(world, "random", tmp_path)
    pool = world.stores["multi"][0]
    wait(client, "labelling")
    first = client.get("/api/batch").get_json()
    skipped = {item["pool_index"] for item in first["items"][:3]}
    answer_batch(client, pool, skip=skipped)
    state = wait(client, "labelling", cycle=1)
    assert state["n_labelled"] == 7 and state["n_skipped"] == 3
    label_until_done(client, pool)
    session.close()
    indices = pd.read_csv(tmp_path / "seed0_indices.csv")
    assert indices["pool_idx"].is_unique
    assert set(indices.loc[indices["label"] == -1, "pool_idx"]) == skipped
    assert (indices["label"] != -1).sum() == AL["budget"]
    csv = client.get("/api/export?format=csv").data.decode().splitlines()
    assert csv[0] == "source,pool_index,label,cycle" and len(csv) == 1 + len(indices)


def test_every_bad_request_is_refused_and_writes_nothing(world, tmp_path):
    session, client = open_session(world, "random", tmp_path)
    wait(client, "labelling", cycle=0)
    journal = tmp_path / "seed0_journal.jsonl"
    items = client.get("/api/batch").get_json()["items"]
    first, second = items[0]["pool_index"], items[1]["pool_index"]
    assert client.post("/api/label", json={"pool_index": first, "label": "0"}).status_code == 200
    written = journal.read_bytes()
    outside = next(i for i in range(len(world.stores["multi"][0])) if i not in {it["pool_index"] for it in items})
    bad = [
        ({"pool_index": second, "label": "cat"}, 400, "unknown class"),
        ({"pool_index": second, "label": 1}, 400, "unknown class"),
        ({"pool_index": outside, "label": "0"}, 400, "not in the current batch"),
        ({"pool_index": str(second), "label": "0"}, 400, "must be an integer"),
        ({"pool_index": True, "label": "0"}, 400, "must be an integer"),
        ({"pool_index": first, "label": "1"}, 409, "answered already"),  # a second tab
        ({"pool_index": first, "label": None}, 409, "answered already"),
        ({"label": "0"}, 400, "give"),
        ([first, "0"], 400, "JSON object"),
    ]
    for payload, status, message in bad:
        response = client.post("/api/label", json=payload)
        assert response.status_code == status and message in response.get_json()["error"], (payload, response.get_json())
    for data, status in ((b"{not json", 400), (b"", 400), (b"x" * (MAX_BODY_BYTES + 1), 413)):
        response = client.post("/api/label", data=data, content_type="application/json")
        assert response.status_code == status and "error" in response.get_json()
    for url, status in (("/api/export?format=xml", 400), ("/api/import?format=csv", 400),
                        ("/api/image/99999", 404), ("/api/image/-1", 404), ("/api/image/../../etc/passwd", 404),
                        ("/api/image/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404), ("/api/image//etc/passwd", 404),
                        ("/api/image/1%2f..%2f..%2fpool.h5", 404), ("/static/../app.py", 404),
                        ("/static/%2e%2e/app.py", 404), ("/api/gan-samples", 404)):
        response = client.post(url) if "import" in url else client.get(url)
        assert response.status_code == status, (url, response.status_code)
    for body in ({"tasks": []}, [], [{"data": {}}], [{"data": {"pool_index": second}, "annotations": [
            {"result": [{"value": {"choices": ["0", "1"]}}]}]}]):
        assert client.post("/api/import?format=labelstudio", json=body).status_code == 400, body
    assert journal.read_bytes() == written
    assert client.post("/api/undo").get_json() == {"pool_index": first}
    assert client.post("/api/undo").status_code == 409  # nothing left to undo in this batch
    session.close()


def test_nothing_is_answered_while_the_session_trains(world, tmp_path):
    session, client = open_session(world, "random", tmp_path)
    pool = world.stores["multi"][0]
    wait(client, "labelling")
    with session.lock:  # hold the worker: the batch is answered, its training cannot start
        answer_batch(client, pool)
        state = client.get("/api/state").get_json()
        assert state["status"] == "training"
        item = client.get("/api/batch").get_json()["items"][0]["pool_index"]
        assert client.post("/api/label", json={"pool_index": item, "label": "0"}).status_code == 409
        assert client.post("/api/undo").status_code == 409
    session.close()


def test_a_token_is_required_where_one_is_set(world, tmp_path):
    session, client = open_session(world, "random", tmp_path, token="s3cret")
    assert client.get("/api/state").status_code == 401
    assert client.get("/").status_code == 401
    assert client.get("/api/state", headers={"X-Asal-Token": "wrong"}).status_code == 401
    assert client.post("/api/label", json={"pool_index": 0, "label": "0"}).status_code == 401
    assert client.get("/api/state", headers={"X-Asal-Token": "s3cret"}).status_code == 200
    assert client.get("/api/state?token=s3cret").status_code == 200
    wait(client, "labelling", headers={"X-Asal-Token": "s3cret"})
    batch = client.get("/api/batch?token=s3cret").get_json()
    assert batch["items"][0]["image"].endswith("?token=s3cret")
    assert client.get(batch["items"][0]["image"]).status_code == 200
    assert client.get("/static/app.js").status_code == 200  # the page's code is the same for everyone
    session.close()


def test_a_restart_mid_batch_and_mid_training_shows_the_same_state(world, tmp_path):
    """Closed mid-batch, and restarted with every answer of a batch given but no checkpoint of it: the same
    batch, the same answers, and at the end the run of a session never stopped."""
    pool = world.stores["multi"][0]
    rows, indices = simulated(world, "asal-raw", tmp_path)
    out = tmp_path / "person"
    session, client = open_session(world, "asal-raw", out)
    answer_batch(client, pool)
    wait(client, "labelling", cycle=1)
    answer_batch(client, pool, stop_after=4)
    before = client.get("/api/batch").get_json(), client.get("/api/state").get_json()
    session.close()

    session, client = open_session(world, "asal-raw", out)
    state = wait(client, "labelling", cycle=1)
    batch = client.get("/api/batch").get_json()
    assert batch == before[0]
    for key in ("cycle", "n_labelled", "class_counts", "n_answered", "accuracy"):
        assert state[key] == before[1][key], key
    answer_batch(client, pool)
    wait(client, "labelling", cycle=2)
    session.close()
    checkpoint_path(out / "seed0.csv").unlink()  # as if killed after the answers, before the checkpoint

    session, client = open_session(world, "asal-raw", out)
    label_until_done(client, pool)
    session.close()
    pd.testing.assert_frame_equal(pd.read_csv(out / "seed0_indices.csv"), indices)


def test_label_studio_tasks_go_out_and_their_answers_come_back(world, tmp_path):
    session, client = open_session(world, "asal-raw", tmp_path)
    pool = world.stores["multi"][0]
    answer_batch(client, pool)
    wait(client, "labelling", cycle=1)
    tasks = client.get("/api/export?format=labelstudio").get_json()
    assert len(tasks) == AL["new"] and tasks[0]["data"]["image"].startswith("http://localhost/api/image/")
    assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"][0] in ("0", "1", "2")
    classes = ["0", "1", "2"]
    for task in tasks[:6]:
        task["annotations"] = [{"result": [{"from_name": "label", "to_name": "image", "type": "choices",
                                            "value": {"choices": [classes[int(pool.labels[task["data"]["pool_index"]])]]}}],
                                "was_cancelled": False}]
    tasks[6]["annotations"] = [{"result": [], "was_cancelled": True}]  # skipped in Label Studio
    response = client.post("/api/import?format=labelstudio", data=json.dumps(tasks), content_type="application/json")
    assert response.status_code == 200 and response.get_json()["answered"] == 7
    assert client.post("/api/import?format=labelstudio", json=tasks).status_code == 409  # answered already
    items = {item["pool_index"]: item for item in client.get("/api/batch").get_json()["items"]}
    assert items[tasks[6]["data"]["pool_index"]]["answered"] and items[tasks[6]["data"]["pool_index"]]["label"] is None
    assert sum(item["answered"] for item in items.values()) == 7
    session.close()


def test_the_journal_ignores_a_line_cut_by_a_kill_and_names_a_corrupt_one(tmp_path):
    from asal.errors import BadData

    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.write([{"op": "label", "batch": 0, "pool_index": 5, "label": 1},
                   {"op": "label", "batch": 0, "pool_index": 6, "label": None},
                   {"op": "label", "batch": 0, "pool_index": 7, "label": 2},
                   {"op": "undo", "batch": 0, "pool_index": 7}])
    journal.close()
    with open(path, "a") as fh:
        fh.write('{"op": "label", "batch": 0, "pool_in')
    journal = Journal(path)
    assert journal.answers == {0: {5: 1, 6: None}}
    journal.write([{"op": "label", "batch": 1, "pool_index": 8, "label": 0}])
    journal.close()
    assert Journal(path).answers == {0: {5: 1, 6: None}, 1: {8: 0}}
    path.write_text('{"op": "label", "batch": 0, "pool_index": 5, "label": 1}\nnonsense\n')
    with pytest.raises(BadData, match="line 2"):
        Journal(path)


def test_a_pool_no_one_has_labelled_is_labelled_by_a_person_and_never_by_a_simulation(tmp_path):
    """source `unlabelled` without a test set: the session runs to its budget, with each item's file as its
    source and no accuracy; `run-al` refuses the pool instead of training on its -1 labels."""
    from PIL import Image

    from asal.data import prepare_data, read_split
    from asal.errors import BadData
    from asal.config import validate_slice
    from conftest import make_images

    images, _ = make_images(60, side=8, seed=5)
    for k, image in enumerate(images):
        where = tmp_path / "photos" / f"roll{k % 3}" / f"img{k:03d}.png"
        where.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(where)  # 8x8 gray
    data = validate_slice({"source": "unlabelled", "path": str(tmp_path / "photos"), "classes": ["cat", "dog"],
                           "channels": 1}, "data")
    prepare_data(data, tmp_path / "pool.h5", tmp_path / "test.h5")
    pool, test = read_split(tmp_path / "pool.h5"), read_split(tmp_path / "test.h5")
    settings = RunSettings.of({"al": AL, "classifier": {"model": "linear", "optimizer": "lbfgs", "lr": 1.0,
                                                        "steps": 20}}, strategy="random")
    strategy = load_strategy("random", settings=settings, device=CPU)
    with pytest.raises(BadData, match="no labels for the rows asked"):
        run_active_learning(pool, test, strategy=strategy, seed=0, settings=settings, out_csv=tmp_path / "sim.csv",
                            out_indices=tmp_path / "sim_indices.csv", device=CPU)
    session = LabellingSession(pool, test, strategy=strategy, settings=settings, seed=0, device=CPU,
                               out_csv=tmp_path / "s.csv", out_indices=tmp_path / "s_indices.csv",
                               journal=Journal(tmp_path / "s_journal.jsonl"))
    session.start()
    client = create_app(session).test_client()
    state = wait(client, "labelling")
    assert state["classes"] == ["cat", "dog"] and not state["has_test_set"] and state["accuracy"] is None
    item = client.get("/api/batch").get_json()["items"][0]
    files = sorted(str(path.relative_to(tmp_path / "photos")) for path in (tmp_path / "photos").rglob("*.png"))
    assert item["source"] == files[item["pool_index"]]
    fake = np.array([k % 2 for k in range(len(pool))])  # a person's answers: alternate classes
    label_until_done(client, type("Answers", (), {"labels": fake}))
    session.close()
    rows = pd.read_csv(tmp_path / "s.csv")
    assert rows["test_accuracy"].isna().all() and rows["n_labelled"].iloc[-1] == AL["budget"]
    assert "cat" in client.get("/api/export?format=csv").data.decode()
