"""Aggregation over seeds, the accuracy figure, and the command line (errors name the key, exit 2)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from asal.aggregate import compare_strategies, read_runs, summarize
from asal.cli import main
from asal.errors import BadData
from asal.plots import plot_accuracy


def fake_runs(tmp_path):
    paths = []
    for strategy, offset in (("random", 0.0), ("max-entropy", 0.02)):
        for seed in (0, 1, 2):
            n = np.array([10, 20, 30])
            frame = pd.DataFrame({
                "strategy": strategy, "seed": seed, "cycle": range(3), "n_labelled": n,
                "test_accuracy": 0.8 + offset + 0.05 * np.arange(3) + 0.01 * seed,
                "n_selected": [10, 10, 0], "selected_entropy": [0.3 + offset, 0.2, np.nan],
                "select_seconds": [0.1, 0.1, np.nan], "train_seconds": 1.0,
            })
            paths.append(tmp_path / f"{strategy}{seed}.csv")
            frame.to_csv(paths[-1], index=False)
    return paths


def test_summary_statistics(tmp_path):
    summary = summarize(read_runs(fake_runs(tmp_path)))
    assert len(summary) == 6
    row = summary[(summary.strategy == "random") & (summary.n_labelled == 20)].iloc[0]
    assert row.accuracy_mean == pytest.approx(0.86) and row.accuracy_min == pytest.approx(0.85)
    assert row.accuracy_max == pytest.approx(0.87) and row.n_seeds == 3
    table = compare_strategies(read_runs(fake_runs(tmp_path))).set_index("strategy")
    assert table.loc["max-entropy", "mean_accuracy_over_cycles"] == pytest.approx(0.88)
    assert table.loc["random", "final_accuracy"] == pytest.approx(0.91)


def test_bad_run_csv(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(BadData, match=r"x.csv: missing column"):
        read_runs([tmp_path / "x.csv"])


def test_plot_writes_a_pdf(tmp_path):
    summary = summarize(read_runs(fake_runs(tmp_path)))
    fig = plot_accuracy(summary, tmp_path / "acc.pdf", title="tiny")
    assert (tmp_path / "acc.pdf").read_bytes()[:5] == b"%PDF-"
    assert {t.get_text().split(" ")[0] for t in fig.axes[0].get_legend().get_texts()} == {"random", "max-entropy"}


def test_cli_summarize_and_plot(tmp_path):
    runs = [str(p) for p in fake_runs(tmp_path)]
    outputs = ["--out", str(tmp_path / "s.csv"), "--strategies-out", str(tmp_path / "t.csv")]
    assert main(["summarize", "--runs", *runs, *outputs]) == 0
    assert main(["plot-accuracy", "--summary", str(tmp_path / "s.csv"), "--out", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_errors_name_the_key_and_exit_2(tmp_path, capsys):
    code = main(["prepare-data", "--params", json.dumps({"source": "npz"}), "--pool", "p.h5", "--test", "t.h5"])
    assert code == 2 and "path" in capsys.readouterr().err
    code = main(["prepare-data", "--params", json.dumps({"pool_sise": 3}), "--pool", "p.h5", "--test", "t.h5"])
    assert code == 2 and "'pool_sise' was unexpected" in capsys.readouterr().err
    code = main(["prepare-data", "--pool", "p.h5", "--test", "t.h5"])
    assert code == 2 and "give either --params" in capsys.readouterr().err


def test_cli_prepare_data_from_config_file(tmp_path, npz_data):
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"experiments": {"tiny": {"data": {"source": "npz", "path": str(npz_data)}}}}))
    args = ["prepare-data", "--config", str(config), "--experiment", "tiny",
            "--pool", str(tmp_path / "p.h5"), "--test", str(tmp_path / "t.h5")]
    assert main(args) == 0 and (tmp_path / "p.h5").exists()
    assert main([*args[:4], "nope", *args[5:]]) == 2


def test_console_script_entry_point():
    script = Path(sys.executable).parent / "asal"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    for command in ("fetch-mnist", "prepare-data", "run-al", "summarize", "plot-accuracy"):
        assert command in out.stdout
