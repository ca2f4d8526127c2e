"""Tests of glassnet.activations and glassnet.layers.activation_layers.

Oracles: float64 central differences (gradcheck), plain-NumPy formulas written here
independently of the implementation, the examples of the Keras documentation, and,
when it is importable, PyTorch's own definitions.
"""
from __future__ import annotations

import doctest
import functools
import inspect
import math
import os
import sys
import warnings

import numpy as np
import pytest

from glassnet import activations, initializers
from glassnet.autograd import Tensor, fused, gradcheck
from glassnet.layers import activation_layers
from glassnet.layers.activation_layers import (ELU, Activation, LeakyReLU, PReLU, ReLU,
                                               Softmax)
from glassnet.layers.base import get_layer_class

A = activations

# Away from every kink (0, 0.5, 2, +-3, 6) by more than 0.05, so finite differences are
# taken on one smooth piece.
SMOOTH_X = np.array([[-7.3, -4.1, -2.7, -1.3], [-0.45, 0.2, 0.8, 1.55],
                     [2.6, 3.7, 5.2, 6.9]])

# (id, function of one Tensor). Every registered activation appears at least once.
CASES = [
    ("linear", A.linear),
    ("relu", A.relu),
    ("relu_leaky", functools.partial(A.relu, negative_slope=0.1)),
    ("relu_max_value", functools.partial(A.relu, max_value=2.0)),
    ("relu_threshold", functools.partial(A.relu, threshold=0.5, negative_slope=0.3)),
    ("relu_all", functools.partial(A.relu, negative_slope=0.2, max_value=6.0,
                                   threshold=0.5)),
    ("leaky_relu", A.leaky_relu),
    ("leaky_relu_0.5", functools.partial(A.leaky_relu, negative_slope=0.5)),
    ("relu6", A.relu6),
    ("elu", A.elu),
    ("elu_alpha", functools.partial(A.elu, alpha=0.7)),
    ("selu", A.selu),
    ("gelu", A.gelu),
    ("gelu_tanh", functools.partial(A.gelu, approximate=True)),
    ("silu", A.silu),
    ("swish", A.swish),
    ("softplus", A.softplus),
    ("softsign", A.softsign),
    ("hard_sigmoid", A.hard_sigmoid),
    ("hard_silu", A.hard_silu),
    ("hard_swish", A.hard_swish),
    ("mish", A.mish),
    ("exponential", A.exponential),
    ("sigmoid", A.sigmoid),
    ("tanh", A.tanh),
    ("softmax", A.softmax),
    ("softmax_axis0", functools.partial(A.softmax, axis=0)),
    ("log_softmax", A.log_softmax),
    ("log_softmax_axis0", functools.partial(A.log_softmax, axis=0)),
]
CASE_IDS = [c[0] for c in CASES]


def _base(fn):
    return fn.func if isinstance(fn, functools.partial) else fn


def test_every_registered_activation_has_a_case():
    covered = {_base(fn) for _, fn in CASES}
    assert set(A._REGISTRY.values()) <= covered


# ---- gradients -----------------------------------------------------------------------
@pytest.mark.parametrize("name, fn", CASES, ids=CASE_IDS)
def test_vjp_matches_finite_differences(name, fn):
    assert gradcheck(fn, SMOOTH_X.copy())


@pytest.mark.parametrize("name, fn", CASES, ids=CASE_IDS)
def test_vjp_near_zero_and_in_the_tails(name, fn):
    if _base(fn) is A.exponential:
        x = np.array([-30.0, -0.3, 0.07, 1.7, 40.0])
    else:
        x = np.array([-60.0, -12.5, -0.3, 0.07, 0.31, 12.5, 60.0])
    assert gradcheck(fn, x)


# ---- forward values against plain NumPy ----------------------------------------------
_erf = np.vectorize(math.erf)


def _np_relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    # Keras: x if x > threshold (capped at max_value), else slope * (x - threshold)
    y = np.where(x > threshold, x, negative_slope * (x - threshold))
    return y if max_value is None else np.minimum(y, max_value)


def _np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170, 1.0507009873554804934193

