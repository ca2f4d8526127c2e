"""Activation functions: Tensor in, Tensor out, each forward beside its derivative.

Names, signatures and defaults are those of `keras.activations` (Keras 3). Every
function accepts a Tensor or an array-like, keeps the float dtype of its input, and
stays finite and silent (no NumPy RuntimeWarning) for inputs as large as ±1000;
`exponential` is the exception, because exp(1000) really is infinite. `sigmoid` and
`softmax` remember their logits (`out._logits`) so that cross-entropy losses can take
the stable logits path.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from . import backend
from .autograd import Tensor, ops
from .autograd.fused import SELU_ALPHA, SELU_SCALE
from .errors import unknown_identifier

_REGISTRY: dict = {}  # lower-case Keras name (and alias) -> function


def activation(fn=None, *, aliases=()):
    """Register `fn` under its `__name__` (and `aliases`) for `get(name)`."""
    def register(f):
        for key in (f.__name__, *aliases):
            _REGISTRY[key.lower()] = f
        return f
    return register(fn) if fn is not None else register


def _float(x) -> Tensor:
    """`x` as a float Tensor: integer and boolean inputs become `floatx()`."""
    x = ops.tensor(x)
    return x if x.dtype.kind == "f" else ops.cast(x, backend.floatx())


# ---- piecewise-linear family ------------------------------------------------------
@activation
def linear(x) -> Tensor:
    """Linear (identity) activation: f(x) = x. Returns the input Tensor itself."""
    return ops.tensor(x)


@activation
def relu(x, negative_slope=0.0, max_value=None, threshold=0.0) -> Tensor:
    """Rectified linear unit, optionally leaky, capped and shifted.

    f(x) = min(x, max_value) if x > threshold, else negative_slope * (x - threshold)

    With the defaults this is max(x, 0). As in Keras, a value equal to `threshold` is
    damped (`relu([5.0], threshold=5.0)` is 0), and `max_value` caps the result.

    Args:
        x: input Tensor or array-like.
        negative_slope: slope below the threshold. Defaults to 0.0.
        max_value: largest value returned, or None for no cap. Defaults to None.
        threshold: value below which inputs are damped. Defaults to 0.0.

    Returns:
        A Tensor of the shape and dtype of `x`.

    Example:
        >>> relu([-10.0, -5.0, 0.0, 5.0, 10.0], negative_slope=0.5).numpy()
        array([-5. , -2.5,  0. ,  5. , 10. ], dtype=float32)
    """
    x = _float(x)
    negative_slope, threshold = float(negative_slope), float(threshold)
    if negative_slope == 0 and max_value is None and threshold == 0:
        return ops.relu(x)
    d = x.data
    k = d.dtype.type
    above = d > threshold
    y = np.where(above, d, (d - threshold) * negative_slope)
    inside = above if max_value is None else above & (y < max_value)
    if max_value is not None:
        y = np.minimum(y, float(max_value))
    # NOTE: a kink gets the slope of its flat side (0 at threshold and at max_value).
    return ops.unary(x, y, lambda: np.where(
        inside, k(1), np.where(above, k(0), k(negative_slope))), "relu")


@activation
def leaky_relu(x, negative_slope=0.2) -> Tensor:
    """Leaky rectified linear unit: f(x) = x if x >= 0 else negative_slope * x.

    Args:
        x: input Tensor or array-like.
        negative_slope: slope for negative inputs. Defaults to 0.2 (Keras 3
            function; the `LeakyReLU` layer defaults to 0.3).

    Returns:
        A Tensor of the shape and dtype of `x`.
    """
    x, negative_slope = _float(x), float(negative_slope)
    d = x.data
    k = d.dtype.type
    pos = d > 0
    y = np.where(pos, d, d * negative_slope)
    return ops.unary(x, y, lambda: np.where(pos, k(1), k(negative_slope)),
                     "leaky_relu")


@activation
def relu6(x) -> Tensor:
    """ReLU capped at 6: f(x) = min(max(x, 0), 6)."""
    return relu(x, max_value=6.0)


@activation
def hard_sigmoid(x) -> Tensor:
    """Piecewise-linear sigmoid: f(x) = relu6(x + 3) / 6 = clip(x/6 + 1/2, 0, 1).

    Reference:
        Keras 3 `keras.activations.hard_sigmoid` (Keras 2 used the slope 0.2).
    """
    x = _float(x)
    d = x.data
    k = d.dtype.type
    y = np.clip(d + 3.0, 0.0, 6.0) / 6.0
    return ops.unary(x, y, lambda: np.where((d > -3) & (d < 3), k(1 / 6), k(0)),
                     "hard_sigmoid")


@activation(aliases=("hard_swish",))
def hard_silu(x) -> Tensor:
    """Hard SiLU (hard swish): f(x) = x * relu6(x + 3) / 6.

    Reference:
        Howard et al., 2019, https://arxiv.org/abs/1905.02244
    """
    x = _float(x)
    d = x.data
    k = d.dtype.type
    y = d * (np.clip(d + 3.0, 0.0, 6.0) / 6.0)
    return ops.unary(x, y, lambda: np.where(
        d < -3, k(0), np.where(d > 3, k(1), d * (1 / 3) + 0.5)), "hard_silu")


hard_swish = hard_silu


# ---- exponential family -----------------------------------------------------------
@activation
def elu(x, alpha=1.0) -> Tensor:
    """Exponential linear unit: f(x) = x if x > 0 else alpha * (exp(x) - 1).

    Args:
        x: input Tensor or array-like.
        alpha: scale of the negative part. Defaults to 1.0.

    Returns:
        A Tensor of the shape and dtype of `x`.

    Reference:
        Clevert et al., 2016, https://arxiv.org/abs/1511.07289
    """
    x, alpha = _float(x), float(alpha)
    d = x.data
    pos = d > 0
    y = np.where(pos, d, np.expm1(np.minimum(d, 0)) * alpha)  # min: no exp overflow
    # for x <= 0: d/dx alpha*(e^x - 1) = alpha*e^x = y + alpha
    return ops.unary(x, y, lambda: np.where(pos, d.dtype.type(1), y + alpha), "elu")


@activation
def selu(x) -> Tensor:
    """Scaled ELU: f(x) = scale * x if x > 0 else scale * alpha * (exp(x) - 1).

    alpha = 1.6732632423543772 and scale = 1.0507009873554805 keep zero mean and unit
    variance through layers initialised with `lecun_normal`.

    Reference:
        Klambauer et al., 2017, https://arxiv.org/abs/1706.02515
    """
    x = _float(x)
    d = x.data
    pos = d > 0
    scale_alpha = SELU_SCALE * SELU_ALPHA
    y = np.where(pos, d * SELU_SCALE, np.expm1(np.minimum(d, 0)) * scale_alpha)
    return ops.unary(x, y, lambda: np.where(pos, d.dtype.type(SELU_SCALE),
                                            y + scale_alpha), "selu")


@activation
def exponential(x) -> Tensor:
    """Exponential activation: f(x) = exp(x) (inf beyond log of the largest float)."""
    return ops.exp(_float(x))


# ---- sigmoid family ---------------------------------------------------------------
@activation
def sigmoid(x) -> Tensor:
    """Logistic sigmoid: f(x) = 1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2.

    The output remembers its input in `out._logits = ("sigmoid", x)`, so that
    `binary_crossentropy` can use the stable logits formula.

    Example:
        >>> sigmoid([0.0]).numpy()
        array([0.5], dtype=float32)
    """
    x = _float(x)
    out = ops.sigmoid(x)
    out._logits = ("sigmoid", x)
    return out


@activation
def tanh(x) -> Tensor:
    """Hyperbolic tangent: f(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))."""
    return ops.tanh(_float(x))


@activation
def softplus(x) -> Tensor:
    """Softplus: f(x) = log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|))."""
    return ops.softplus(_float(x))


@activation
def softsign(x) -> Tensor:
    """Softsign: f(x) = x / (1 + |x|); f'(x) = 1 / (1 + |x|)^2."""
    x = _float(x)
    d = x.data
    r = 1.0 / (1.0 + np.abs(d))
    return ops.unary(x, d * r, lambda: r * r, "softsign")


