"""Weight initializers with Keras 3 names, defaults, configs and sampling rules.

An initializer is a callable `init(shape, dtype=None) -> np.ndarray`. Glorot, He and
LeCun are presets of one `VarianceScaling` core with std = sqrt(scale / n). With an int
seed the draws are bit-identical to Keras 3 on its NumPy backend.

Example:
    >>> get("he_normal")((784, 100)).dtype
    dtype('float32')
"""

from __future__ import annotations

import math
import re

import numpy as np

from . import backend
from .errors import unknown_identifier

# fmt: off
__all__ = [
    "Initializer", "RandomNormal", "RandomUniform", "TruncatedNormal",
    "VarianceScaling", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform",
    "LecunNormal", "LecunUniform", "Orthogonal", "Identity", "Zeros", "Ones",
    "Constant", "IdentityInitializer", "OrthogonalInitializer",
    "random_normal", "random_uniform", "truncated_normal", "variance_scaling",
    "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal",
    "lecun_uniform", "orthogonal", "identity", "zeros", "ones", "constant",
    "compute_fans", "get", "serialize", "deserialize",
]
# fmt: on

_REGISTRY: dict = {}  # normalised name -> class
_NAMES: set = set()  # snake_case names, for error messages
_TRUNCATED_STD = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]


def _normalize(name) -> str:
    return str(name).lower().replace("_", "").replace("-", "")


def _snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _standardize_shape(shape) -> tuple:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if any(d is None or int(d) < 0 for d in shape):
        raise ValueError(
            "An initializer needs a fully defined, non-negative shape. "
            f"Received: shape={shape}"
        )
    return tuple(int(d) for d in shape)


def _float_dtype(dtype) -> np.dtype:
    dtype = backend.standardize_dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(
            "Random initializers need a float dtype (float16, float32, float64). "
            f"Received: dtype={dtype}"
        )
    return dtype


