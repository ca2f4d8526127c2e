"""The tiers import only downward (DEVELOPERS-NOTES.md); two sanctioned upward calls."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "src" / "glassnet"

TIERS = {
    "backend": 0, "errors": 0, "native": 0,
    "autograd": 1,
    "initializers": 2, "activations": 2, "losses": 2, "metrics": 2, "regularizers": 2,
    "constraints": 2, "ops": 2, "config": 2,
    "layers": 3, "optimizers": 3,
    "training": 4,
    "models": 5,
    "saving": 6, "callbacks": 6, "diagnostics": 6, "datasets": 6, "utils": 6, "plot": 6,
    "lab": 7, "cli": 7, "__main__": 7,
}

# (importing module, imported top-level package): thin delegations inside methods, so that
# the Keras call style (`model.save(...)`, `model.diagnose(...)`) works.
SANCTIONED = {
    ("models", "saving"),
    ("models", "diagnostics"),
}


def _top(parts):
    return parts[0] if parts else None


def _imports(path):
    tree = ast.parse(path.read_text())
    rel = path.relative_to(PACKAGE).with_suffix("").parts
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[:-node.level]) if node.level <= len(rel) else []
                if rel[-1] == "__init__" and node.level == 1:
                    base = list(rel[:-1])
                elif rel[-1] == "__init__":
                    base = list(rel[:-1])[: len(rel) - node.level]
                target = base + (node.module.split(".") if node.module else [])
                if not node.module:  # `from . import x, y`
                    for alias in node.names:
                        yield node.lineno, base + [alias.name]
                    continue
                yield node.lineno, target
            elif node.module and node.module.startswith("glassnet"):
                yield node.lineno, node.module.split(".")[1:]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("glassnet."):
                    yield node.lineno, alias.name.split(".")[1:]


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or
                  p.parent != PACKAGE)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_imports(path):
    own = _top(path.relative_to(PACKAGE).with_suffix("").parts)
    own_tier = TIERS.get(own)
    assert own_tier is not None, f"{own} has no tier: add it to TIERS and DEVELOPERS-NOTES"
    for lineno, target in _imports(path):
        top = _top(target)
        if top is None or top == own or top not in TIERS:
            continue
        if (own, top) in SANCTIONED:
            continue
        assert TIERS[top] <= own_tier, (
            f"{path.relative_to(PACKAGE)}:{lineno} imports glassnet.{'.'.join(target)} "
            f"(tier {TIERS[top]}) from tier {own_tier}: upward import"
        )


def test_import_glassnet_loads_no_submodule():
    import subprocess
    import sys
    code = ("import sys, glassnet; print(sorted(m for m in sys.modules "
            "if m.startswith('glassnet.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(PACKAGE.parent)}, check=True).stdout
    assert out.strip() == "[]"


def test_keras_users_imports_load_nothing_numpy_does_not_need():
    """`import glassnet` with the names a Keras script touches first stays at NumPy's own
    cost: numpy.random (13 ms with the hashlib chain it pulls in) waits for the first
    weights drawn, difflib for the first mistyped name."""
    import json
    import subprocess
    import sys
    code = ("import json, sys, numpy; before = set(sys.modules); import glassnet as g; "
            "g.Sequential; g.layers.Dense; g.optimizers.Adam; g.losses; g.callbacks; "
            "print(json.dumps(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(PACKAGE.parent)}, check=True).stdout
    loaded = set(json.loads(out))
    assert not loaded & {"numpy.random", "difflib", "random", "hashlib", "inspect",
                         "tempfile", "csv", "matplotlib", "h5py"}, sorted(loaded)
