"""Learning-rate schedules (Keras 3 `keras.optimizers.schedules`), usable as `learning_rate=`.

A schedule maps the optimizer's step count to a learning rate: the optimizer calls
`schedule(optimizer.iterations)` before each update, and `optimizer.learning_rate` reads the
current value. Every formula below is Keras 3's (keras/src/optimizers/schedules/
learning_rate_schedule.py), computed in float64 and returned as a Python float (Keras
computes in float32: the two agree to float32 precision). `step` may be a Python or NumPy
int or float, or an array of steps (then an array of rates comes back, handy for plotting).

Two glassnet extras, not in Keras, are documented as such: `PowerDecay` (power scheduling as
in Géron, *Hands-on ML*, ch. 11) and `OneCycle` (Smith's 1cycle policy).

Serialisation speaks Keras 3's format: `serialize(s)` gives {"module":
"keras.optimizers.schedules", "class_name", "config", "registered_name"}, and `deserialize`
also reads schedules saved by Keras. Subclasses register themselves by class name.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import did_you_mean

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay",
           "PolynomialDecay", "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts",
           "PowerDecay", "OneCycle", "serialize", "deserialize", "get"]

_REGISTRY: dict = {}


def _number(owner, name, value, low=-math.inf, low_open=False):
    """Return `value` (a NumPy scalar as a Python number, for JSON configs) after checking it
    is a finite real number >= (or >) `low`."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and (value > low if low_open else value >= low)):
        bound = "" if low == -math.inf else f" {'>' if low_open else '>='} {low}"
        raise ValueError(f"{owner}: `{name}` must be a finite number{bound}. "
                         f"Received: {name}={value!r}")
    return value.item() if isinstance(value, np.generic) else value


def _steps(step):
    """`step` as a float64 array (0-d for a scalar), checked to be finite and >= 0."""
    if isinstance(step, (bool, str, bytes)) or step is None:
        raise TypeError(f"A schedule's `step` must be a number or an array of numbers. "
                        f"Received: step={step!r}")
    try:
        s = np.asarray(step, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("A schedule's `step` must be a number or an array of numbers. "
                        f"Received: step={step!r}") from None
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"A schedule's `step` must be finite and >= 0. Received: step={step!r}")
    return s


def _out(lr):
    """A Python float for a scalar step, a float64 array for an array of steps."""
    return float(lr) if np.ndim(lr) == 0 else lr


