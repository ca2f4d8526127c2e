"""Tests of glassnet.initializers: formulas, seeds, dtypes, lookup and configs.

Every statistical check computes its expected value from the published formula in the
test itself (never from the module), and draws enough samples that a wrong constant
(a missing factor 2, the wrong fan, a missing 0.8796 correction) fails clearly.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from glassnet import backend
from glassnet import initializers as inits

SHAPE = (400, 300)  # fan_in = 400, fan_out = 300, 120,000 samples
TRUNC = 0.87962566103423978  # std of N(0, 1) cut to [-2, 2]

RANDOM_CLASSES = [
    inits.RandomNormal,
    inits.RandomUniform,
    inits.TruncatedNormal,
    inits.VarianceScaling,
    inits.GlorotNormal,
    inits.GlorotUniform,
    inits.HeNormal,
    inits.HeUniform,
    inits.LecunNormal,
    inits.LecunUniform,
    inits.Orthogonal,
]
ALL_CLASSES = RANDOM_CLASSES + [inits.Identity, inits.Zeros, inits.Ones, inits.Constant]


@pytest.fixture(autouse=True)
def _restore_backend_state():
    yield
    backend.set_global_seed(None)
    backend.set_floatx("float32")


def _check_normal(w, mean, std, rel=0.02):
    n = w.size
    assert abs(w.mean() - mean) < 5 * std / math.sqrt(n), (w.mean(), mean)
    assert w.std() == pytest.approx(std, rel=rel)


def _check_uniform(w, low, high):
    assert w.min() >= low and w.max() <= high  # <=: a float32 cast may round up
    span = high - low  # ... and the draws fill the whole range:
    assert w.min() < low + 0.01 * span and w.max() > high - 0.01 * span
    assert w.std() == pytest.approx(span / math.sqrt(12), rel=0.02)


def _check_truncated(w, std_before_cut, sample_std, rel=0.03):
    assert np.abs(w).max() <= 2 * std_before_cut * (1 + 1e-6)  # nothing beyond 2 stddev
    assert np.abs(w).max() > 1.95 * std_before_cut  # ... but the tails reach the cut
    assert abs(w.mean()) < 5 * sample_std / math.sqrt(w.size)
    assert w.std() == pytest.approx(sample_std, rel=rel)


# ---- basic distributions -------------------------------------------------------------
def test_random_normal_matches_mean_and_stddev():
    w = inits.RandomNormal(mean=0.3, stddev=0.7, seed=0)(SHAPE)
    _check_normal(w, 0.3, 0.7)


def test_random_normal_defaults_are_keras():
    backend.set_global_seed(0)
    init = inits.RandomNormal()
    assert (init.mean, init.stddev, init.seed) == (0.0, 0.05, None)
    _check_normal(init(SHAPE), 0.0, 0.05)


def test_random_uniform_bounds_and_defaults():
    _check_uniform(inits.RandomUniform(-0.2, 0.6, seed=1)(SHAPE), -0.2, 0.6)
    _check_uniform(inits.RandomUniform(seed=2)(SHAPE), -0.05, 0.05)


def test_truncated_normal_cuts_at_two_stddev():
    w = inits.TruncatedNormal(mean=0.1, stddev=0.5, seed=3)(SHAPE)
    assert w.min() >= 0.1 - 2 * 0.5 - 1e-6 and w.max() <= 0.1 + 2 * 0.5 + 1e-6
    assert w.std() == pytest.approx(TRUNC * 0.5, rel=0.02)
    assert abs(w.mean() - 0.1) < 0.01


def test_truncation_constant_is_std_of_the_cut_normal():
    # Independent check of 0.8796...: std of N(0, 1) restricted to [-2, 2].
    p = math.erf(2 / math.sqrt(2))
    var = 1 - 2 * 2 * math.exp(-2) / math.sqrt(2 * math.pi) / p
    assert math.sqrt(var) == pytest.approx(TRUNC, abs=1e-12)


# ---- fans ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, fans",
    [
        ((), (1, 1)),
        ((7,), (7, 7)),
        ((400, 300), (400, 300)),
        ((5, 16, 32), (5 * 16, 5 * 32)),  # 1-D conv kernel
        ((3, 3, 16, 32), (3 * 3 * 16, 3 * 3 * 32)),  # 2-D conv kernel
    ],
)
def test_compute_fans(shape, fans):
    assert inits.compute_fans(shape) == fans


def test_compute_fans_with_explicit_axes():
    assert inits.compute_fans((2, 3, 4), input_axes=[0, 1], output_axes=[2]) == (6, 4)


# ---- VarianceScaling and its presets -------------------------------------------------
@pytest.mark.parametrize("scale", [0.5, 2.0])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize(
    "distribution", ["truncated_normal", "untruncated_normal", "uniform"]
)
def test_variance_scaling_formula(scale, mode, distribution):
    n = {"fan_in": 400, "fan_out": 300, "fan_avg": 350}[mode]
    w = inits.VarianceScaling(scale, mode, distribution, seed=4)(SHAPE)
    std = math.sqrt(scale / n)
    if distribution == "uniform":
        limit = math.sqrt(3 * scale / n)
        _check_uniform(w, -limit, limit)
    elif distribution == "untruncated_normal":
        _check_normal(w, 0.0, std)
        assert np.abs(w).max() > 2.5 * std  # really untruncated
    else:
        _check_truncated(w, std / TRUNC, std)


# Each preset's formula as published (Glorot 2010, He 2015, LeCun 1998), in the test.
PRESETS = [
    (inits.GlorotUniform, "uniform", lambda fi, fo: math.sqrt(6 / (fi + fo))),
    (inits.GlorotNormal, "normal", lambda fi, fo: math.sqrt(2 / (fi + fo))),
    (inits.HeUniform, "uniform", lambda fi, fo: math.sqrt(6 / fi)),
    (inits.HeNormal, "normal", lambda fi, fo: math.sqrt(2 / fi)),
    (inits.LecunUniform, "uniform", lambda fi, fo: math.sqrt(3 / fi)),
    (inits.LecunNormal, "normal", lambda fi, fo: math.sqrt(1 / fi)),
]


@pytest.mark.parametrize(
    "cls, kind, formula", PRESETS, ids=[p[0].__name__ for p in PRESETS]
)
@pytest.mark.parametrize("shape", [SHAPE, (3, 3, 32, 64)], ids=["dense", "conv"])
def test_preset_formula(cls, kind, formula, shape):
    fan_in, fan_out = (400, 300) if len(shape) == 2 else (9 * 32, 9 * 64)
    w = cls(seed=5)(shape)
    if kind == "uniform":
        limit = formula(fan_in, fan_out)  # the bound, not a std
        _check_uniform(w, -limit, limit)
    else:
        std = formula(fan_in, fan_out)  # the sample std, after the 0.8796 correction
        _check_truncated(w, std / TRUNC, std)


def test_he_normal_std_is_sqrt_2_over_fan_in_not_2_over_sqrt():
    w = inits.HeNormal(seed=6)(SHAPE)
    assert w.std() == pytest.approx(math.sqrt(2 / 400), rel=0.03)
    assert abs(w.std() - 2 / math.sqrt(400)) > 0.2 * (2 / math.sqrt(400))


def test_rank_one_shape_uses_its_length_as_both_fans():
    w = inits.LecunUniform(seed=7)((100_000,))
    limit = math.sqrt(3 / 100_000)
    _check_uniform(w, -limit, limit)


def test_presets_are_variance_scaling_with_fixed_constants():
    he = inits.HeNormal()
    assert isinstance(he, inits.VarianceScaling)
    assert (he.scale, he.mode, he.distribution) == (2.0, "fan_in", "truncated_normal")
    gu = inits.GlorotUniform()
    assert (gu.scale, gu.mode, gu.distribution) == (1.0, "fan_avg", "uniform")
    assert he.get_config() == {"seed": None}


def test_variance_scaling_defaults_and_normal_alias():
    vs = inits.VarianceScaling()
    assert (vs.scale, vs.mode, vs.distribution) == (1.0, "fan_in", "truncated_normal")
    assert (
        inits.VarianceScaling(distribution="Normal").distribution == "truncated_normal"
    )


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"scale": 0.0}, ["scale", "0.0"]),
        ({"scale": -1}, ["scale", "-1"]),
        ({"mode": "fan"}, ["mode", "'fan'", "fan_avg"]),
        ({"distribution": "gaussian"}, ["distribution", "'gaussian'", "uniform"]),
    ],
)
def test_variance_scaling_rejects_bad_arguments(kwargs, words):
    with pytest.raises(ValueError) as err:
        inits.VarianceScaling(**kwargs)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize(
    "seed, error",
    [("abc", TypeError), (1.5, TypeError), (True, TypeError), (-1, ValueError)],
)
def test_bad_seed_is_rejected(seed, error):
    with pytest.raises(error, match="seed"):
        inits.HeNormal(seed=seed)


# ---- orthogonal, identity, constants -------------------------------------------------
@pytest.mark.parametrize("shape", [(50, 20), (20, 50), (30, 30), (3, 3, 4, 8)])
def test_orthogonal_is_orthonormal(shape):
    w = inits.Orthogonal(seed=8)(shape)
    assert w.shape == shape and w.dtype == np.float32
    m = w.reshape(-1, shape[-1]).astype(np.float64)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-5)


@pytest.mark.parametrize("shape", [(12, 5), (5, 12)])
def test_orthogonal_follows_the_sign_corrected_qr_recipe(shape):
    # Recipe: A ~ N(0, 1) of (max, min) from default_rng(seed); A = QR;
    # W = gain * Q * sign(diag(R)), transposed when rows < cols.
    a = np.random.default_rng(4).normal(size=(12, 5))
    q, r = np.linalg.qr(a)
    w = q * np.sign(np.diag(r))
    expected = 1.5 * (w if shape[0] >= shape[1] else w.T)
    got = inits.Orthogonal(gain=1.5, seed=4)(shape, dtype="float64")
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert np.all(np.diag(w.T @ a) > 0)  # sign correction: R has a positive diagonal


def test_orthogonal_gain_and_rank_check():
    w = inits.Orthogonal(gain=2.0, seed=9)((10, 10)).astype(np.float64)
    np.testing.assert_allclose(w.T @ w, 4 * np.eye(10), atol=1e-4)
    with pytest.raises(ValueError, match="rank"):
        inits.Orthogonal()((5,))


def test_orthogonal_draws_differ_with_seed_and_are_not_trivially_signed():
    a, b = inits.Orthogonal(seed=1)((8, 8)), inits.Orthogonal(seed=2)((8, 8))
    assert not np.allclose(a, b)
    assert not np.allclose(np.abs(a), np.eye(8))


def test_identity():
    np.testing.assert_array_equal(inits.Identity()((3, 3)), np.eye(3))
    np.testing.assert_array_equal(inits.Identity(gain=0.5)((2, 4)), 0.5 * np.eye(2, 4))
    with pytest.raises(ValueError, match="2-D"):
        inits.Identity()((2, 2, 2))


def test_constants():
    np.testing.assert_array_equal(inits.Zeros()((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(inits.Ones()((4,)), np.ones(4))
    np.testing.assert_array_equal(inits.Constant(2.5)((2, 2)), np.full((2, 2), 2.5))
    assert inits.Constant().value == 0.0
    assert inits.Ones()((3,), dtype="int32").dtype == np.int32
    with pytest.raises(TypeError, match="value"):
        inits.Constant("two")


# ---- dtypes --------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_dtype_default_is_floatx_and_float64_on_request(cls):
    assert cls()((6, 6)).dtype == np.float32
    assert cls()((6, 6), dtype="float64").dtype == np.float64
    assert type(cls()((6, 6))) is np.ndarray
    backend.set_floatx("float64")
    assert cls()((6, 6)).dtype == np.float64


@pytest.mark.parametrize("cls", RANDOM_CLASSES, ids=lambda c: c.__name__)
def test_random_initializers_need_float_dtype(cls):
    assert cls(seed=0)((6, 6), dtype="float16").dtype == np.float16
    with pytest.raises(ValueError, match="int32"):
        cls()((6, 6), dtype="int32")


def test_float32_and_float64_draws_agree():
    a = inits.HeNormal(seed=3)((20, 10))
    b = inits.HeNormal(seed=3)((20, 10), dtype="float64")
    np.testing.assert_allclose(a, b, rtol=1e-6)


# ---- seeds ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", RANDOM_CLASSES, ids=lambda c: c.__name__)
def test_int_seed_gives_the_same_values_on_every_call(cls):
    init = cls(seed=11)
    a, b = init((30, 20)), init((30, 20))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, cls(seed=11)((30, 20)))
    assert not np.array_equal(a, cls(seed=12)((30, 20)))


@pytest.mark.parametrize("cls", RANDOM_CLASSES, ids=lambda c: c.__name__)
def test_unseeded_draws_anew_and_follows_the_global_seed(cls):
    backend.set_global_seed(1)
    a, b = cls()((30, 20)), cls()((30, 20))
    backend.set_global_seed(1)
    c, d = cls()((30, 20)), cls()((30, 20))
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, d)
    assert not np.array_equal(a, b)
    init = cls()
    assert not np.array_equal(init((30, 20)), init((30, 20)))


def test_generator_seed_advances_and_is_reproducible():
    init = inits.GlorotUniform(seed=np.random.default_rng(5))
    a, b = init((30, 20)), init((30, 20))
    assert not np.array_equal(a, b)
    again = inits.GlorotUniform(seed=np.random.default_rng(5))
    np.testing.assert_array_equal(again((30, 20)), a)
    assert init.get_config() == {"seed": None}  # a Generator is not JSON


# ---- lookup --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, cls",
    [
        ("he_normal", inits.HeNormal),
        ("HeNormal", inits.HeNormal),
        ("HE_NORMAL", inits.HeNormal),
        ("glorot_uniform", inits.GlorotUniform),
        ("GlorotUniform", inits.GlorotUniform),
        ("lecun_normal", inits.LecunNormal),
        ("random_normal", inits.RandomNormal),
        ("normal", inits.RandomNormal),
        ("uniform", inits.RandomUniform),
        ("truncated_normal", inits.TruncatedNormal),
        ("variance_scaling", inits.VarianceScaling),
        ("orthogonal", inits.Orthogonal),
        ("OrthogonalInitializer", inits.Orthogonal),
        ("identity", inits.Identity),
        ("zeros", inits.Zeros),
        ("zero", inits.Zeros),
        ("ones", inits.Ones),
        ("one", inits.Ones),
        ("constant", inits.Constant),
    ],
)
def test_get_string(name, cls):
    a, b = inits.get(name), inits.get(name)
    assert type(a) is cls and a is not b


def test_get_unknown_name_suggests():
    with pytest.raises(ValueError) as err:
        inits.get("he_normall")
    assert 'Did you mean "he_normal"' in str(err.value)
    assert "glorot_uniform" in str(err.value)


def test_get_dict_instance_class_callable_none():
    keras3 = {
        "module": "keras.initializers",
        "class_name": "VarianceScaling",
        "config": {
            "scale": 2.0,
            "mode": "fan_avg",
            "distribution": "uniform",
            "seed": 3,
        },
        "registered_name": None,
    }
    vs = inits.get(keras3)
    assert (vs.scale, vs.mode, vs.distribution, vs.seed) == (
        2.0,
        "fan_avg",
        "uniform",
        3,
    )
    keras2 = {"class_name": "GlorotUniform", "config": {"seed": None}}
    assert type(inits.get(keras2)) is inits.GlorotUniform
    init = inits.HeUniform()
    assert inits.get(init) is init
    assert type(inits.get(inits.Ones)) is inits.Ones

    def fn(shape, dtype=None):
        return np.full(shape, 7.0, dtype)

    assert inits.get(fn) is fn
    assert inits.get(None) is None
    with pytest.raises(ValueError, match="42"):
        inits.get(42)


def test_function_style_aliases_build_initializers():
    he = inits.he_normal(seed=None)  # as in `keras.initializers.he_normal(seed=None)`
    assert isinstance(he, inits.Initializer) and isinstance(he, inits.HeNormal)
    pairs = {
        "he_normal": "HeNormal",
        "he_uniform": "HeUniform",
        "glorot_normal": "GlorotNormal",
        "glorot_uniform": "GlorotUniform",
        "lecun_normal": "LecunNormal",
        "lecun_uniform": "LecunUniform",
        "random_normal": "RandomNormal",
        "random_uniform": "RandomUniform",
        "truncated_normal": "TruncatedNormal",
        "variance_scaling": "VarianceScaling",
        "orthogonal": "Orthogonal",
        "identity": "Identity",
        "zeros": "Zeros",
        "ones": "Ones",
        "constant": "Constant",
    }
    for alias, name in pairs.items():
        assert getattr(inits, alias) is getattr(inits, name)
        assert alias in inits.__all__ and name in inits.__all__
    for name in inits.__all__:
        assert hasattr(inits, name)
    assert inits.constant(3.0)((1,))[0] == 3.0


def test_user_subclass_registers_but_never_shadows_builtins():
    class Halves(inits.Initializer):
        def __call__(self, shape, dtype=None):
            return np.full(shape, 0.5, backend.standardize_dtype(dtype))

    assert type(inits.get("halves")) is Halves
    assert type(inits.deserialize(inits.serialize(Halves()))) is Halves

    class HeNormal(inits.Initializer):  # noqa: N801 - same name as a built-in
        pass

    assert type(inits.get("he_normal")) is inits.HeNormal


# ---- configs -------------------------------------------------------------------------
CONFIGURED = [
    inits.RandomNormal(mean=0.1, stddev=0.3, seed=1),
    inits.RandomUniform(minval=-1.0, maxval=2.0, seed=2),
    inits.TruncatedNormal(mean=-0.2, stddev=0.4, seed=3),
    inits.VarianceScaling(scale=3.0, mode="fan_out", distribution="uniform", seed=4),
    inits.GlorotNormal(seed=5),
    inits.GlorotUniform(seed=6),
    inits.HeNormal(seed=7),
    inits.HeUniform(seed=8),
    inits.LecunNormal(seed=9),
    inits.LecunUniform(seed=10),
    inits.Orthogonal(gain=1.5, seed=11),
    inits.Identity(gain=3.0),
    inits.Zeros(),
    inits.Ones(),
    inits.Constant(value=4.0),
]


@pytest.mark.parametrize("init", CONFIGURED, ids=lambda i: type(i).__name__)
def test_config_round_trip(init):
    config = init.get_config()
    clone = type(init).from_config(json.loads(json.dumps(config)))
    assert type(clone) is type(init) and clone.get_config() == config
    np.testing.assert_array_equal(clone((8, 8)), init((8, 8)))
    ser = inits.serialize(init)
    assert ser == {
        "module": "keras.initializers",
        "class_name": type(init).__name__,
        "config": config,
        "registered_name": None,
    }
    again = inits.deserialize(json.loads(json.dumps(ser)))
    assert type(again) is type(init) and again.get_config() == config


def test_serialize_none_and_string_pass_through():
    assert inits.serialize(None) is None and inits.serialize("zeros") == "zeros"


# ---- Keras 3 as an outside oracle ----------------------------------------------------
_KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "numpy"
    try:
        import keras
    except ImportError:
        print("NO_KERAS"); sys.exit(0)
    import numpy as np
    K, out, configs = keras.initializers, {}, {}
    for name in json.loads(sys.argv[2]):
        for tag, shape in (("dense", (400, 300)), ("conv", (3, 3, 32, 64))):
            init = getattr(K, name)(seed=21)
            out[name + "/" + tag] = np.asarray(init(shape, "float32"))
        configs[name] = getattr(K, name)(seed=21).get_config()
    vs = K.VarianceScaling(2.0, "fan_avg", "uniform", seed=3)
    out["vs"], configs["vs"] = np.asarray(vs((50, 40))), K.serialize(vs)
    np.savez(sys.argv[1], **out)
    print("CONFIGS" + json.dumps(configs))
""")
_KERAS_NAMES = [
    "GlorotUniform",
    "GlorotNormal",
    "HeNormal",
    "HeUniform",
    "LecunNormal",
    "LecunUniform",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "Orthogonal",
]