@activation(aliases=("swish",))
def silu(x) -> Tensor:
    """SiLU, also called swish: f(x) = x * s, s = sigmoid(x); f'(x) = s(1 + x(1 - s)).

    Reference:
        Ramachandran et al., 2017, https://arxiv.org/abs/1710.05941
    """
    x = _float(x)
    d = x.data
    s = ops.stable_sigmoid(d)
    return ops.unary(x, d * s, lambda: s * (1.0 + d * (1.0 - s)), "silu")


swish = silu


@activation
def mish(x) -> Tensor:
    """Mish: f(x) = x * t, t = tanh(softplus(x)); f'(x) = t + x sigmoid(x) (1 - t^2).

    Reference:
        Misra, 2019, https://arxiv.org/abs/1908.08681
    """
    x = _float(x)
    d = x.data
    t = np.tanh(np.maximum(d, 0) + np.log1p(np.exp(-np.abs(d))))
    return ops.unary(x, d * t, lambda: t + d * ops.stable_sigmoid(d) * (1.0 - t * t),
                     "mish")


# ---- GELU -------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _erfc_fit(double: bool) -> tuple:
    """Coefficients (highest power first), t_min and z_max of `_erfc`'s fit."""
    # float64: |error| < 1e-14 up to z = 26 (erfc(26) ~ 6e-296); float32: ~4e-8
    # relative up to z = 9 (erfc(9) ~ 4e-37). Beyond z_max, erfc is taken as 0.
    degree, zmax = (22, 26.0) if double else (9, 9.0)
    tmin = 1.0 / (1.0 + 0.5 * zmax)

    def g(y):  # g = log(erfc(z) / t) + z^2 at t(y), z = 2/t - 2
        t = tmin + (y + 1.0) * (0.5 * (1.0 - tmin))
        z = 2.0 / t - 2.0
        return np.array([math.log(math.erfc(a) / b) + a * a for a, b in zip(z, t)])
    cheb = np.polynomial.chebyshev
    coeffs = cheb.cheb2poly(cheb.chebinterpolate(g, degree))
    return tuple(float(c) for c in coeffs[::-1]), tmin, zmax