REFERENCES = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "relu_leaky": lambda x: _np_relu(x, 0.1),
    "relu_max_value": lambda x: _np_relu(x, max_value=2.0),
    "relu_threshold": lambda x: _np_relu(x, 0.3, threshold=0.5),
    "relu_all": lambda x: _np_relu(x, 0.2, 6.0, 0.5),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
    "leaky_relu_0.5": lambda x: np.where(x >= 0, x, 0.5 * x),
    "relu6": lambda x: np.minimum(np.maximum(x, 0), 6),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "elu_alpha": lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1)),
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * (np.exp(x) - 1)),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) *
                                                  (x + 0.044715 * x**3))),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "swish": lambda x: x / (1 + np.exp(-x)),
    "softplus": lambda x: np.log(1 + np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "hard_sigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
    "hard_silu": lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
    "hard_swish": lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
    "mish": lambda x: x * np.tanh(np.log(1 + np.exp(x))),
    "exponential": np.exp,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
    "softmax": _np_softmax,
    "softmax_axis0": lambda x: _np_softmax(x, axis=0),
    "log_softmax": lambda x: np.log(_np_softmax(x)),
    "log_softmax_axis0": lambda x: np.log(_np_softmax(x, axis=0)),
}


@pytest.mark.parametrize("name, fn", CASES, ids=CASE_IDS)
def test_forward_matches_numpy_reference(name, fn):
    x = np.linspace(-10.0, 10.0, 81).reshape(9, 9)  # includes 0, +-3, 6 and 0.5 steps
    got = fn(Tensor(x)).numpy()
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, REFERENCES[name](x), rtol=1e-10, atol=1e-12)


def test_gelu_exact_erf_accuracy_over_the_whole_range():
    x = np.linspace(-36.0, 36.0, 20001)
    # 0.5*x*erfc(-x/sqrt2) keeps relative accuracy in the far negative tail
    ref = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x])
    got = A.gelu(x.copy()).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-300)
    x32 = np.linspace(-12.0, 12.0, 4001).astype(np.float32)
    ref32 = np.array([0.5 * v * math.erfc(-v / math.sqrt(2))
                      for v in x32.astype(float)])
    np.testing.assert_allclose(A.gelu(x32).numpy(), ref32, rtol=3e-7, atol=1e-37)


def test_gelu_default_is_exact_as_keras_activations_gelu():
    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0], dtype=np.float32)
    # values printed in the Keras/TF documentation of activations.gelu (TF's float32 erf
    # is off by 1.8e-7 at -3: the exact value is -3 * Phi(-3) = -0.00404969)
    np.testing.assert_allclose(A.gelu(x).numpy(),
                               [-0.00404951, -0.15865529, 0.0, 0.8413447, 2.9959507],
                               rtol=1e-6, atol=3e-7)
    np.testing.assert_allclose(A.gelu(x, approximate=True).numpy(),
                               [-0.00363752, -0.15880796, 0.0, 0.841192, 2.9963627],
                               rtol=1e-6, atol=3e-7)


def test_gelu_tanh_float32_keeps_relative_accuracy_for_negative_inputs():
    x = np.array([-1.0, -3.0, -5.0, -8.0, -12.0], dtype=np.float32)
    xd = x.astype(np.float64)
    u = np.sqrt(2 / np.pi) * (xd + 0.044715 * xd**3)
    ref = xd * np.exp(2 * u) / (1 + np.exp(2 * u))  # 0.5 x (1 + tanh u), exactly
    np.testing.assert_allclose(A.gelu(x, approximate=True).numpy(), ref, rtol=2e-6,
                               atol=1e-44)  # gelu(-12) ~ 1e-61 underflows float32


@pytest.mark.parametrize("kwargs, expected", [
    ({}, [0.0, 0.0, 0.0, 5.0, 10.0]),
    ({"negative_slope": 0.5}, [-5.0, -2.5, 0.0, 5.0, 10.0]),
    ({"max_value": 5.0}, [0.0, 0.0, 0.0, 5.0, 5.0]),
    ({"threshold": 5.0}, [-0.0, -0.0, 0.0, 0.0, 10.0]),   # x == threshold is damped
])
def test_relu_matches_keras_docstring_examples(kwargs, expected):
    got = A.relu(np.array([-10, -5, 0.0, 5, 10]), **kwargs).numpy()
    np.testing.assert_array_equal(got, expected)


def test_leaky_relu_function_default_is_0_2():
    np.testing.assert_allclose(A.leaky_relu([-1.0, 2.0]).numpy(), [-0.2, 2.0],
                               rtol=1e-6)


