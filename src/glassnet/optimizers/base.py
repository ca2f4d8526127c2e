"""Optimizer: the Keras 3 contract, with every variable packed into one flat buffer per dtype.

On first use (and whenever the set of variables changes) the optimizer lays the variables end
to end in a flat parameter buffer `P`, re-homes each `var.data` as a view of its segment, and
points `var._grad_buffer` at the same segment of a flat gradient buffer `G`, so autograd writes
gradients straight into `G`. Slots (momentum, m, v, ...) are flat arrays the size of `P`. One
step is then a constant number of NumPy calls per dtype, however many variables there are.

Order of one step (Keras 3 `BaseOptimizer.apply`): unscale by `loss_scale_factor`,
[accumulate], clip, decoupled weight decay, `update_step`, EMA, constraints, `iterations += 1`.

Subclasses declare `slot_specs()` and write `update_step(g, w, lr, grp)` over flat arrays.
"""
from __future__ import annotations

import inspect
import math
import re
import warnings

import numpy as np

from .. import backend
from ..autograd.tensor import Tensor, as_array
from ..autograd.variable import Variable
from ..errors import check_kwargs, did_you_mean

_REGISTRY: dict = {}
_NAME_COUNTS: dict = {}
_BASE_ARGS = ("learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm",
              "use_ema", "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
              "gradient_accumulation_steps", "name")


def check_number(name, value, low=0.0, high=math.inf, low_open=False, high_open=False):
    """Raise a ValueError unless `value` is a real number in the given interval."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        ok = (low < value if low_open else low <= value) and (
            value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"`{name}` must be a number in {interval}. Received: {name}={value!r}")
    return float(value)


def _auto_name(cls_name: str) -> str:
    snake = re.sub(r"([a-z])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls_name))
    snake = snake.lower()
    count = _NAME_COUNTS.get(snake, 0)
    _NAME_COUNTS[snake] = count + 1
    return snake if count == 0 else f"{snake}_{count}"


class _Packed:
    """The variables of one dtype laid end to end: P (weights), G (gradients), slots, scratch."""

    def __init__(self, dtype, variables):
        self.xp = backend.xp_of(variables[0].data)
        self.dtype, self.vars = dtype, variables
        self.sizes = np.array([v.size for v in variables], dtype=np.intp)
        self.starts = np.concatenate(([0], np.cumsum(self.sizes)[:-1])).astype(np.intp)
        n = int(self.sizes.sum())
        self.P, self.G = self.xp.empty(n, dtype), self.xp.zeros(n, dtype)
        self.tmp, self._tmp2, self.slots = self.xp.empty(n, dtype), None, {}
        self.lr_scale = self.lr_buf = self.decay_mask = None
        self.decay_all = True

    def __getitem__(self, slot_name):
        return self.slots[slot_name]

    @property
    def tmp2(self):
        """A second scratch buffer, allocated on first use."""
        if self._tmp2 is None:
            self._tmp2 = self.xp.empty_like(self.P)
        return self._tmp2

    def repeat(self, per_variable):
        """Expand one value per variable into a flat array of this group's dtype."""
        return np.repeat(np.asarray(per_variable, dtype=self.dtype), self.sizes)