class LearningRateSchedule:
    """Base class of learning-rate schedules (Keras 3 `LearningRateSchedule`).

    A subclass implements `__call__(step) -> float` and `get_config()` (its `__init__`
    keyword arguments); it registers itself under its class name, so `deserialize` finds it.

    Example:
        >>> class Halving(LearningRateSchedule):
        ...     def __init__(self, initial_learning_rate):
        ...         self.initial_learning_rate = initial_learning_rate
        ...     def __call__(self, step):
        ...         return self.initial_learning_rate / 2 ** (step // 100)
        ...     def get_config(self):
        ...         return {"initial_learning_rate": self.initial_learning_rate}
        >>> Halving(0.1)(250)  # use it as SGD(learning_rate=Halving(0.1))
        0.025
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        old = _REGISTRY.get(cls.__name__)
        # NOTE: a user class that happens to share a built-in's name must not replace it.
        if old is None or old.__module__ != __name__ or cls.__module__ == __name__:
            _REGISTRY[cls.__name__] = cls

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule {type(self).__name__!r} must "
                                  "override `__call__(self, step)`.")

    def get_config(self) -> dict:
        raise NotImplementedError(f"Learning rate schedule {type(self).__name__!r} must "
                                  "override `get_config()` in order to be serializable.")

    @classmethod
    def from_config(cls, config):
        """Rebuild a schedule from `get_config()` output."""
        return cls(**config)

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """Multiplies the rate by `decay_rate` every `decay_steps` steps, smoothly or in stairs.

    lr(step) = initial_learning_rate * decay_rate ^ (step / decay_steps)
    (the exponent is floor(step / decay_steps) when `staircase`).

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: positive number of steps per factor of `decay_rate`.
        decay_rate: the factor applied every `decay_steps`.
        staircase: decay at discrete intervals. Defaults to False.
        name: kept for Keras compatibility. Defaults to "ExponentialDecay".

    Example:
        >>> ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)(20)
        0.025

    Reference:
        Keras 3, keras/src/optimizers/schedules/learning_rate_schedule.py
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0, low_open=True)
        self.decay_rate = _number(owner, "decay_rate", decay_rate)
        self.staircase, self.name = bool(staircase), name

    def _p(self, step):
        p = _steps(step) / self.decay_steps
        return np.floor(p) if self.staircase else p

    def __call__(self, step):
        return _out(self.initial_learning_rate * np.power(float(self.decay_rate), self._p(step)))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class InverseTimeDecay(ExponentialDecay):
    """Divides the rate by a term growing linearly with the step.

    lr(step) = initial_learning_rate / (1 + decay_rate * step / decay_steps)
    (step / decay_steps is floored when `staircase`). Keras 2's `decay=d` argument is this
    schedule with decay_steps=1, decay_rate=d.

    Args:
        initial_learning_rate, decay_steps, decay_rate, staircase: as in `ExponentialDecay`.
        name: Defaults to "InverseTimeDecay".

    Example:
        >>> InverseTimeDecay(0.1, decay_steps=1, decay_rate=0.5)(2)
        0.05
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return _out(self.initial_learning_rate / (1.0 + self.decay_rate * self._p(step)))


class PowerDecay(LearningRateSchedule):
    """Power scheduling (a glassnet extra, not in Keras): Géron, *Hands-on ML*, ch. 11.

    lr(step) = initial_learning_rate / (1 + step / decay_steps) ^ power

    The rate halves after `decay_steps` steps (power 1), then falls ever more slowly: after
    s steps it is lr0 / 2, after 3s lr0 / 4, ... With power=1 it equals InverseTimeDecay
    with decay_rate=1.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: positive number of steps s.
        power: the exponent c (usually 1). Defaults to 1.0.
        name: Defaults to "PowerDecay".

    Example:
        >>> PowerDecay(0.1, decay_steps=100)(300)
        0.025
    """

    def __init__(self, initial_learning_rate, decay_steps, power=1.0, name="PowerDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0, low_open=True)
        self.power, self.name = _number(owner, "power", power), name

    def __call__(self, step):
        return _out(self.initial_learning_rate
                    / (1.0 + _steps(step) / self.decay_steps) ** self.power)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "power": self.power, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """A constant rate on each interval between boundaries.

    lr = values[0] for step <= boundaries[0], values[i] for boundaries[i-1] < step <=
    boundaries[i], values[-1] for step > boundaries[-1]  (right-closed, as in Keras).

    Args:
        boundaries: increasing step boundaries, one fewer than `values`.
        values: the rate on each interval.
        name: Defaults to "PiecewiseConstant".

    Example:
        >>> s = PiecewiseConstantDecay(boundaries=[100, 200], values=[1.0, 0.5, 0.1])
        >>> s(100), s(101), s(1000)
        (1.0, 0.5, 0.1)
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        owner = type(self).__name__
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"{owner}: `boundaries` must have one element fewer than "
                             f"`values`. Received: boundaries={boundaries} (length "
                             f"{len(boundaries)}), values={values} (length {len(values)}).")
        for i, b in enumerate(boundaries):
            _number(owner, f"boundaries[{i}]", b)
        for i, v in enumerate(values):
            _number(owner, f"values[{i}]", v)
        if any(a > b for a, b in zip(boundaries, boundaries[1:])):
            raise ValueError(f"{owner}: `boundaries` must be increasing. "
                             f"Received: boundaries={boundaries}")
        self.boundaries, self.values, self.name = boundaries, values, name

    def __call__(self, step):
        # searchsorted(side="left") counts the boundaries strictly below the step: exactly
        # the index of the right-closed interval the step falls in.
        index = np.searchsorted(np.asarray(self.boundaries, np.float64), _steps(step))
        return _out(np.asarray(self.values, np.float64)[index])

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """Polynomial decay from `initial_learning_rate` to `end_learning_rate`.

    lr(step) = (initial - end) * (1 - min(step, decay_steps) / decay_steps) ^ power + end;
    with `cycle`, decay_steps is multiplied by ceil(step / decay_steps) (1 at step 0) and
    the step is not capped, so the decay restarts from a lower peak each cycle.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: positive number of steps to reach `end_learning_rate`.
        end_learning_rate: the final rate. Defaults to 0.0001.
        power: the exponent; 1 is linear decay. Defaults to 1.0.
        cycle: restart beyond `decay_steps`. Defaults to False.
        name: Defaults to "PolynomialDecay".

    Example:
        >>> PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.0)(5)
        0.05
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0, low_open=True)
        self.end_learning_rate = _number(owner, "end_learning_rate", end_learning_rate)
        self.power, self.cycle, self.name = _number(owner, "power", power), bool(cycle), name

    def __call__(self, step):
        s, steps = _steps(step), float(self.decay_steps)
        if self.cycle:
            steps = steps * np.where(s == 0, 1.0, np.ceil(s / steps))
        else:
            s = np.minimum(s, steps)
        end = self.end_learning_rate
        return _out((self.initial_learning_rate - end) * (1.0 - s / steps) ** self.power + end)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


def _cosine(fraction, alpha):
    """(1 - alpha) * 0.5 * (1 + cos(pi * fraction)) + alpha."""
    return (1.0 - alpha) * 0.5 * (1.0 + np.cos(np.pi * fraction)) + alpha


class CosineDecay(LearningRateSchedule):
    """Cosine decay (SGDR without restarts), with an optional linear warm-up.

    Without warm-up (warmup_target None):
        lr = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) /
        decay_steps)) + alpha)
    With warm-up: lr rises linearly from `initial_learning_rate` to `warmup_target` over
    `warmup_steps`, then decays as above from `warmup_target` (step - warmup_steps).

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: positive number of decay steps.
        alpha: the final rate as a fraction of the decayed-from rate. Defaults to 0.0.
        name: Defaults to "CosineDecay".
        warmup_target: the rate reached after warm-up, or None for no warm-up.
            Defaults to None.
        warmup_steps: length of the warm-up. Defaults to 0.

    Example:
        >>> CosineDecay(0.0, decay_steps=100, warmup_target=0.1, warmup_steps=10)(5)
        0.05

    Reference:
        Loshchilov & Hutter, 2017, "SGDR", https://arxiv.org/abs/1608.03983;
        Goyal et al., 2017 (warm-up), https://arxiv.org/abs/1706.02677
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0, low_open=True)
        self.alpha, self.name = _number(owner, "alpha", alpha), name
        self.warmup_target = None if warmup_target is None else _number(
            owner, "warmup_target", warmup_target)
        self.warmup_steps = _number(owner, "warmup_steps", warmup_steps, 0)

    def __call__(self, step):
        s, lr0, warm = _steps(step), self.initial_learning_rate, self.warmup_steps
        if self.warmup_target is None:
            return _out(lr0 * _cosine(np.minimum(s, self.decay_steps) / self.decay_steps,
                                      self.alpha))
        s = np.minimum(s, self.decay_steps + warm)
        rising = (self.warmup_target - lr0) * s / max(warm, 1) + lr0  # unused when warm == 0
        falling = self.warmup_target * _cosine((s - warm) / self.decay_steps, self.alpha)
        return _out(np.where(s < warm, rising, falling))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): each period is `t_mul` times the previous one
    and starts from a peak `m_mul` times the previous peak.

    With f = step / first_decay_steps, restart i = floor(log(1 - f (1 - t_mul)) / log t_mul)
    (floor(f) when t_mul = 1) and the fraction done in the current period
    c = (f - (1 - t_mul^i) / (1 - t_mul)) / t_mul^i:
        lr = initial * ((1 - alpha) * m_mul^i * 0.5 * (1 + cos(pi * c)) + alpha)

    NOTE: the restart index is corrected after the logarithm, so a step that lands exactly on
    a restart starts the new period (float32 rounding can put Keras one period back there).

    Args:
        initial_learning_rate: the rate at step 0.
        first_decay_steps: positive length of the first period.
        t_mul: period length multiplier (> 0; below 1 the periods shrink and the schedule
            stays at alpha * initial_learning_rate once they are used up). Defaults to 2.0.
        m_mul: peak multiplier per restart. Defaults to 1.0.
        alpha: the minimum rate as a fraction of `initial_learning_rate`. Defaults to 0.0.
        name: Defaults to "SGDRDecay".

    Example:
        >>> CosineDecayRestarts(0.1, first_decay_steps=10)(10)
        0.1

    Reference:
        Loshchilov & Hutter, 2017, "SGDR", https://arxiv.org/abs/1608.03983
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, name="SGDRDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate)
        self.first_decay_steps = _number(owner, "first_decay_steps", first_decay_steps, 0,
                                         low_open=True)
        self.t_mul = _number(owner, "t_mul", t_mul, 0, low_open=True)
        self.m_mul = _number(owner, "m_mul", m_mul)
        self.alpha, self.name = _number(owner, "alpha", alpha), name

    def __call__(self, step):
        f, t = _steps(step) / self.first_decay_steps, float(self.t_mul)
        end = math.inf if t >= 1.0 else 1.0 / (1.0 - t)  # shrinking periods sum to `end`
        done = f >= end
        f = np.where(done, 0.0, f)
        if t == 1.0:
            i = np.floor(f)
            start, length = i, np.ones_like(f)
        else:
            i = np.floor(np.log1p(f * (t - 1.0)) / math.log(t))
            for _ in range(2):  # fix the floor where rounding missed an exact restart
                i = np.where((t ** (i + 1) - 1) / (t - 1) <= f, i + 1, i)
                i = np.where((t ** i - 1) / (t - 1) > f, i - 1, i)
            start, length = (t ** i - 1) / (t - 1), t ** i
        cosine = 0.5 * (1 + np.cos(np.pi * (f - start) / length))
        # past the end of shrinking periods Keras gives NaN; we stay at alpha
        decayed = np.where(done, 0.0, (1 - self.alpha) * self.m_mul ** i * cosine)
        return _out(self.initial_learning_rate * (decayed + self.alpha))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}