# ---- numerical stability -------------------------------------------------------------
LIMITS = {  # f(-1000), f(+1000)
    "linear": (-1000, 1000), "relu": (0, 1000), "leaky_relu": (-200, 1000),
    "relu6": (0, 6), "elu": (-1, 1000), "selu": (-_SELU_SCALE * _SELU_ALPHA,
                                                 _SELU_SCALE * 1000),
    "gelu": (0, 1000), "silu": (0, 1000), "softplus": (0, 1000),
    "softsign": (-1000 / 1001, 1000 / 1001), "hard_sigmoid": (0, 1),
    "hard_silu": (0, 1000),
    "mish": (0, 1000), "sigmoid": (0, 1), "tanh": (-1, 1),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(set(A._REGISTRY) - {"exponential"}))
def test_stable_at_plus_minus_1000(name, dtype):
    fn = A.get(name)
    x = Tensor(np.array([[-1000.0, -80.0, 0.0, 80.0, 1000.0]] * 2, dtype=dtype),
               requires_grad=True)
    # Overflow, 0/0 and division by zero must not happen. Underflow to 0 (exp(-1000)) is
    # benign and silent by NumPy's default, so it stays ignored here.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            out = fn(x)
            out.backward(np.ones_like(out.data))
    assert np.all(np.isfinite(out.numpy())) and np.all(np.isfinite(x.grad))
    if name in LIMITS:
        rtol = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(out.numpy()[0, [0, -1]], LIMITS[name], rtol=rtol,
                                   atol=1e-30)
    if name in ("softmax", "log_softmax"):
        probs = np.exp(out.numpy()) if name == "log_softmax" else out.numpy()
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-6)


def test_exponential_is_finite_for_large_negative_inputs():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert A.exponential(np.array([-1000.0])).numpy()[0] == 0.0


def test_gelu_tanh_huge_float32_inputs_do_not_overflow():
    x = np.array([-3e30, 3e30], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for approximate in (False, True):
            np.testing.assert_array_equal(A.gelu(x, approximate=approximate).numpy(),
                                          [0.0, x[1]])


# ---- dtypes --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(A._REGISTRY))
def test_float32_in_float32_out_and_gradient(name):
    fn = A.get(name)
    x = Tensor(SMOOTH_X.astype(np.float32), requires_grad=True)
    out = fn(x)
    out.backward(np.ones_like(out.data))
    assert out.dtype == np.float32 and x.grad.dtype == np.float32
    ref = fn(Tensor(SMOOTH_X)).numpy()
    np.testing.assert_allclose(out.numpy(), ref, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["relu", "gelu", "silu", "softmax", "hard_silu",
                                  "elu"])
def test_float16_preserved(name):
    assert A.get(name)(SMOOTH_X.astype(np.float16)).dtype == np.float16


def test_lists_and_integers_become_floatx():
    assert A.relu([-1.0, 2.0]).dtype == np.float32
    assert A.sigmoid(np.array([1, 2])).dtype == np.float32
    np.testing.assert_array_equal(A.relu(np.array([-1, 2])).numpy(), [0.0, 2.0])


def test_linear_returns_the_same_tensor():
    x = Tensor([1.0, 2.0])
    assert A.linear(x) is x


# ---- logits for cross-entropy --------------------------------------------------------
@pytest.mark.parametrize("fn, tag", [(A.sigmoid, "sigmoid"), (A.softmax, "softmax")])
def test_sigmoid_and_softmax_record_their_logits(fn, tag):
    x = Tensor(SMOOTH_X, requires_grad=True)
    out = fn(x)
    assert out._logits[0] == tag and out._logits[1] is x
    assert A.tanh(x)._logits is None


def test_softmax_layer_and_activation_layer_record_logits():
    out = Activation("softmax")(SMOOTH_X)
    assert out._logits[0] == "softmax"
    np.testing.assert_allclose(out._logits[1].numpy(), SMOOTH_X.astype(np.float32))
    assert Softmax()(SMOOTH_X)._logits[0] == "softmax"
    assert Activation("sigmoid")(SMOOTH_X)._logits[0] == "sigmoid"


# ---- fusion --------------------------------------------------------------------------
def test_fused_name():
    pairs = ((A.relu, "relu"), (A.tanh, "tanh"), (A.elu, "elu"), (A.selu, "selu"))
    for fn, name in pairs:
        assert A.fused_name(fn) == name
        assert name in fused.INPLACE_ACTIVATIONS
    for fn in (A.sigmoid, A.softmax, A.linear, A.leaky_relu, A.gelu, None, np.tanh,
               functools.partial(A.relu, negative_slope=0.1), lambda x: A.relu(x)):
        assert A.fused_name(fn) is None


@pytest.mark.parametrize("name", ["relu", "tanh", "elu", "selu"])
def test_fused_inplace_version_agrees_with_the_function(name):
    fwd, bwd = fused.INPLACE_ACTIVATIONS[name]
    x = Tensor(SMOOTH_X.copy(), requires_grad=True)
    out = A.get(name)(x)
    g = np.random.default_rng(0).standard_normal(SMOOTH_X.shape)
    out.backward(g)
    y = fwd(SMOOTH_X.copy())
    np.testing.assert_allclose(y, out.numpy(), rtol=1e-14)
    np.testing.assert_allclose(bwd(g, y), x.grad, rtol=1e-12)


# ---- lookup and serialisation --------------------------------------------------------
@pytest.mark.parametrize("name", sorted(A._REGISTRY))
def test_get_serialize_round_trip(name):
    fn = A.get(name)
    assert A.get(A.serialize(fn)) is fn
    assert A.deserialize(A.serialize(fn)) is fn
    assert A.get(name.upper()) is fn


def test_aliases_and_special_identifiers():
    assert A.get("swish") is A.silu and A.swish is A.silu
    assert A.serialize(A.swish) == "silu"
    assert A.get("hard_swish") is A.hard_silu
    assert A.serialize(A.hard_swish) == "hard_silu"
    assert A.get(None) is A.linear
    assert A.get({"class_name": "relu", "config": {}}) is A.relu
    assert A.get({"module": "keras.activations", "class_name": "function",
                  "config": "tanh", "registered_name": None}) is A.tanh

    def my_act(x):
        return x

    assert A.get(my_act) is my_act
    assert A.serialize(my_act) == "my_act"


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match='Unknown activation.*Did you mean "sigmoid"'):
        A.get("sigmod")
    with pytest.raises(ValueError, match="relu"):
        A.deserialize("no_such_thing")
    with pytest.raises(TypeError, match="activation"):
        A.get(3)