class Optimizer:
    """Base class of glassnet optimizers (Keras 3 `keras.optimizers.Optimizer`).

    w <- w - lr * weight_decay * w  (decoupled, before the update), then `update_step`.

    Args:
        learning_rate: a float, or a schedule: a callable `schedule(step) -> float`
            evaluated at `iterations` (a zero-argument callable is called with nothing).
        weight_decay: decoupled weight decay coefficient, or None. Defaults to None.
        clipnorm: clip each variable's gradient to this L2 norm. Defaults to None.
        clipvalue: clip each gradient element to [-clipvalue, clipvalue]. Defaults to None.
        global_clipnorm: clip all gradients together to this global L2 norm. Defaults to None.
        use_ema: keep an exponential moving average of the weights. Defaults to False.
        ema_momentum: average <- ema_momentum * average + (1 - ema_momentum) * w. Defaults to
            0.99.
        ema_overwrite_frequency: every this many steps copy the average into the weights.
            Defaults to None (only `finalize_variable_values` copies it).
        loss_scale_factor: gradients are divided by it before use. Defaults to None.
        gradient_accumulation_steps: update once every this many calls, with the mean
            gradient. Defaults to None.
        name: defaults to the snake-case class name, made unique.
        **kwargs: legacy `lr` (alias of `learning_rate`, deprecated) and Keras 2 `decay`
            (lr_t = lr / (1 + decay * iterations), deprecated).

    Example:
        >>> opt = SGD(learning_rate=0.1)
        >>> w = Variable(np.ones(3, "float32"))
        >>> opt.apply_gradients([(np.ones(3, "float32"), w)]); w.numpy()
        array([0.9, 0.9, 0.9], dtype=float32)

    Reference:
        Keras 3, keras/src/optimizers/base_optimizer.py
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__.lower()] = cls

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        learning_rate = self._pop_legacy_lr(learning_rate, kwargs)
        self.decay = kwargs.pop("decay", None)
        if self.decay is not None:
            self.decay = check_number("decay", self.decay)
            warnings.warn("`decay` is deprecated (Keras 2): it is applied as lr / (1 + decay "
                          "* iterations). Use a learning-rate schedule instead.",
                          DeprecationWarning, stacklevel=3)
        allowed = set(_BASE_ARGS) | set(inspect.signature(type(self).__init__).parameters)
        check_kwargs(type(self).__name__, kwargs, sorted(allowed - {"self", "kwargs"}))
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clips.values()) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be "
                             f"set. Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                             f"global_clipnorm={global_clipnorm}")
        for key, value in clips.items():
            setattr(self, key, None if value is None else check_number(key, value))
        self.weight_decay = None if weight_decay is None else check_number(
            "weight_decay", weight_decay)
        self.use_ema = bool(use_ema)
        self.ema_momentum = check_number("ema_momentum", ema_momentum, 0.0, 1.0)
        if ema_overwrite_frequency is not None and (
                not isinstance(ema_overwrite_frequency, (int, np.integer))
                or ema_overwrite_frequency < 1):
            raise ValueError("`ema_overwrite_frequency` must be an integer >= 1 or None. "
                             f"Received: ema_overwrite_frequency={ema_overwrite_frequency!r}")
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = None if loss_scale_factor is None else check_number(
            "loss_scale_factor", loss_scale_factor, low_open=True)
        steps = gradient_accumulation_steps
        if steps is not None and (not isinstance(steps, (int, np.integer)) or steps < 2):
            raise ValueError("`gradient_accumulation_steps` must be an integer >= 2 or None. "
                             f"Received: gradient_accumulation_steps={steps!r}")
        self.gradient_accumulation_steps = steps
        self.name = name if name is not None else _auto_name(type(self).__name__)
        self._iterations = np.zeros((), np.int64)
        self._lr_value = np.zeros((), np.float64)
        self.learning_rate = learning_rate
        self._exclude_ids, self._exclude_pattern = set(), None
        self._key, self._vars, self._entries, self._groups = None, (), [], []
        self._index, self._empty = {}, []
        self.built = False

    def _pop_legacy_lr(self, learning_rate, kwargs):
        if "lr" not in kwargs:
            return learning_rate
        lr = kwargs.pop("lr")
        warnings.warn("`lr` is deprecated, use `learning_rate` instead.", DeprecationWarning,
                      stacklevel=4)
        default = inspect.signature(type(self).__init__).parameters["learning_rate"].default
        if learning_rate is not default and learning_rate != default and learning_rate != lr:
            raise ValueError("Both `lr` and `learning_rate` were given and they disagree. "
                             f"Received: lr={lr!r}, learning_rate={learning_rate!r}")
        return lr

    # ---- hyperparameters ----------------------------------------------------------------
    @property
    def iterations(self) -> int:
        """Number of applied updates (calls // gradient_accumulation_steps when set)."""
        raw = int(self._iterations)
        return raw // self.gradient_accumulation_steps if self.gradient_accumulation_steps else raw

    @iterations.setter
    def iterations(self, value):
        self._iterations[...] = int(value)

    @property
    def learning_rate(self) -> float:
        """The current learning rate as a float (a schedule is evaluated at `iterations`)."""
        raw = int(self._iterations)
        if self._schedule is None:
            lr = float(self._lr_value)
        else:
            lr = float(self._schedule(raw) if self._schedule_takes_step else self._schedule())
        return lr / (1.0 + self.decay * raw) if self.decay else lr

    @learning_rate.setter
    def learning_rate(self, value):
        if callable(value) and not isinstance(value, Tensor):
            self._schedule = value
            try:
                params = inspect.signature(value).parameters.values()
                self._schedule_takes_step = any(
                    p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                    for p in params)
            except (TypeError, ValueError):
                self._schedule_takes_step = True
        else:
            value = float(value) if isinstance(value, (np.ndarray, Tensor)) else value
            self._lr_value[...] = check_number("learning_rate", value)
            self._schedule = None

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exclude variables from weight decay: those in `var_list`, and those whose `name`
        contains (regex search) any string in `var_names`."""
        self._exclude_ids = {id(v) for v in var_list or ()}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None
        for grp in self._groups:
            self._set_decay_mask(grp)

    def _use_weight_decay(self, var) -> bool:
        if id(var) in self._exclude_ids:
            return False
        pattern = self._exclude_pattern
        return pattern is None or pattern.search(var.name) is None

    def slot_specs(self):
        """Return ((keras_slot_name, initial_value), ...) for the slots this optimizer keeps."""
        return ()

    def update_step(self, g, w, lr, grp):
        """Update the flat weights `w` in place from the flat gradient `g`.

        `lr` is a float, or a flat array when variables have an `lr_multiplier`; the slots
        are `grp["name"]`; `grp.tmp` / `grp.tmp2` are scratch buffers; `grp.xp` the array module.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement update_step().")

    def _all_slot_specs(self):
        # NOTE: an EMA average starts at the weight's value (None), so a newcomer is not
        # averaged with zeros; Keras starts at 0 but overwrites it on the first step anyway.
        return ((("average", None),) if self.use_ema else ()) + (
            (("gradient_accumulator", 0.0),) if self.gradient_accumulation_steps else ()
        ) + tuple(self.slot_specs())

    def _before_update(self):
        """Hook run once per applied update, before any `update_step` (Nadam's u-product)."""

    # ---- packing ------------------------------------------------------------------------
    def build(self, variables):
        """Pack `variables` into flat buffers and create the slots (Keras `build`)."""
        variables = list(variables)
        if self._key != tuple(map(id, variables)):
            self._pack(variables)

    def _pack(self, variables):
        ids = [id(v) for v in variables]
        if len(set(ids)) != len(ids):
            raise ValueError("The same variable was passed to the optimizer twice.")
        for v in variables:
            if not isinstance(v, Variable):
                raise TypeError(f"Optimizers update glassnet Variables. Received: {v!r}")
            if v.dtype.kind != "f":
                raise TypeError(f"Variable {v.path!r} has non-float dtype {v.dtype}.")
        keep, carried = set(ids), {}
        for v, view, gview, grp, a, b in self._entries:
            if id(v) in keep:  # NOTE: keyed by object identity, so momentum survives a repack
                carried[id(v)] = {k: s[a:b].copy() for k, s in grp.slots.items()}
            else:  # leaving: give it its own memory back
                v.data = np.array(v.data)
                if v.grad is gview:
                    v.grad = np.array(gview)
                v._grad_buffer = None
        by_dtype, where = {}, {}
        for v in variables:
            if v.size:
                by_dtype.setdefault(v.dtype, []).append(v)
        self._groups = []
        for dtype, vs in by_dtype.items():
            grp = _Packed(dtype, vs)
            for v, a, n in zip(vs, grp.starts.tolist(), grp.sizes.tolist()):
                view, gview = grp.P[a:a + n].reshape(v.shape), grp.G[a:a + n].reshape(v.shape)
                np.copyto(view, v.data)
                if v.grad is not None:  # keep a gradient that is already there
                    np.copyto(gview, as_array(v.grad), casting="unsafe")
                    v.grad = gview
                v.data, v._grad_buffer = view, gview
                where[id(v)] = (v, view, gview, grp, a, a + n)
            for name, init in self._all_slot_specs():
                grp.slots[name] = grp.P.copy() if init is None else grp.xp.full(
                    grp.P.size, init, dtype)
            for v in vs:
                a, b = where[id(v)][4:]
                for name, value in carried.get(id(v), {}).items():
                    if name in grp.slots:
                        grp.slots[name][a:b] = value
            multipliers = [float(getattr(v, "lr_multiplier", 1.0)) for v in vs]
            if any(m != 1.0 for m in multipliers):
                grp.lr_scale, grp.lr_buf = grp.repeat(multipliers), grp.xp.empty_like(grp.P)
            self._set_decay_mask(grp)
            self._groups.append(grp)
        self._entries = [where[i] for i in ids if i in where]
        self._index = where
        self._empty = [v for v in variables if not v.size]
        self._vars, self._key, self.built = tuple(variables), tuple(ids), True

    def _set_decay_mask(self, grp):
        flags = [self._use_weight_decay(v) for v in grp.vars]
        grp.decay_all = all(flags)
        grp.decay_mask = grp.repeat(flags) if any(flags) and not all(flags) else None

    def _rehome(self, entry):
        v, view, gview = entry[:3]
        if v.data is not view:  # someone replaced .data: take its value, re-home it
            np.copyto(view, v.data)
            v.data = view
        v._grad_buffer = gview

    # ---- applying gradients -------------------------------------------------------------
    def apply_gradients(self, grads_and_vars):
        """Apply (gradient, variable) pairs (Keras); None gradients are skipped with a warning.

        Returns:
            The number of iterations after the update.
        """
        pairs = list(grads_and_vars)
        if pairs:
            grads, variables = zip(*pairs)
            self.apply(grads, variables)
        return self.iterations

    def apply(self, grads, trainable_variables=None):
        """Apply `grads` (arrays, Tensors or None) to `trainable_variables`, 1:1 (Keras).

        A gradient that *is* the variable's `_grad_buffer` view is used without a copy; others
        are copied into the flat gradient buffer (which clipping then scales in place).
        """
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError("When passing `grads` without `variables`, the optimizer must"
                                 " already be built: call `optimizer.build(variables)` first.")
            trainable_variables = self._vars
        variables = list(trainable_variables)
        if len(grads) != len(variables):
            raise ValueError(f"Received {len(grads)} gradients for {len(variables)} variables;"
                             " they must match one to one.")
        self.build(variables)
        skipped = []
        for entry, g in zip(self._entries, (g for g, v in zip(grads, variables) if v.size)):
            gview = entry[2]
            self._rehome(entry)
            if g is None:
                gview.fill(0)
                skipped.append(entry)
            elif g is not gview:
                g = as_array(g)
                if g.shape != gview.shape:
                    raise ValueError(f"Gradient for variable {entry[0].path!r} has shape "
                                     f"{g.shape}, expected {gview.shape}.")
                np.copyto(gview, g, casting="unsafe")
        missing = {id(e[0]) for e in skipped}
        self._finish_step(skipped, [e[0] for e in self._entries if id(e[0]) not in missing])

    def step(self, variables):
        """Fast path of the training loop: apply the gradients autograd left in `.grad`.

        Assumes `loss.backward()` wrote each gradient into the variable's `_grad_buffer`
        (a view of G). A variable whose `.grad` is None is skipped (its weights and slots do
        not move). Afterwards every `var.grad` is reset to None and constraints are applied.
        """
        variables = variables if isinstance(variables, (list, tuple)) else list(variables)
        if self._key != tuple(map(id, variables)):
            self._pack(variables)
        skipped, updated = [], []
        for entry in self._entries:  # Python-level checks only; no NumPy call per variable
            v, view, gview = entry[0], entry[1], entry[2]
            g = v.grad
            if g is not gview:
                if g is None:
                    gview.fill(0)
                    skipped.append(entry)
                else:
                    np.copyto(gview, as_array(g), casting="unsafe")
            if v.data is not view or v._grad_buffer is not gview:
                self._rehome(entry)
            v.grad = None
            if v.constraint is not None and g is not None:
                updated.append(v)
        for v in self._empty:
            v.grad = None
        self._finish_step(skipped, updated)

    def _finish_step(self, skipped, updated):
        if skipped:
            if len(skipped) == len(self._entries):
                raise ValueError("No gradients provided for any variable (did the loss depend "
                                 "on them? was backward() called?).")
            warnings.warn("Gradients do not exist for variables "
                          f"{[e[0].path for e in skipped]} when minimizing the loss; they are"
                          " not updated.", stacklevel=3)
        self._update(skipped)
        for v in updated:
            if v.constraint is not None:
                v.assign(v.constraint(v.data))
        self._iterations += 1

    def _update(self, skipped):
        groups, steps = self._groups, self.gradient_accumulation_steps
        # NOTE: skipped variables are restored afterwards: exact Keras "skip", cheap when rare.
        saved = [(e, {k: s[e[4]:e[5]].copy() for k, s in e[3].slots.items()
                      if k != "gradient_accumulator"}, e[1].copy()) for e in skipped]
        if self.loss_scale_factor is not None:
            for grp in groups:
                np.divide(grp.G, self.loss_scale_factor, out=grp.G)
        apply_now = True
        if steps:
            apply_now = (int(self._iterations) + 1) % steps == 0
            for grp in groups:  # g <- (g + accumulated) / steps on the update call
                acc = grp["gradient_accumulator"]
                acc += grp.G
                if apply_now:
                    np.divide(acc, steps, out=grp.G)
                    acc.fill(0)
        if apply_now:
            self._clip()
            lr = self.learning_rate
            self._before_update()
            for grp in groups:
                lr_g = lr if grp.lr_scale is None else np.multiply(grp.lr_scale, lr,
                                                                   out=grp.lr_buf)
                if self.weight_decay and grp.decay_all:  # w <- w - lr * wd * w
                    grp.P *= 1.0 - lr_g * self.weight_decay
                elif self.weight_decay and grp.decay_mask is not None:
                    np.multiply(grp.P, grp.decay_mask, out=grp.tmp)
                    grp.tmp *= lr_g * self.weight_decay
                    grp.P -= grp.tmp
                self.update_step(grp.G, grp.P, lr_g, grp)
        for (v, view, _, grp, a, b), slots, old in saved:
            np.copyto(view, old)
            for k, value in slots.items():
                grp.slots[k][a:b] = value
        if self.use_ema:
            self._update_ema()

    def _clip(self):
        groups = self._groups
        if self.clipnorm:  # per variable: g * clipnorm / max(||g||, clipnorm)
            c = self.clipnorm
            for grp in groups:
                np.multiply(grp.G, grp.G, out=grp.tmp)
                norms = np.sqrt(np.add.reduceat(grp.tmp, grp.starts))
                if norms.max() > c:
                    grp.G *= np.repeat(c / np.maximum(norms, c), grp.sizes)
        elif self.global_clipnorm:  # all together: g * clip / max(||G||, clip)
            c = self.global_clipnorm
            norm = math.sqrt(sum(float(np.dot(grp.G, grp.G)) for grp in groups))
            scale = c / max(norm, c) if math.isfinite(norm) else math.nan
            if scale != 1.0:
                for grp in groups:
                    grp.G *= scale
        elif self.clipvalue:
            for grp in groups:
                np.clip(grp.G, -self.clipvalue, self.clipvalue, out=grp.G)

    def _update_ema(self):
        t = self.iterations
        momentum = self.ema_momentum if t != 0 else 0.0
        for grp in self._groups:  # average <- momentum * average + (1 - momentum) * w
            average = grp["average"]
            average *= momentum
            average += np.multiply(grp.P, 1.0 - momentum, out=grp.tmp)
            if self.ema_overwrite_frequency and (t + 1) % self.ema_overwrite_frequency == 0:
                np.copyto(grp.P, average)

    def finalize_variable_values(self, var_list):
        """Copy the moving averages into the variables when `use_ema` (Keras, end of fit)."""
        if self.use_ema:
            for v in var_list:
                if id(v) in self._index:
                    v.assign(self.get_slot(v, "average"))

    def scale_loss(self, loss):
        """Multiply the loss by `loss_scale_factor`, if set, before backward()."""
        return loss if self.loss_scale_factor is None else loss * self.loss_scale_factor

    # ---- state --------------------------------------------------------------------------
    def get_slot(self, var, name):
        """Return the view of slot `name` ("momentum", "velocity", "average", ...) of `var`."""
        entry = self._index.get(id(var))
        if entry is None:
            raise ValueError(f"Variable {getattr(var, 'path', var)!r} is not tracked by "
                             f"optimizer {self.name!r}; call build() or apply() with it first.")
        grp, a, b = entry[3], entry[4], entry[5]
        if name not in grp.slots:
            raise ValueError(f"{type(self).__name__} has no slot {name!r}."
                             f"{did_you_mean(name, grp.slots)} Slots: {list(grp.slots)}.")
        return grp.slots[name][a:b].reshape(var.shape)

    def _scalar_state(self):
        return []

    @property
    def variables(self) -> list:
        """Optimizer state as arrays, in Keras order: iterations, learning_rate (if a float),
        EMA averages, gradient accumulators, then each variable's slots, then scalars."""
        out = [self._iterations] + ([self._lr_value] if self._schedule is None else [])
        names = [name for name, _ in self._all_slot_specs()]
        shared, own = names[:len(names) - len(self.slot_specs())], self.slot_specs()
        for name in shared:  # Keras order: averages, accumulators, then interleaved slots
            out += [self.get_slot(e[0], name) for e in self._entries]
        out += [self.get_slot(e[0], name) for e in self._entries for name, _ in own]
        return out + self._scalar_state()

    def set_weights(self, weights):
        """Write arrays (as returned by `variables`) into the optimizer state."""
        current = self.variables
        if len(weights) != len(current):
            raise ValueError(f"Optimizer {self.name!r} has {len(current)} state arrays, "
                             f"received {len(weights)}. Build it on the same variables first.")
        for target, value in zip(current, weights):
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(f"Optimizer state shape mismatch: expected {target.shape}, "
                                 f"received {value.shape}.")
            np.copyto(target, value, casting="unsafe")

    def save_own_variables(self, store):
        for i, value in enumerate(self.variables):
            store[str(i)] = np.array(value)

    def load_own_variables(self, store):
        self.set_weights([store[str(i)] for i in range(len(store.keys()))])

    def get_config(self) -> dict:
        """Return the constructor arguments (Keras 3 keys) as a JSON-safe dict."""
        if self._schedule is None:
            learning_rate = float(self._lr_value)
        elif hasattr(self._schedule, "get_config"):
            learning_rate = {"module": "keras.optimizers.schedules",
                             "class_name": type(self._schedule).__name__,
                             "config": self._schedule.get_config(), "registered_name": None}
        else:
            learning_rate = {"class_name": "function",
                             "config": getattr(self._schedule, "__name__", "schedule")}
        config = {"name": self.name, "learning_rate": learning_rate,
                  "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                  "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
                  "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                  "ema_overwrite_frequency": self.ema_overwrite_frequency,
                  "loss_scale_factor": self.loss_scale_factor,
                  "gradient_accumulation_steps": self.gradient_accumulation_steps}
        if self.decay:
            config["decay"] = self.decay
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild an optimizer from `get_config()` output (a schedule dict is deserialized)."""
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            from . import schedules  # NOTE: later issue; imported only when needed
            config["learning_rate"] = schedules.deserialize(lr, custom_objects=custom_objects)
        return cls(**config)

    def explain(self) -> str:
        """Return this optimizer's update rule, hyperparameters and reference as text."""
        doc = inspect.getdoc(type(self)) or ""
        rule = re.search(r"Update rule[^\n]*\n((?:[ \t]+\S[^\n]*\n?)+)", doc)
        ref = re.search(r"Reference:\n((?:[ \t]+\S[^\n]*\n?)+)", doc)
        config = {k: v for k, v in self.get_config().items() if k not in _BASE_ARGS}
        lines = [f"{type(self).__name__}(learning_rate={self.learning_rate:g}"
                 + "".join(f", {k}={v!r}" for k, v in config.items()) + ")"]
        lines += ["update rule, with t = iterations + 1:"]
        lines += ["  " + s.strip() for s in (rule.group(1).splitlines() if rule else [])]
        if self.weight_decay:
            lines.insert(1, f"  first: w <- w - lr * {self.weight_decay:g} * w  (decoupled)")
        for key in ("clipnorm", "global_clipnorm", "clipvalue"):
            if getattr(self, key):
                lines.insert(1, f"  gradients clipped with {key}={getattr(self, key):g}")
        if ref:
            lines += ["reference: " + " ".join(s.strip() for s in ref.group(1).splitlines())]
        return "\n".join(lines)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} learning_rate={self.learning_rate:g}>"