def _erfc(z: np.ndarray, double: bool) -> np.ndarray:
    """erfc(z) for float64 z >= 0 (NaN passes through), to float64 or float32 accuracy.

    erfc(z) = t * exp(g(t) - z^2), t = 1 / (1 + z/2), the form of Numerical Recipes'
    `erfcc`. g is smooth on t in (0, 1]; its Chebyshev interpolant is computed once from
    `math.erfc` (degree 22 when `double`, else 9) and evaluated by Horner's rule.
    """
    coeffs, tmin, zmax = _erfc_fit(double)
    zc = np.minimum(z, zmax)
    t = 1.0 / (1.0 + 0.5 * zc)
    y = (t - tmin) * (2.0 / (1.0 - tmin)) - 1.0
    g = np.full_like(y, coeffs[0])
    for c in coeffs[1:]:  # power-basis coefficients are all below 1: no cancellation
        g *= y
        g += c
    g -= zc * zc
    out = t * np.exp(g)
    out[z > zmax] = 0.0
    return out


_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@activation
def gelu(x, approximate=False) -> Tensor:
    """Gaussian error linear unit: f(x) = x * Phi(x), Phi the standard normal CDF.

    exact:        f(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
    approximate:  f(x) = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))

    erf needs no SciPy: `_erfc` is a Chebyshev fit evaluated in float64, accurate to
    1e-14 for float64 inputs and to about one ulp for float32 (Abramowitz-Stegun 7.1.26
    would give only 1.5e-7).

    Args:
        x: input Tensor or array-like.
        approximate: use the tanh approximation. Defaults to False, as
            `keras.activations.gelu` (only `keras.ops.gelu` defaults to True).

    Returns:
        A Tensor of the shape and dtype of `x`.

    Example:
        >>> gelu([1.0]).numpy()
        array([0.8413447], dtype=float32)

    Reference:
        Hendrycks & Gimpel, 2016, https://arxiv.org/abs/1606.08415
    """
    x = _float(x)
    d = x.data
    if approximate:
        # NOTE: clip the cubic's argument: the gate is exactly 0 or 1 beyond |x| = 20
        # anyway, and x^3 would overflow float32 for |x| > 1e12.
        xc = np.clip(d, -20.0, 20.0)
        u = _SQRT_2_OVER_PI * (xc + 0.044715 * xc * xc * xc)
        # (1 + tanh u) / 2 = sigmoid(2u), written with e = exp(-2|u|) so that nothing
        # cancels (1 + tanh(u) loses every digit in float32 for x < -5).
        e = np.exp(-2.0 * np.abs(u))
        s = np.where(u >= 0, 1.0, e) / (1.0 + e)

        def dy_dx_tanh():  # s + x * s'(2u) * 2u', with s(1 - s) = e / (1 + e)^2
            du = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * xc * xc)
            return s + d * (2.0 * e / ((1.0 + e) * (1.0 + e))) * du
        return ops.unary(x, d * s, dy_dx_tanh, "gelu")
    w = d.astype(np.float64, copy=False)  # the fit's degree follows d's precision
    z = np.abs(w) * _SQRT_HALF
    half_erfc = 0.5 * _erfc(z, double=d.dtype.itemsize >= 8)
    cdf = np.where(w < 0, half_erfc, 1.0 - half_erfc)  # Phi(x) = erfc(-x/sqrt(2)) / 2

    def dy_dx():  # Phi(x) + x * phi(x), phi(x) = exp(-z^2) / sqrt(2 pi)
        zc = np.minimum(z, 30.0)
        pdf = np.exp(-zc * zc) * _INV_SQRT_2PI
        return (cdf + w * pdf).astype(d.dtype, copy=False)
    return ops.unary(x, (w * cdf).astype(d.dtype, copy=False), dy_dx, "gelu")