def compute_fans(shape, input_axes=None, output_axes=None) -> tuple:
    """Return `(fan_in, fan_out)` of a weight shape, by the Keras rules.

    rank 0: (1, 1); rank 1 (n,): (n, n); rank 2 (in, out): (in, out);
    rank > 2 (*spatial, in, out): rf = prod(spatial), (in * rf, out * rf).

    Args:
        shape: Integer shape tuple.
        input_axes: Optional axes whose sizes multiply into fan_in. Defaults to None.
        output_axes: Optional axes whose sizes multiply into fan_out. Defaults to None.

    Returns:
        `(fan_in, fan_out)` as ints.

    Example:
        >>> compute_fans((3, 3, 16, 32))
        (144, 288)
    """
    shape = _standardize_shape(shape)
    if input_axes is not None and output_axes is not None:
        return (
            math.prod(shape[a] for a in input_axes),
            math.prod(shape[a] for a in output_axes),
        )
    if len(shape) < 2:
        return (shape[0], shape[0]) if shape else (1, 1)
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class Initializer:
    """Base class: a callable `(shape, dtype=None) -> np.ndarray` with a config.

    Subclasses register under their class name, its snake_case form and `aliases`, so
    that `get()` and `deserialize()` find them. `dtype=None` means `backend.floatx()`.
    """

    aliases: tuple = ()  # extra lookup names, read from the class body only

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("_"):
            return
        for name in (cls.__name__, *cls.__dict__.get("aliases", ())):
            key, current = _normalize(name), _REGISTRY.get(_normalize(name))
            # NOTE: a user class never shadows a built-in ("he_normal" stays Keras's).
            builtin = current is not None and current.__module__ == __name__
            if not builtin or cls.__module__ == __name__:
                _REGISTRY[key] = cls
                _NAMES.add(_snake_case(name))

    def __call__(self, shape, dtype=None) -> np.ndarray:
        raise NotImplementedError(
            f"{type(self).__name__} must implement `__call__(self, shape, dtype=None)`."
        )

    def get_config(self) -> dict:
        """Return the `__init__` keyword arguments as a JSON-safe dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Initializer:
        """Rebuild an initializer from the output of `get_config()`."""
        return cls(**config)

    def clone(self) -> Initializer:
        """Return a new initializer with the same configuration."""
        return type(self).from_config(self.get_config())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _RandomInitializer(Initializer):
    """Owns the seed: an int gives the same draw on every call, as in Keras 3."""

    def __init__(self, seed=None):
        if isinstance(seed, (bool, np.bool_)) or not (
            seed is None or isinstance(seed, (int, np.integer, np.random.Generator))
        ):
            raise TypeError(
                "`seed` must be an int, a numpy Generator or None. "
                f"Received: seed={seed!r}"
            )
        if isinstance(seed, (int, np.integer)) and seed < 0:
            raise ValueError(f"`seed` must be non-negative. Received: seed={seed}")
        self.seed = seed

    def _rng(self) -> np.random.Generator:
        if isinstance(self.seed, (int, np.integer)):
            return np.random.default_rng(int(self.seed))  # fresh: same draw each call
        # NOTE: Keras fixes a random seed at construction; here an unseeded initializer
        # draws anew from the global stream on each call, so layers sharing an instance
        # differ and `backend.set_global_seed` still makes runs reproducible.
        return backend.make_rng(self.seed)

    def get_config(self) -> dict:
        seed = self.seed
        return {"seed": None if isinstance(seed, np.random.Generator) else seed}


# The samplers follow Keras's NumPy backend draw for draw (float64, then a cast).
def _normal(rng, shape, mean, stddev, dtype) -> np.ndarray:
    return np.asarray(rng.normal(loc=mean, scale=stddev, size=shape)).astype(dtype)


def _uniform(rng, shape, minval, maxval, dtype) -> np.ndarray:
    return np.asarray(rng.uniform(low=minval, high=maxval, size=shape)).astype(dtype)


def _truncated_normal(rng, shape, mean, stddev, dtype) -> np.ndarray:
    size, kept, count = math.prod(shape), [np.empty(0)], 0
    while count < size:  # redraw whole batches until enough lie within 2 stddev
        batch = rng.normal(loc=mean, scale=stddev, size=size)
        kept.append(batch[(batch >= mean - 2 * stddev) & (batch <= mean + 2 * stddev)])
        count += kept[-1].size
    return np.concatenate(kept)[:size].astype(dtype).reshape(shape)


class RandomNormal(_RandomInitializer):
    """Draws from a normal distribution: w ~ N(mean, stddev^2).

    Args:
        mean: Mean of the values. Defaults to 0.0.
        stddev: Standard deviation of the values. Defaults to 0.05.
        seed: An int (the same values on every call), a `np.random.Generator`
            (advances on each call) or None (the global stream). Defaults to None.

    Example:
        >>> RandomNormal(stddev=1.0, seed=0)((2, 3)).shape
        (2, 3)
    """

    aliases = ("normal",)

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev = mean, stddev
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _standardize_shape(shape), _float_dtype(dtype)
        return _normal(self._rng(), shape, self.mean, self.stddev, dtype)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomNormal):
    """Normal draws, where values beyond 2 stddev from the mean are redrawn.

    w ~ N(mean, stddev^2) restricted to [mean - 2 stddev, mean + 2 stddev];
    the sample std is then 0.8796 * stddev.

    Args:
        mean: Mean of the values. Defaults to 0.0.
        stddev: Standard deviation before truncation. Defaults to 0.05.
        seed: An int, a `np.random.Generator` or None. Defaults to None.
    """

    def __call__(self, shape, dtype=None):
        shape, dtype = _standardize_shape(shape), _float_dtype(dtype)
        return _truncated_normal(self._rng(), shape, self.mean, self.stddev, dtype)


class RandomUniform(_RandomInitializer):
    """Draws from a uniform distribution: w ~ U[minval, maxval).

    Args:
        minval: Lower bound (inclusive). Defaults to -0.05.
        maxval: Upper bound (exclusive). Defaults to 0.05.
        seed: An int, a `np.random.Generator` or None. Defaults to None.
    """

    aliases = ("uniform",)

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval = minval, maxval
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _standardize_shape(shape), _float_dtype(dtype)
        return _uniform(self._rng(), shape, self.minval, self.maxval, dtype)

    def get_config(self):
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


class VarianceScaling(_RandomInitializer):
    """Scales the spread of the draw to the fans of the shape (see `compute_fans`).

    n = max(1, fan_in | fan_out | (fan_in + fan_out) / 2) by mode (fan_in|out|avg);
    truncated_normal: std = sqrt(scale / n) / 0.87962566103423978, cut at 2 std, so that
    the sample std is sqrt(scale / n); untruncated_normal: std = sqrt(scale / n);
    uniform: U[-limit, limit], limit = sqrt(3 * scale / n).

    Args:
        scale: Positive scaling factor. Defaults to 1.0.
        mode: "fan_in", "fan_out" or "fan_avg". Defaults to "fan_in".
        distribution: "truncated_normal", "untruncated_normal" or "uniform" ("normal"
            means "truncated_normal"). Defaults to "truncated_normal".
        seed: An int, a `np.random.Generator` or None. Defaults to None.
        input_axes: Optional axes that make up fan_in. Defaults to None.
        output_axes: Optional axes that make up fan_out. Defaults to None.

    Example:
        >>> init = VarianceScaling(scale=2.0, mode="fan_avg", distribution="uniform")
        >>> bool(abs(init((300, 100))).max() <= (3 * 2.0 / 200) ** 0.5)
        True
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(
        self,
        scale=1.0,
        mode="fan_in",
        distribution="truncated_normal",
        seed=None,
        input_axes=None,
        output_axes=None,
    ):
        if not isinstance(scale, (int, float, np.number)) or not scale > 0:
            raise ValueError(f"`scale` must be a positive float. Received: {scale=}")
        if mode not in self._MODES:
            raise ValueError(f"`mode` must be one of {self._MODES}. Received: {mode=}")
        dist = str(distribution).lower()
        dist = "truncated_normal" if dist == "normal" else dist  # the Keras 2 spelling
        if dist not in self._DISTRIBUTIONS:
            raise ValueError(
                f"`distribution` must be one of {self._DISTRIBUTIONS}. "
                f"Received: distribution={distribution!r}"
            )
        self.scale, self.mode, self.distribution = float(scale), mode, dist
        self.input_axes, self.output_axes = input_axes, output_axes
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _standardize_shape(shape), _float_dtype(dtype)
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        variance = self.scale / max(1.0, n[self.mode])
        if self.distribution == "truncated_normal":
            stddev = math.sqrt(variance) / _TRUNCATED_STD
            return _truncated_normal(self._rng(), shape, 0.0, stddev, dtype)
        if self.distribution == "untruncated_normal":
            return _normal(self._rng(), shape, 0.0, math.sqrt(variance), dtype)
        limit = math.sqrt(3.0 * variance)
        return _uniform(self._rng(), shape, -limit, limit, dtype)

    def get_config(self):
        config = {
            **super().get_config(),
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
        }
        # NOTE: axes are written only when set, so older Keras versions still load them.
        for key in ("input_axes", "output_axes"):
            if getattr(self, key) is not None:
                config[key] = list(getattr(self, key))
        return config