class OneCycle(LearningRateSchedule):
    """Smith's 1cycle policy (a glassnet extra, not in Keras), as Géron describes it.

    With n = total_steps, e = annihilation_fraction * n and h = (n - e) / 2:
        step in [0, h):     lr rises linearly from initial to max
        step in [h, 2h):    lr falls linearly from max back to initial
        step in [2h, n):    lr falls linearly from initial to final (the annihilation phase)
        step >= n:          lr = final
    `momentum(step)` gives the matching inverse momentum cycle: max_momentum falling to
    base_momentum over [0, h), rising back over [h, 2h), then max_momentum.

    The optimizer only reads the learning rate from a schedule; to cycle the momentum too,
    set it before each batch, for example for SGD (build it with momentum > 0 so that it
    keeps a velocity slot; for Adam set `beta_1` instead):
        sched = OneCycle(0.1, total_steps=epochs * steps_per_epoch)
        opt = SGD(learning_rate=sched, momentum=sched.max_momentum)
        cycle = LambdaCallback(on_train_batch_begin=lambda batch, logs: setattr(
            opt, "momentum", sched.momentum(opt.iterations)))

    Args:
        max_learning_rate: the peak rate, reached halfway through the cycle.
        total_steps: positive number of steps of the whole policy (epochs * batches).
        initial_learning_rate: the starting rate. Defaults to max_learning_rate / 10.
        final_learning_rate: the rate at the end. Defaults to initial_learning_rate / 1000.
        annihilation_fraction: the fraction of `total_steps` spent on the final phase, in
            [0, 1). Defaults to 0.1.
        max_momentum: momentum at both ends of the cycle. Defaults to 0.95.
        base_momentum: momentum at the peak learning rate. Defaults to 0.85.
        name: Defaults to "OneCycle".

    Example:
        >>> s = OneCycle(1.0, total_steps=100)  # initial 0.1, final 1e-4, h = 45
        >>> s(0), s(45), s(90), s(100)
        (0.1, 1.0, 0.1, 0.0001)

    Reference:
        Smith, 2018, "A disciplined approach to neural network hyper-parameters",
        https://arxiv.org/abs/1803.09820; Géron, *Hands-on ML* (3rd ed.), ch. 11
    """

    def __init__(self, max_learning_rate, total_steps, initial_learning_rate=None,
                 final_learning_rate=None, annihilation_fraction=0.1, max_momentum=0.95,
                 base_momentum=0.85, name="OneCycle"):
        owner = type(self).__name__
        self.max_learning_rate = _number(owner, "max_learning_rate", max_learning_rate)
        self.total_steps = _number(owner, "total_steps", total_steps, 0, low_open=True)
        if initial_learning_rate is None:
            initial_learning_rate = max_learning_rate / 10
        if final_learning_rate is None:
            final_learning_rate = initial_learning_rate / 1000
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate)
        self.final_learning_rate = _number(owner, "final_learning_rate", final_learning_rate)
        fraction = _number(owner, "annihilation_fraction", annihilation_fraction, 0)
        if fraction >= 1:
            raise ValueError(f"{owner}: `annihilation_fraction` must be in [0, 1). "
                             f"Received: annihilation_fraction={annihilation_fraction!r}")
        self.annihilation_fraction = fraction
        self.max_momentum = _number(owner, "max_momentum", max_momentum)
        self.base_momentum = _number(owner, "base_momentum", base_momentum)
        self.name = name

    def _phases(self, step):
        """(s, h, e): the capped step, the half-cycle length and the final phase length."""
        n = float(self.total_steps)
        e = self.annihilation_fraction * n
        return np.minimum(_steps(step), n), (n - e) / 2.0, e

    def __call__(self, step):
        s, h, e = self._phases(step)
        lo, hi, end = self.initial_learning_rate, self.max_learning_rate, self.final_learning_rate
        up = lo + (hi - lo) * s / h
        down = hi - (hi - lo) * (s - h) / h
        last = lo - (lo - end) * (s - 2 * h) / e if e else np.full_like(s, end)
        last = np.where(s >= self.total_steps, end, last)  # exactly `final`, no rounding
        return _out(np.where(s < h, up, np.where(s < 2 * h, down, last)))

    def momentum(self, step):
        """The momentum (or Adam's beta_1) for `step`: the inverse of the rate's cycle."""
        s, h, _ = self._phases(step)
        lo, hi = self.base_momentum, self.max_momentum
        return _out(np.where(s < h, hi - (hi - lo) * s / h,
                             np.where(s < 2 * h, lo + (hi - lo) * (s - h) / h, hi)))

    def get_config(self):
        return {"max_learning_rate": self.max_learning_rate, "total_steps": self.total_steps,
                "initial_learning_rate": self.initial_learning_rate,
                "final_learning_rate": self.final_learning_rate,
                "annihilation_fraction": self.annihilation_fraction,
                "max_momentum": self.max_momentum, "base_momentum": self.base_momentum,
                "name": self.name}