def test_docstring_examples_run():
    for module in (activations, activation_layers):
        extra = {"np": np, "initializers": initializers}
        result = doctest.testmod(module, extraglobs=extra)
        assert result.failed == 0


# ---- layers --------------------------------------------------------------------------
LAYER_CASES = [
    (Activation, {"activation": "relu"}),
    (Activation, {"activation": "swish"}),
    (Activation, {"activation": A.gelu}),
    (ReLU, {}),
    (ReLU, {"max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5}),
    (LeakyReLU, {}),
    (LeakyReLU, {"negative_slope": 0.05}),
    (PReLU, {}),
    (PReLU, {"alpha_initializer": "ones", "shared_axes": [1]}),
    (ELU, {"alpha": 0.5}),
    (Softmax, {}),
    (Softmax, {"axis": [1, 2]}),
]


@pytest.mark.parametrize("cls, kwargs", LAYER_CASES,
                         ids=[f"{c.__name__}-{i}"
                              for i, (c, _) in enumerate(LAYER_CASES)])
def test_layer_shape_config_and_registry(cls, kwargs):
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    layer = cls(**kwargs)
    out = layer(x)
    assert out.shape == x.shape and out.dtype == np.float32
    assert layer.compute_output_shape((None, 3, 4)) == (None, 3, 4)
    config = layer.get_config()
    clone = cls.from_config(config)
    strip = lambda c: {k: v for k, v in c.items() if k != "name"}  # noqa: E731
    assert strip(clone.get_config()) == strip(config)
    np.testing.assert_allclose(clone(x).numpy(), out.numpy(), rtol=1e-6)
    assert get_layer_class(cls.__name__) is cls
    assert len(layer.trainable_weights) == (1 if cls is PReLU else 0)


def test_layer_configs_hold_exactly_the_init_arguments():
    base = {"name", "trainable", "dtype"}
    assert set(ReLU().get_config()) == base | {"max_value", "negative_slope",
                                               "threshold"}
    assert set(LeakyReLU().get_config()) == base | {"negative_slope"}
    assert set(ELU().get_config()) == base | {"alpha"}
    assert set(Softmax().get_config()) == base | {"axis"}
    assert set(Activation("relu").get_config()) == base | {"activation"}
    assert set(PReLU().get_config()) == base | {
        "alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes"}
    assert Activation("swish").get_config()["activation"] == "silu"
    assert ELU(alpha=0.5).get_config()["alpha"] == 0.5


@pytest.mark.parametrize("kwargs, x, expected", [  # the Keras ReLU layer docs
    ({}, [-3.0, -1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 2.0]),
    ({"max_value": 1.0}, [-3.0, -1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 1.0]),
    ({"negative_slope": 1.0}, [-3.0, -1.0, 0.0, 2.0], [-3.0, -1.0, 0.0, 2.0]),
    ({"threshold": 1.5}, [-3.0, -1.0, 1.0, 2.0], [0.0, 0.0, 0.0, 2.0]),
    ({"max_value": 10, "negative_slope": 0.5, "threshold": 0},
     [-10.0, -5.0, 0.0, 5.0, 10.0], [-5.0, -2.5, 0.0, 5.0, 10.0]),
])
def test_relu_layer_semantics(kwargs, x, expected):
    np.testing.assert_array_equal(ReLU(**kwargs)(np.array([x])).numpy()[0], expected)


@pytest.mark.parametrize("kwargs", [{"max_value": -1.0}, {"negative_slope": -0.1},
                                    {"threshold": -1.0}, {"negative_slope": None}])
def test_relu_layer_rejects_negative_arguments(kwargs):
    with pytest.raises(ValueError, match="ReLU"):
        ReLU(**kwargs)


def test_leaky_relu_layer_default_and_legacy_alpha():
    assert LeakyReLU().negative_slope == 0.3
    np.testing.assert_allclose(LeakyReLU()(np.array([[-10.0, 5.0]])).numpy(),
                               [[-3.0, 5.0]])
    with pytest.warns(UserWarning, match="alpha"):
        layer = LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1 and "alpha" not in layer.get_config()
    with pytest.warns(UserWarning):  # a Keras 2 config still loads
        old = LeakyReLU.from_config({"alpha": 0.2, "name": "old"})
    assert old.negative_slope == 0.2
    with pytest.warns(UserWarning):  # both given, and equal: fine
        assert LeakyReLU(negative_slope=0.1, alpha=0.1).negative_slope == 0.1
    with pytest.raises(ValueError, match="alpha"):
        LeakyReLU(negative_slope=0.3, alpha=0.1)
    with pytest.raises(ValueError, match="negative_slope"):
        LeakyReLU(negative_slope=-1.0)


def _prelu_fn(layer):
    def fn(x, alpha):  # run the layer with `alpha` standing in for its weight
        weight, layer.alpha = layer.alpha, alpha
        try:
            return layer.call(x)
        finally:
            layer.alpha = weight
    return fn


@pytest.mark.parametrize("shape, shared_axes, alpha_shape", [
    ((3, 4), None, (4,)),
    ((2, 3, 4, 5), [1, 2], (1, 1, 5)),
    ((2, 3, 4), 2, (3, 1)),
])
def test_prelu_gradients_wrt_input_and_alpha(shape, shared_axes, alpha_shape):
    rng = np.random.default_rng(2)
    layer = PReLU(shared_axes=shared_axes, dtype="float64")
    layer.build(shape)
    assert layer.alpha.shape == alpha_shape and layer.alpha.dtype == np.float64
    x = rng.standard_normal(shape)
    x[np.abs(x) < 0.05] = 0.5  # keep clear of the kink
    alpha = rng.uniform(0.05, 0.5, alpha_shape)
    assert gradcheck(_prelu_fn(layer), x, alpha)
    np.testing.assert_allclose(_prelu_fn(layer)(Tensor(x), Tensor(alpha)).numpy(),
                               np.where(x > 0, x, alpha * x))


def test_prelu_trains_alpha_through_the_layer_call():
    layer = PReLU(alpha_initializer=initializers.Constant(0.25), dtype="float64")
    x = np.array([[-4.0, 2.0], [-1.0, -3.0]])
    out = layer(x)
    np.testing.assert_allclose(out.numpy(), [[-1.0, 2.0], [-0.25, -0.75]])
    out.backward(np.ones_like(out.data))
    np.testing.assert_allclose(layer.alpha.grad, [-5.0, -3.0])  # sum of min(x, 0)
    assert layer.alpha.path.endswith("/alpha")


def test_prelu_rejects_bad_shared_axes():
    with pytest.raises(ValueError, match="shared_axes"):
        PReLU(shared_axes=[0])(np.ones((2, 3)))
    with pytest.raises(ValueError, match="shared_axes"):
        PReLU(shared_axes=[3])(np.ones((2, 3)))


def test_elu_and_softmax_layers():
    x = np.array([[-1.0, 0.5, 2.0]])
    np.testing.assert_allclose(ELU(alpha=0.5)(x).numpy(),
                               [[0.5 * (np.exp(-1) - 1), 0.5, 2.0]], rtol=1e-6)
    np.testing.assert_allclose(Softmax()(np.array([[1.0, 2.0, 1.0]])).numpy(),
                               [[0.21194157, 0.5761169, 0.21194157]], rtol=1e-6)
    cube = np.random.default_rng(3).standard_normal((2, 3, 4))
    np.testing.assert_allclose(Softmax(axis=[1, 2])(cube).numpy().sum(axis=(1, 2)), 1.0,
                               rtol=1e-6)
    masked = Softmax()(np.array([[1.0, 2.0, 3.0]]),
                       mask=np.array([[True, True, False]]))
    np.testing.assert_allclose(masked.numpy(),
                               [[1 / (1 + np.e), np.e / (1 + np.e), 0.0]],
                               rtol=1e-6, atol=1e-7)


# ---- PyTorch, when installed ---------------------------------------------------------
def _torch_cases():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    return torch, {
        "gelu": (A.gelu, lambda t: F.gelu(t)),
        "gelu_tanh": (functools.partial(A.gelu, approximate=True),
                      lambda t: F.gelu(t, approximate="tanh")),
        "mish": (A.mish, F.mish),
        "selu": (A.selu, F.selu),
        "elu": (functools.partial(A.elu, alpha=0.7), lambda t: F.elu(t, alpha=0.7)),
        "softplus": (A.softplus, F.softplus),
        "hard_sigmoid": (A.hard_sigmoid, F.hardsigmoid),
        "hard_silu": (A.hard_silu, F.hardswish),
        "silu": (A.silu, F.silu),
        "softsign": (A.softsign, F.softsign),
        "leaky_relu": (A.leaky_relu, lambda t: F.leaky_relu(t, 0.2)),
        "relu6": (A.relu6, F.relu6),
        "log_softmax": (A.log_softmax, lambda t: F.log_softmax(t, dim=-1)),
    }


@pytest.mark.parametrize("name", [
    "gelu", "gelu_tanh", "mish", "selu", "elu", "softplus", "hard_sigmoid",
    "hard_silu", "silu", "softsign", "leaky_relu", "relu6", "log_softmax"])
def test_matches_torch(name):
    torch, cases = _torch_cases()
    ours, theirs = cases[name]
    x = np.concatenate([SMOOTH_X.ravel(), -SMOOTH_X.ravel(), [-25.0, -9.0, 9.0, 25.0]])
    x = x.reshape(4, -1)
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    g = np.random.default_rng(4).standard_normal(x.shape)
    yt.backward(torch.tensor(g))
    leaf = Tensor(x.copy(), requires_grad=True)
    y = ours(leaf)
    y.backward(g)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(leaf.grad, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


# ---- Keras, when installed -------------------------------------------------------------
def _keras():
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "numpy")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("name", sorted(A._REGISTRY))
def test_matches_keras_function_values_and_defaults(name):
    keras = _keras()
    theirs = getattr(keras.activations, name)
    ours = A.get(name)
    ours_sig, theirs_sig = inspect.signature(ours), inspect.signature(theirs)
    assert ({k: p.default for k, p in ours_sig.parameters.items()}
            == {k: p.default for k, p in theirs_sig.parameters.items()})
    x = np.linspace(-8.0, 8.0, 33, dtype=np.float32).reshape(3, 11)
    np.testing.assert_allclose(ours(x).numpy(), np.asarray(theirs(x)), rtol=1e-5,
                               atol=1e-6)
    assert keras.activations.serialize(theirs) == A.serialize(ours)


@pytest.mark.parametrize("cls", [Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax])
def test_layer_signatures_and_config_keys_match_keras(cls):
    keras = _keras()
    theirs = getattr(keras.layers, cls.__name__)
    ours_params = inspect.signature(cls.__init__).parameters
    theirs_params = inspect.signature(theirs.__init__).parameters
    assert ({k: p.default for k, p in ours_params.items()}
            == {k: p.default for k, p in theirs_params.items()})
    args = {"activation": "relu"} if cls is Activation else {}
    assert set(cls(**args).get_config()) <= set(theirs(**args).get_config()) | {"alpha"}