class _VarianceScalingPreset(VarianceScaling):
    """A VarianceScaling whose scale, mode and distribution come from `_preset`."""

    _preset: dict = {}

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(
            **self._preset, seed=seed, input_axes=input_axes, output_axes=output_axes
        )

    def get_config(self):
        return {k: v for k, v in super().get_config().items() if k not in self._preset}


class GlorotUniform(_VarianceScalingPreset):
    """Glorot (Xavier) uniform, the Keras default kernel initializer (e.g. of Dense).

    w ~ U[-limit, limit], limit = sqrt(6 / (fan_in + fan_out)), i.e.
    VarianceScaling(scale=1.0, mode="fan_avg", distribution="uniform"). `seed` as there.

    Reference:
        Glorot & Bengio, 2010, http://proceedings.mlr.press/v9/glorot10a.html
    """

    _preset = {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform"}


class GlorotNormal(_VarianceScalingPreset):
    """Glorot (Xavier) normal: truncated, sample std = sqrt(2 / (fan_in + fan_out)).

    VarianceScaling(scale=1.0, mode="fan_avg", distribution="truncated_normal").

    Reference:
        Glorot & Bengio, 2010, http://proceedings.mlr.press/v9/glorot10a.html
    """

    _preset = {"scale": 1.0, "mode": "fan_avg", "distribution": "truncated_normal"}


class HeNormal(_VarianceScalingPreset):
    """He (Kaiming) normal, for ReLU: truncated, sample std = sqrt(2 / fan_in).

    VarianceScaling(scale=2.0, mode="fan_in", distribution="truncated_normal"): the
    std is sqrt(2 / fan_in), not 2 / sqrt(fan_in). `seed` as in VarianceScaling.

    Example:
        >>> w = HeNormal(seed=0)((1000, 500))
        >>> bool(abs(w.std() / (2 / 1000) ** 0.5 - 1) < 0.02)
        True

    Reference:
        He et al., 2015, https://arxiv.org/abs/1502.01852
    """

    _preset = {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"}


class HeUniform(_VarianceScalingPreset):
    """He (Kaiming) uniform: U[-limit, limit], limit = sqrt(6 / fan_in).

    VarianceScaling(scale=2.0, mode="fan_in", distribution="uniform").

    Reference:
        He et al., 2015, https://arxiv.org/abs/1502.01852
    """

    _preset = {"scale": 2.0, "mode": "fan_in", "distribution": "uniform"}


class LecunNormal(_VarianceScalingPreset):
    """LeCun normal, for SELU: truncated, sample std = sqrt(1 / fan_in).

    VarianceScaling(scale=1.0, mode="fan_in", distribution="truncated_normal").

    Reference:
        Klambauer et al., 2017, https://arxiv.org/abs/1706.02515
    """

    _preset = {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"}


class LecunUniform(_VarianceScalingPreset):
    """LeCun uniform: U[-limit, limit], limit = sqrt(3 / fan_in).

    VarianceScaling(scale=1.0, mode="fan_in", distribution="uniform").

    Reference:
        LeCun et al., 1998, "Efficient BackProp".
    """

    _preset = {"scale": 1.0, "mode": "fan_in", "distribution": "uniform"}


class Orthogonal(_RandomInitializer):
    """An orthogonal matrix from the QR decomposition of a normal one, times `gain`.

    r = prod(shape[:-1]), c = shape[-1]; A ~ N(0, 1) of shape (max(r, c), min(r, c));
    A = QR; W = gain * Q * sign(diag(R)), transposed if r < c, reshaped to `shape`.

    Args:
        gain: Multiplicative factor. Defaults to 1.0.
        seed: An int, a `np.random.Generator` or None. Defaults to None.

    Example:
        >>> w = Orthogonal(seed=0)((5, 3))
        >>> bool(np.allclose(w.T @ w, np.eye(3), atol=1e-5))
        True

    Reference:
        Saxe et al., 2014, https://arxiv.org/abs/1312.6120
    """

    aliases = ("OrthogonalInitializer",)

    def __init__(self, gain=1.0, seed=None):
        self.gain = gain
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _standardize_shape(shape), _float_dtype(dtype)
        if len(shape) < 2:
            raise ValueError(
                "Orthogonal needs a shape of rank >= 2. "
                f"Received: shape={shape} of rank {len(shape)}"
            )
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = _normal(self._rng(), (max(rows, cols), min(rows, cols)), 0.0, 1.0, dtype)
        q, r = np.linalg.qr(a.astype(np.promote_types(dtype, np.float32)))  # no f16 QR
        q = q * np.sign(np.diag(r))  # makes Q unique: uniform over orthogonal matrices
        q = q.T if rows < cols else q
        return (self.gain * q.reshape(shape)).astype(dtype)

    def get_config(self):
        return {**super().get_config(), "gain": self.gain}


class Identity(Initializer):
    """The identity matrix times `gain`: W = gain * eye(rows, cols). 2-D shapes only.

    Args:
        gain: Multiplicative factor. Defaults to 1.0.

    Example:
        >>> Identity(gain=2.0)((2, 2)).tolist()
        [[2.0, 0.0], [0.0, 2.0]]
    """

    aliases = ("IdentityInitializer",)

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        shape, dtype = _standardize_shape(shape), backend.standardize_dtype(dtype)
        if len(shape) != 2:
            raise ValueError(
                "Identity can only initialize 2-D matrices. "
                f"Received: shape={shape} of rank {len(shape)}"
            )
        return (self.gain * np.eye(*shape, dtype=dtype)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


class Constant(Initializer):
    """Fills the array with one value: W[...] = value.

    Args:
        value: A Python scalar. Defaults to 0.0.

    Example:
        >>> Constant(3)((2,)).tolist()
        [3.0, 3.0]
    """

    def __init__(self, value=0.0):
        if np.asarray(value).dtype.kind not in "biuf":
            raise TypeError(f"`value` must be a number. Received: value={value!r}")
        self.value = value.item() if isinstance(value, np.generic) else value

    def __call__(self, shape, dtype=None):
        dtype = backend.standardize_dtype(dtype)
        return np.full(_standardize_shape(shape), self.value, dtype)

    def get_config(self):
        value = self.value
        return {"value": value.tolist() if isinstance(value, np.ndarray) else value}


class Zeros(Constant):
    """Fills the array with 0 (any dtype). The Keras default bias initializer."""

    aliases = ("zero",)

    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    """Fills the array with 1 (any dtype)."""

    aliases = ("one",)

    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


# Keras exports each class under a snake_case name too; these are the same class
# objects, so `he_normal(seed=None)` builds an initializer.
random_normal, random_uniform = RandomNormal, RandomUniform
truncated_normal, variance_scaling = TruncatedNormal, VarianceScaling
glorot_normal, glorot_uniform = GlorotNormal, GlorotUniform
he_normal, he_uniform = HeNormal, HeUniform
lecun_normal, lecun_uniform = LecunNormal, LecunUniform
orthogonal, identity = Orthogonal, Identity
zeros, ones, constant = Zeros, Ones, Constant
IdentityInitializer, OrthogonalInitializer = Identity, Orthogonal


def serialize(initializer):
    """Return the Keras 3 serialisation of an initializer.

    {"module": "keras.initializers", "class_name": ..., "config": ...,
    "registered_name": None}; a named function gives class_name "function".

    Args:
        initializer: An `Initializer`, a named function, a string or None.

    Returns:
        A JSON-safe dict; a string or None comes back unchanged.
    """
    if initializer is None or isinstance(initializer, str):
        return initializer
    if isinstance(initializer, Initializer):
        cls = type(initializer)
        builtin = cls.__module__ == __name__
        return {
            "module": "keras.initializers" if builtin else cls.__module__,
            "class_name": cls.__name__,
            "config": initializer.get_config(),
            "registered_name": None if builtin else cls.__name__,
        }
    if callable(initializer) and hasattr(initializer, "__name__"):
        name = initializer.__name__
        return {
            "module": getattr(initializer, "__module__", None),
            "class_name": "function",
            "config": name,
            "registered_name": name,
        }
    raise TypeError(
        "Expected an Initializer, a named function, a string or None. "
        f"Received: {initializer!r} of type {type(initializer).__name__}"
    )


def deserialize(config, custom_objects=None):
    """Build an initializer from `serialize()` output or a Keras 2 {class_name, config}.

    Args:
        config: A dict with "class_name" and "config" ("module" and "registered_name"
            are ignored), or a name string.
        custom_objects: Optional dict name -> class or function, searched first.

    Returns:
        An initializer.
    """
    if isinstance(config, str):
        return get(config)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            'Expected a dict with "class_name" and "config" keys. '
            f"Received: config={config!r}"
        )
    custom = dict(custom_objects or {})
    class_name, inner = config["class_name"], config.get("config") or {}
    if class_name == "function":
        class_name = config.get("registered_name") or inner
    obj = custom.get(class_name) or _REGISTRY.get(_normalize(class_name))
    if obj is None:
        raise unknown_identifier("initializer", class_name, _NAMES | set(custom))
    if not isinstance(obj, type):  # a custom function
        return obj
    return obj.from_config(dict(inner)) if hasattr(obj, "from_config") else obj(**inner)


def get(identifier):
    """Return an initializer for a name, a config dict, an instance or a callable.

    Names match without regard to case or underscores ("he_normal", "HeNormal").

    Args:
        identifier: None, a string, a dict (`serialize` output), an `Initializer`,
            an initializer class (instantiated) or a callable `fn(shape, dtype=None)`.

    Returns:
        An initializer, or None for None.

    Example:
        >>> get("GlorotUniform")
        GlorotUniform(seed=None)
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        cls = _REGISTRY.get(_normalize(identifier))
        if cls is None:
            raise unknown_identifier("initializer", identifier, _NAMES)
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(
        "Could not interpret initializer identifier: expected None, a string, a dict, "
        f"an Initializer or a callable. Received: {identifier!r}"
    )