# ---- serialisation ----------------------------------------------------------------------
def serialize(learning_rate_schedule) -> dict:
    """Return the Keras 3 serialisation of a schedule.

    {"module": "keras.optimizers.schedules", "class_name": ..., "config": ...,
    "registered_name": None}; a schedule defined outside glassnet gets its own module and
    its class name as `registered_name`, as Keras does for custom objects.

    Args:
        learning_rate_schedule: a `LearningRateSchedule` (or any object with `get_config`),
            or a plain function, saved by name as Keras does ("class_name": "function";
            `deserialize` then needs it in `custom_objects`).

    Returns:
        A JSON-safe dict.
    """
    if isinstance(learning_rate_schedule, type) or not callable(learning_rate_schedule):
        raise TypeError("`serialize` expects a LearningRateSchedule instance. "
                        f"Received: {learning_rate_schedule!r}")
    if not hasattr(learning_rate_schedule, "get_config"):  # a plain function, by name
        name = getattr(learning_rate_schedule, "__name__", type(learning_rate_schedule).__name__)
        return {"module": getattr(learning_rate_schedule, "__module__", None),
                "class_name": "function", "config": name, "registered_name": name}
    cls = type(learning_rate_schedule)
    builtin = cls.__module__ == __name__
    return {"module": "keras.optimizers.schedules" if builtin else cls.__module__,
            "class_name": cls.__name__, "config": learning_rate_schedule.get_config(),
            "registered_name": None if builtin else cls.__name__}