# ---- normalising activations ------------------------------------------------------
def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


@activation
def softmax(x, axis=-1) -> Tensor:
    """Softmax along `axis`: f(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x).

    The output remembers its input in `out._logits = ("softmax", x)`, so that
    `categorical_crossentropy` can use the stable logits formula.

    Args:
        x: input Tensor or array-like (the logits).
        axis: axis (or tuple of axes) to normalise over. Defaults to -1.

    Returns:
        A Tensor of the shape and dtype of `x` whose entries along `axis` sum to 1.

    Example:
        >>> softmax([0.0, 0.0]).numpy()
        array([0.5, 0.5], dtype=float32)
    """
    x = _float(x)
    axis = _axis(axis)
    out = ops.softmax(x, axis=axis)
    last = axis in (-1, x.ndim - 1) if isinstance(axis, int) else False
    out._logits = ("softmax", x) if last else ("softmax", x, axis)
    return out


@activation
def log_softmax(x, axis=-1) -> Tensor:
    """Log-softmax along `axis`: f(x) = x - logsumexp(x), stable for any magnitude."""
    return ops.log_softmax(_float(x), axis=_axis(axis))


# ---- lookup and serialisation -----------------------------------------------------
_FUSABLE = ((relu, "relu"), (tanh, "tanh"), (elu, "elu"), (selu, "selu"))


def fused_name(fn):
    """The key of `fn` in `autograd.fused.INPLACE_ACTIVATIONS`, or None.

    Only the registered functions with their default parameters qualify: Dense may
    then apply them in place. sigmoid is left out on purpose: its output must keep its
    logits, so Dense computes it as a separate node.
    """
    return next((name for f, name in _FUSABLE if fn is f), None)


def serialize(fn) -> str:
    """The Keras name of an activation ("relu"; swish serialises as "silu").

    A custom function serialises as its `__name__`; None as "linear".
    """
    if fn is None:
        return "linear"
    name = getattr(fn, "__name__", None)
    if name is None:
        if hasattr(fn, "get_config"):
            return {"class_name": type(fn).__name__, "config": fn.get_config()}
        raise TypeError(f"Cannot serialize activation {fn!r}: it has no __name__.")
    return name


def deserialize(config):
    """Return the activation named by `config`.

    `config` is a name, or a dict in Keras 2 form {"class_name": "relu", ...} or in
    Keras 3 function form {"class_name": "function", "config": "relu", ...}.
    """
    if isinstance(config, dict):
        inner = config.get("config")
        name = inner if isinstance(inner, str) else config.get("class_name")
        if not isinstance(name, str):
            raise ValueError(f"Cannot deserialize an activation from {config!r}: "
                             "expected a 'class_name' or a string 'config'.")
        config = name
    if not isinstance(config, str):
        raise TypeError("An activation config must be a string or a dict. "
                        f"Received: {config!r}")
    try:
        return _REGISTRY[config.lower()]
    except KeyError:
        raise unknown_identifier("activation", config, _REGISTRY) from None


def get(identifier):
    """Return an activation function for `identifier`.

    None -> linear; a name (case-insensitive, aliases "swish" and "hard_swish"
    included) or a dict -> the registered function; a callable -> itself.

    Example:
        >>> get("ReLU") is relu, get("swish") is silu, get(None) is linear
        (True, True, True)
    """
    if identifier is None:
        return linear
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret activation identifier: {identifier!r}. "
                    "Expected a name, a dict, a callable or None.")


__all__ = ["activation", "deserialize", "fused_name", "get", "serialize", "swish",
           "hard_swish", *sorted({f.__name__ for f in _REGISTRY.values()})]