@pytest.fixture(scope="module")
def keras_draws(tmp_path_factory):
    """Draws and configs from Keras 3 (NumPy backend), run in a separate process."""
    if importlib.util.find_spec("keras") is None:  # not imported here: backend choice
        pytest.skip("keras is not installed")
    path = tmp_path_factory.mktemp("keras") / "draws.npz"
    proc = subprocess.run(
        [sys.executable, "-c", _KERAS_SCRIPT, str(path), json.dumps(_KERAS_NAMES)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if "NO_KERAS" in proc.stdout:
        pytest.skip("keras is installed but cannot be imported with the numpy backend")
    assert proc.returncode == 0, proc.stderr[-2000:]
    configs = json.loads(proc.stdout.split("CONFIGS", 1)[1])
    with np.load(path) as data:
        return dict(data), configs


@pytest.mark.parametrize("name", _KERAS_NAMES)
def test_statistics_match_keras(keras_draws, name):
    draws, _ = keras_draws
    for tag, shape in (("dense", (400, 300)), ("conv", (3, 3, 32, 64))):
        ours = getattr(inits, name)(seed=99)(shape)
        theirs = draws[f"{name}/{tag}"]
        assert theirs.shape == ours.shape
        assert ours.std() == pytest.approx(theirs.std(), rel=0.03)
        assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=0.15)


@pytest.mark.parametrize("name", _KERAS_NAMES)
def test_seeded_draws_and_configs_equal_keras(keras_draws, name):
    draws, configs = keras_draws
    for tag, shape in (("dense", (400, 300)), ("conv", (3, 3, 32, 64))):
        ours = getattr(inits, name)(seed=21)(shape)
        np.testing.assert_allclose(ours, draws[f"{name}/{tag}"], rtol=0, atol=1e-6)
    theirs = {
        k: v
        for k, v in configs[name].items()
        if not (k in ("input_axes", "output_axes") and v is None)
    }
    assert getattr(inits, name)(seed=21).get_config() == theirs


def test_variance_scaling_serialization_equals_keras(keras_draws):
    draws, configs = keras_draws
    ours = inits.VarianceScaling(2.0, "fan_avg", "uniform", seed=3)
    np.testing.assert_array_equal(ours((50, 40)), draws["vs"])
    keras_ser = dict(configs["vs"])
    keras_ser["config"] = {
        k: v for k, v in keras_ser["config"].items() if v is not None
    }
    assert inits.serialize(ours) == keras_ser
    assert inits.deserialize(configs["vs"]).get_config() == ours.get_config()
