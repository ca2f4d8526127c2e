"""The lab (glassnet.lab, `glassnet lab ...`) and the plots (glassnet.plot).

The experiments run in "smoke" mode here (tiny subsets, one seed): these tests check the
mechanics and the output format, not the claims (`glassnet lab all --quick` does that).
"""
import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from glassnet import cli, lab
from glassnet.lab import base, data, runner

TEN = ["init-activations", "init-training", "batchnorm", "optimizers", "schedules",
       "activations", "transfer", "pretraining", "overfitting", "vanishing-gradients"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def generated(monkeypatch):
    """Run on the generated stand-in data (no Fashion-MNIST needed, same in every CI)."""
    monkeypatch.setenv("GLASSNET_LAB_DATA", "generated")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")


# ---- listing and the command line --------------------------------------------------------
def test_lab_list_names_ten_experiments(capsys):
    assert cli.main(["lab", "list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == TEN
    assert lab.names() == TEN
    for name in TEN:
        module = lab.get(name)
        assert module.NAME == name and module.TITLE and module.SETUP


def test_unknown_experiment_is_rejected_with_the_valid_names(capsys):
    assert cli.main(["lab", "run", "no-such-thing", "--smoke"]) == 2
    assert "init-activations" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Expected one of"):
        lab.get("no-such-thing")


def test_python_dash_m_glassnet_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "glassnet", "lab", "list"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr
    assert "vanishing-gradients" in out.stdout


# ---- every experiment, smoke mode --------------------------------------------------------
def test_every_experiment_runs_and_writes_a_well_formed_report(tmp_path, generated):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    entries = lab.run(TEN, mode="smoke", out=str(out), jobs=1, log=None)
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == entries
    assert {e["experiment"] for e in entries} == set(TEN)
    for e in entries:
        assert {"experiment", "claim", "supported", "seeds", "metrics",
                "published"} <= set(e)
        assert isinstance(e["supported"], bool) and isinstance(e["claim"], str)
        assert isinstance(e["metrics"], dict) and isinstance(e["published"], dict)
        assert e["seeds"] == [0]
        assert not e["claim"].endswith("could not be summarised"), e["note"]
        assert e["mode"] == "smoke" and e["data"]
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "Traceback" not in html
    for name in TEN:  # each experiment has a section with at least one inlined figure
        section = html.split(f"<section id='{name}'>")[1].split("</section>")[0]
        assert "data:image/png;base64," in section, name
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(images) == len(list((out / "figures").glob("*.png")))
    import base64
    assert all(base64.b64decode(img).startswith(PNG) for img in images)
    assert html.count("✓") + html.count("✗") >= len(entries)


def test_cli_run_writes_the_report(tmp_path, generated, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "r"
    code = cli.main(["lab", "run", "init-activations", "--smoke", "--out", str(out),
                     "--jobs", "1"])
    assert code == 0
    assert (out / "index.html").exists() and (out / "results.json").exists()
    assert "✓ init-activations" in capsys.readouterr().out


# ---- the runner: picklable tasks, executors, failures ------------------------------------
def test_tasks_are_plain_picklable_tuples_and_seeds_follow_the_mode():
    tasks = runner.make_tasks(TEN, "quick")
    for name, config, seed in tasks:
        assert name in TEN and isinstance(config, dict) and isinstance(seed, int)
        pickle.loads(pickle.dumps((name, config, seed)))
    per = {}
    for name, config, seed in tasks:
        per.setdefault(name, set()).add(seed)
    assert all(seeds == {0, 1, 2} for seeds in per.values())  # >= 3 seeds in quick mode
    base.set_seed_count(5)
    try:
        assert base.seeds("quick") == [0, 1, 2, 3, 4]
    finally:
        base.set_seed_count(None)


def test_process_pool_gives_the_same_results_as_in_process():
    tasks = runner.make_tasks(["init-activations"], "smoke")[:3]
    serial = runner.run_tasks(tasks, jobs=1)
    parallel = runner.run_tasks(tasks, jobs=2)
    key = lambda r: (r["config"]["config"], r["seed"])  # noqa: E731
    for a, b in zip(sorted(serial, key=key), sorted(parallel, key=key)):
        assert a["error"] is None and b["error"] is None
        assert a["output"]["layers"][4]["std"] == b["output"]["layers"][4]["std"]


def test_any_executor_with_map_can_run_the_tasks(tmp_path, generated):
    pytest.importorskip("matplotlib")

    class Recording:  # stands in for a Ray pool: only `map` is used
        def __init__(self):
            self.seen = []

        def map(self, fn, tasks):
            tasks = list(tasks)
            self.seen.extend(pickle.loads(pickle.dumps(t)) for t in tasks)
            return [fn(t) for t in tasks]

    executor = Recording()
    entries = lab.run(["init-activations"], mode="smoke", out=str(tmp_path), log=None,
                      executor=executor)
    assert len(executor.seen) == 6 and entries and all(e["supported"] for e in entries)


def test_a_failing_run_is_reported_not_fatal(tmp_path, monkeypatch, generated):
    pytest.importorskip("matplotlib")
    module = lab.get("init-activations")

    def broken(config, seed):
        raise RuntimeError("boom in the worker")

    monkeypatch.setattr(module, "run", broken)
    result = runner.execute_task(("init-activations", {"config": "ReLU, He"}, 0))
    assert result["output"] is None and "boom in the worker" in result["error"]
    entries = lab.run(["init-activations"], mode="smoke", out=str(tmp_path), jobs=1,
                      log=None)
    assert len(entries) == 1 and entries[0]["supported"] is False
    assert "boom in the worker" in (tmp_path / "index.html").read_text(encoding="utf-8")


# ---- data ----------------------------------------------------------------------------------
def test_generated_clothes_is_balanced_deterministic_and_in_range():
    x, y = data.generated_clothes(200, seed=3)
    x2, y2 = data.generated_clothes(200, seed=3)
    assert x.shape == (200, 28, 28) and x.dtype == np.float32
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.bincount(y, minlength=10).tolist() == [20] * 10


def test_fashion_split_shapes_on_generated_data(generated):
    split = data.fashion(300, n_val=50, n_test=40)
    assert split.source == "generated"
    assert split.x_train.shape == (300, 784) and split.y_train.shape == (300,)
    assert split.x_val.shape == (50, 784) and split.x_test.shape == (40, 784)


def test_format_of_numbers_over_seeds():
    assert base.fmt(base.stat([0.825, 0.827, 0.822])) == "0.825 ± 0.003"
    assert base.fmt(base.stat([0.5])) == "0.500"
    assert base.fmt(1.5e-6) == "1.50e-06"
    assert base.fmt([0.1, 0.25]) == "0.100 · 0.250"
    assert base.fmt(0.0) == "0" and base.fmt(0.0042) == "0.0042"


# ---- plots ---------------------------------------------------------------------------------
def test_activation_histograms_from_arrays_pairs_and_grids():
    pytest.importorskip("matplotlib")
    from glassnet import plot
    rng = np.random.default_rng(0)
    acts = {f"layer {i}": rng.random(1000) for i in range(1, 6)}
    fig = plot.activation_histograms(acts, value_range=(0, 1), title="five layers")
    assert len([a for a in fig.axes if a.axison]) == 5
    assert plot.to_png(fig).startswith(PNG)
    pair = np.histogram(rng.random(100), bins=10)
    grid = {"run a": {"l1": pair, "l2": pair}, "run b": {"l1": pair}}
    fig = plot.activation_histograms(grid)
    assert len([a for a in fig.axes if a.axison]) == 3
    record = {"step": 0, "layers": {"dense": {"hist": pair}, "dense_1": {"hist": pair}}}
    assert len(plot.activation_histograms(record).axes) == 2


def test_training_curves_of_histories_and_seed_lists(tmp_path):
    pytest.importorskip("matplotlib")
    from glassnet import plot

    class FakeHistory:
        history = {"loss": [1.0, 0.5, 0.25], "val_accuracy": [0.5, 0.7, 0.8]}

    runs = {"adam": FakeHistory(), "sgd": [[1.0, 0.9, 0.8], [1.1, 0.95, 0.85]],
            "dict": {"loss": [2.0, 1.0, 0.5], "val_accuracy": [0.3, 0.4, 0.5]}}
    fig = plot.training_curves({k: v for k, v in runs.items()}, "loss", logy=True)
    assert plot.save(fig, tmp_path / "c.png") and (tmp_path / "c.png").read_bytes()[:8] == PNG
    two = plot.training_curves({"adam": FakeHistory()}, ["loss", "val_accuracy"])
    assert len(two.axes) == 2
    with pytest.raises(KeyError, match="val_accuracy"):
        plot.training_curves({"sgd": {"loss": [1.0]}}, "val_accuracy")


def test_gradient_norms_from_monitor_records():
    pytest.importorskip("matplotlib")
    from glassnet import plot
    records = [{"step": s, "layers": {
        "dense": {"grad_norm": {"kernel": 1e-3 * (s + 1), "bias": 1.0}},
        "dense_1": {"grad_norm": {"kernel": 1.0 + s}},
        "batch_normalization": {"grad_norm": {"gamma": 0.5, "beta": 0.1}}}}
        for s in range(0, 100, 25)]
    fig = plot.gradient_norms(records, title="norms")
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["dense", "dense_1", "batch_normalization"]
    assert np.allclose(lines[0].get_ydata(), [1e-3, 2.6e-2, 5.1e-2, 7.6e-2])
    assert np.allclose(lines[2].get_ydata(), np.hypot(0.5, 0.1))  # no kernel: all weights
    assert plot.to_png(fig).startswith(PNG)


def test_optimizer_paths_follow_saitos_update_rules():
    from glassnet import optimizers, plot
    sgd = plot.optimizer_path(optimizers.SGD(learning_rate=0.95), steps=2)
    # x ← x − η ∇f with ∇f = (x/10, 2y): (−7, 2) → (−6.335, −1.8) → (−5.733, 1.62)
    assert np.allclose(sgd[1], [-6.335, -1.8]) and np.allclose(sgd[2], [-5.73318, 1.62])
    paths = {k: plot.optimizer_path(o) for k, o in plot.saito_optimizers().items()}
    for label, path in paths.items():
        assert path.shape == (31, 2)
        start, end = plot.saito_function(*path[0]), plot.saito_function(*path[-1])
        assert end < 0.05 * start, label  # every optimizer gets close to the minimum
    adagrad = paths["AdaGrad(1.5)"]
    # Saito's AdaGrad from h = 0: the first step moves each coordinate by exactly lr
    assert np.allclose(adagrad[1], [-7 + 1.5, 2 - 1.5], atol=1e-5)
    pytest.importorskip("matplotlib")
    fig = plot.optimizer_paths(paths, title="x²/20 + y²")
    assert len(fig.axes) == 4 and plot.to_png(fig).startswith(PNG)


def test_vanishing_gradients_records_without_the_diagnostics_monitor(monkeypatch, generated):
    module = lab.get("vanishing-gradients")
    config = dict(runner.make_tasks(["vanishing-gradients"], "smoke")[0][1], net="sigmoid")
    with_monitor = module.run(config, 0)
    monkeypatch.setattr(module, "_monitor", lambda: None)  # fall back to the epoch probe
    probed = module.run(config, 0)
    for out in (with_monitor, probed):
        first = out["records"][0]["layers"]
        assert list(first)[:2] == ["dense 1", "dense 2"] and "output" in first
        assert first["dense 1"]["grad_norm"]["kernel"] < first["output"]["grad_norm"]["kernel"]
    assert probed["findings"] is None
