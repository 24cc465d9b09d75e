"""Aggregation over seeds, the accuracy figure, and the command line (errors name the key, exit 2)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from asal.aggregate import compare_strategies, read_runs, summarize
from asal.cli import main
from asal.errors import BadData
from asal.plots import plot_accuracy, plot_entropy, plot_samples, plot_timings
from asal.runfiles import ROW_COLUMNS


def fake_runs(tmp_path, strategies=(("random", 0.0), ("max-entropy", 0.02))):
    paths = []
    for strategy, offset in strategies:
        for seed in (0, 1, 2):
            n = np.array([10, 20, 30])
            frame = pd.DataFrame({
                "strategy": strategy, "seed": seed, "cycle": range(3), "n_labelled": n,
                "test_accuracy": 0.8 + offset + 0.05 * np.arange(3) + 0.01 * seed,
                "n_selected": [10, 10, 0], "selected_entropy": [0.3 + offset, 0.2, np.nan],
                "select_seconds": [0.1, 0.1, np.nan], "train_seconds": 1.0,
            }).reindex(columns=ROW_COLUMNS)
            if strategy.startswith("asal-"):
                frame.loc[:1, ["synthetic_entropy_start", "synthetic_entropy", "match_distance"]] = [0.1, 0.6, 4.0]
                frame.loc[:1, ["generate_seconds", "features_seconds", "search_seconds"]] = [0.06, 0.01, 0.02]
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


def test_asal_diagnostics_are_aggregated_and_plotted(tmp_path):
    runs = read_runs(fake_runs(tmp_path, (("random", 0.0), ("max-entropy", 0.02), ("asal-raw", 0.01))))
    summary = summarize(runs)
    asal = summary[(summary.strategy == "asal-raw") & (summary.n_labelled == 10)].iloc[0]
    assert asal.synthetic_entropy_mean == pytest.approx(0.6) and asal.match_distance_mean == pytest.approx(4.0)
    assert asal.generate_seconds_mean == pytest.approx(0.06)
    assert summary.loc[summary.strategy == "random", "synthetic_entropy_mean"].isna().all()
    table = compare_strategies(runs).set_index("strategy")
    assert table.loc["asal-raw", "mean_synthetic_entropy"] == pytest.approx(0.6)
    fig = plot_entropy(summary, tmp_path / "entropy.pdf")
    assert len(fig.axes) == 2  # selected entropy, and ASAL's synthetic against matched
    assert {t.get_text() for t in fig.axes[0].get_legend().get_texts()} == {"random", "max-entropy", "asal-raw"}
    plot_timings(summary, tmp_path / "timings.pdf")
    for name in ("entropy.pdf", "timings.pdf"):
        assert (tmp_path / name).read_bytes()[:5] == b"%PDF-"


def test_samples_figure(tmp_path):
    rng = np.random.default_rng(0)
    row = {"strategy": "asal-raw", "synthetic": rng.uniform(size=(4, 1, 6, 6)),
           "matched": rng.integers(0, 256, (4, 1, 6, 6), dtype=np.uint8), "pool_idx": np.arange(4),
           "labels": np.array(["5", "7", "5", "7"]), "entropy": np.full(4, 0.69), "matched_entropy": np.full(4, 0.1)}
    fig = plot_samples([row, dict(row, strategy="asal-disc")], tmp_path / "s.png", title="t")
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG" and len(fig.axes) == 2 * 2 * 4
    assert fig.axes[4].get_title() == "5 #0\nH=0.10"  # row 2, column 1: a matched sample's label, index, entropy


def test_bad_run_csv(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(BadData, match=r"x.csv: missing column"):
        read_runs([tmp_path / "x.csv"])


def test_plot_writes_a_pdf(tmp_path):
    summary = summarize(read_runs(fake_runs(tmp_path)))
    fig = plot_accuracy(summary, tmp_path / "acc.pdf", title="tiny")
    assert (tmp_path / "acc.pdf").read_bytes()[:5] == b"%PDF-"
    assert {t.get_text().split(" ")[0] for t in fig.axes[0].get_legend().get_texts()} == {"random", "max-entropy"}


def test_a_long_legend_goes_beside_the_curves(tmp_path):
    def legend_inside(strategies):
        runs = fake_runs(tmp_path, [(name, 0.001 * i) for i, name in enumerate(strategies)])
        fig = plot_accuracy(summarize(read_runs(runs)), tmp_path / "acc.png")
        canvas = FigureCanvasAgg(fig)  # the saved figure is closed: draw it again to measure it
        canvas.draw()
        renderer = canvas.get_renderer()
        legend, axes = fig.axes[0].get_legend().get_window_extent(renderer), fig.axes[0].get_window_extent(renderer)
        return legend.x1 <= axes.x1 + 1

    assert legend_inside(["random", "max-entropy"])
    assert not legend_inside(["random", "max-entropy", "margin", "least-confidence", "badge", "coreset",
                              "asal-raw", "asal-auto", "asal-disc"])


def test_full_is_a_horizontal_line(tmp_path):
    paths = fake_runs(tmp_path)
    full = pd.DataFrame({"strategy": "full", "seed": [0, 1], "cycle": 0, "n_labelled": 300, "test_accuracy": [0.97, 0.99],
                         "n_selected": 0, "train_seconds": 5.0}).reindex(columns=ROW_COLUMNS)
    full.to_csv(tmp_path / "full.csv", index=False)
    summary = summarize(read_runs([*paths, tmp_path / "full.csv"]))
    ax = plot_accuracy(summary, tmp_path / "acc.pdf").axes[0]
    line = next(l for l in ax.get_lines() if l.get_label().startswith("full"))
    assert list(line.get_ydata()) == [pytest.approx(98.0)] * 2 and "all 300 labels (2 seeds)" in line.get_label()
    assert ax.get_xlim()[1] < 100  # the bound does not stretch the axis to the pool size


def test_table_of_accuracies(tmp_path, capsys):
    runs = [str(p) for p in fake_runs(tmp_path)]
    main(["summarize", "--runs", *runs, "--out", str(tmp_path / "s.csv"), "--strategies-out", str(tmp_path / "t.csv")])
    capsys.readouterr()
    assert main(["table", "--summary", str(tmp_path / "s.csv"), "--at", "20", "25",
                 "--strategies", str(tmp_path / "t.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| strategy | 20 | 25 |"
    assert "| random | 86.00 [85.00, 87.00] |  |" in lines  # no cycle at 25 labels: an empty cell
    assert any(line.startswith("| max-entropy | 30 |") for line in lines)


def test_html_tables_for_the_report(tmp_path):
    from asal.aggregate import checkpoints

    runs = [str(p) for p in fake_runs(tmp_path)]
    main(["summarize", "--runs", *runs, "--out", str(tmp_path / "s.csv"), "--strategies-out", str(tmp_path / "t.csv")])
    summary = pd.read_csv(tmp_path / "s.csv")
    assert checkpoints(summary) == sorted(summary.n_labelled.unique())  # few sizes: all of them
    many = pd.DataFrame({"strategy": ["random"] * 39 + ["full"], "n_labelled": [*range(100, 2001, 50), 50000]})
    assert checkpoints(many) == [100, 500, 850, 1250, 1600, 2000]  # six, even over the 39 sizes, full aside
    out = tmp_path / "tables.html"
    assert main(["table", "--summary", str(tmp_path / "s.csv"), "--strategies", str(tmp_path / "t.csv"),
                 "--html", str(out), "--title", "tiny <exp>"]) == 0
    page = out.read_text()
    assert page.startswith("<!doctype html>") and page.count("<table") == 2 and "tiny &lt;exp&gt;" in page
    accuracy = page.split("<table")[1]
    assert re.findall(r"<th>(\d+)</th>", accuracy) == [str(n) for n in checkpoints(summary)]
    assert "<td>86.00 [85.00, 87.00]</td>" in accuracy
    assert "<th>accuracy at the end (%)</th>" in page.split("<table")[2]
    assert main(["table", "--summary", str(tmp_path / "s.csv"), "--html", str(tmp_path / "x.html")]) == 2
    assert not (tmp_path / "x.html").exists()


def test_cli_lists_the_strategies(capsys):
    from asal.strategies import STRATEGIES

    assert main(["strategies"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(STRATEGIES)
    described = dict(line.split(maxsplit=1) for line in lines)
    assert described["asal-auto-margin"].startswith("ASAL: maximise the margin of h(G(z))")
    assert described["gaal"].startswith("GAAL") and described["adba"].startswith("ADBA")
    assert all(len(text) > 20 for text in described.values())


def test_a_file_a_strategy_does_not_read_is_an_error():
    from asal.errors import BadConfig
    from asal.strategies.base import load_strategy

    with pytest.raises(BadConfig, match="'random' does not read --oracle"):
        load_strategy("random", files={"oracle": "models/x/oracle.pt"})
    with pytest.raises(BadConfig, match="'gaal' needs --gan, --oracle, --oracle-metrics"):
        load_strategy("gaal")


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