def deserialize(config, custom_objects=None) -> LearningRateSchedule:
    """Rebuild a schedule from `serialize()` output (ours or Keras 3's) or {class_name, config}.

    Args:
        config: a dict with "class_name" and "config" ("module" is ignored).
        custom_objects: optional dict name -> class, searched first (by `registered_name`,
            then `class_name`).

    Returns:
        A schedule.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError('A schedule config must be a dict with "class_name" and "config" '
                         f"keys. Received: config={config!r}")
    custom = dict(custom_objects or {})
    name, registered = config["class_name"], config.get("registered_name")
    if name == "function":
        fn = custom.get(registered) or custom.get(config.get("config"))
        if fn is None:
            raise ValueError(f"This config holds the plain function schedule "
                             f"{config.get('config')!r}; pass it in `custom_objects` to "
                             f"rebuild it. Received: custom_objects={sorted(custom)}")
        return fn
    cls = custom.get(registered) or custom.get(name) or _REGISTRY.get(name)
    if cls is None:  # NOTE: a case-insensitive fallback, as optimizers.get is
        cls = {k.lower(): v for k, v in _REGISTRY.items()}.get(str(name).lower())
    if cls is None:
        raise ValueError(f"Unknown learning rate schedule: {name!r}."
                         f"{did_you_mean(name, _REGISTRY)} Valid names: "
                         f"{', '.join(sorted(_REGISTRY))}. A custom schedule "
                         "is found once its class is defined, or through `custom_objects`.")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """Return a schedule from a `serialize()` dict, a schedule instance or a callable.

    Args:
        identifier: a dict, a `LearningRateSchedule` or a callable `fn(step) -> float`
            (returned unchanged).

    Returns:
        A schedule (or the callable).

    Example:
        >>> get({"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.1,
        ...      "decay_steps": 10, "decay_rate": 0.5}})(10)
        0.05
    """
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier) and not isinstance(identifier, type):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _REGISTRY:
            raise ValueError(f"Unknown learning rate schedule: {identifier!r}."
                             f"{did_you_mean(identifier, _REGISTRY)} Valid names: "
                             f"{', '.join(sorted(_REGISTRY))}.")
        raise ValueError("A schedule needs its arguments, so a name alone cannot build one. "
                         f"Received: {identifier!r}. Pass an instance, {identifier}(...), "
                         f"or a dict {{'class_name': {identifier!r}, 'config': {{...}}}}.")
    raise ValueError(f"Could not interpret learning rate schedule identifier: {identifier!r}. "
                     "Expected a LearningRateSchedule, a config dict or a callable.")
