"""Smoke test of the benchmark harness (benchmarks/run.py): it runs and writes its JSON.

Only glassnet and the NumPy workers, so neither torch nor JAX is needed; W7 runs on
Fashion-MNIST when it is on disk and on random data of its shape otherwise. Nothing here is
about speed: one 1-step round per case, any positive time passes.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("W1", "W5", "W6", "W7")


def test_quick_run_writes_every_case(tmp_path):
    out = tmp_path / "quick.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--no-startup",
         "--frameworks", "glassnet,glassnet-step,numpy,gemm",
         "--workloads", ",".join(WORKLOADS), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    report = json.loads(out.read_text())
    cases = {c["workload"]: c for c in report["cases"]}
    assert set(cases) == set(WORKLOADS)
    for name, case in cases.items():
        assert not case["errors"], (name, case["errors"])
        assert not case.get("loss_mismatch"), (name, case["first_loss"])
        for fw, by_mode in case["results"].items():
            for mode, r in by_mode.items():
                assert r["median_ms"] > 0, (name, fw, mode)
    expected = {"W1": ("train", "infer"), "W5": ("infer",), "W6": ("train", "infer"),
                "W7": ("fit",)}
    for name, modes in expected.items():
        timed = {m for r in cases[name]["results"].values() for m in r}
        assert timed == set(modes), (name, timed)
    assert "train" in cases["W6"]["results"]["gemm"]
    assert "vs_gemm" in cases["W6"]["ratios"]["train"]["glassnet"]
    assert "fit" in cases["W7"]["results"]["glassnet"]
    assert "fit" in cases["W7"]["results"]["gemm"]  # the GEMM floor of an epoch
    w6 = cases["W6"]["ratios"]["train"]["glassnet"]
    assert "vs_numpy" in w6 and "fastest" not in w6, "the NumPy floor is no peer"
    assert out.with_suffix(".md").read_text().startswith("# glassnet benchmarks")
