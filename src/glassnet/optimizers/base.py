"""Optimizer: the Keras 3 contract, with every variable packed into one flat buffer per dtype.

On first use, and whenever the set of variables changes, the variables are laid end to end in
a flat buffer P: each `var.data` becomes a view of its segment, and `var._grad_buffer` a view
of the same segment of a gradient buffer G, so autograd writes gradients straight into G.
Slots (momentum, m, v, ...) are flat arrays the size of P, so a step is a constant number of
NumPy calls per dtype, however many variables there are. A new set of variables (a layer was
frozen) repacks: the slots of the variables that stay are carried over, those that leave get
their own memory back and their slots are kept aside in case they return. `lr_multiplier`
and `exclude_from_weight_decay` become flat masks at packing time.

One step, in Keras 3 order: divide by `loss_scale_factor`, [accumulate], clip, decoupled
weight decay, `update_step`, EMA, constraints, `iterations += 1`.
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
from . import schedules

_REGISTRY: dict = {}
_NAME_COUNTS: dict = {}
_BASE_ARGS = ("name", "learning_rate", "weight_decay", "clipnorm", "global_clipnorm",
              "clipvalue", "use_ema", "ema_momentum", "ema_overwrite_frequency",
              "loss_scale_factor", "gradient_accumulation_steps")  # Keras 3 config keys


def check_number(name, value, low=0.0, high=math.inf, low_open=False, high_open=False):
    """Return `value` as a float, or raise a ValueError naming the accepted interval."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and (low < value if low_open else low <= value)
            and (value < high if high_open else value <= high)):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"`{name}` must be a number in {interval}. Received: {name}={value!r}")
    return float(value)


def _check_int(name, value, minimum):
    if value is not None and (not isinstance(value, (int, np.integer)) or value < minimum):
        raise ValueError(f"`{name}` must be an integer >= {minimum} or None. "
                         f"Received: {name}={value!r}")
    return value


def _auto_name(cls_name: str) -> str:
    snake = re.sub(r"([a-z])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls_name))
    count = _NAME_COUNTS[snake.lower()] = _NAME_COUNTS.get(snake.lower(), -1) + 1
    return snake.lower() + (f"_{count}" if count else "")


class _Packed:
    """The variables of one dtype laid end to end: P (weights), G (gradients), slots, scratch."""

    def __init__(self, dtype, variables):
        self.xp, self.dtype, self.vars = backend.xp_of(variables[0].data), dtype, variables
        self.sizes = np.array([v.size for v in variables], dtype=np.intp)
        self.starts = np.concatenate(([0], np.cumsum(self.sizes)[:-1])).astype(np.intp)
        n = int(self.sizes.sum())
        self.P, self.G = self.xp.zeros(n, dtype), self.xp.zeros(n, dtype)
        self._tmp = self._tmp2 = None
        self.slots = {}
        self.lr_scale = self.lr_buf = self.decay_mask = None
        # the compiled kernels (native.py) take contiguous float32/float64 host arrays
        self.native_ok = self.xp is np and np.dtype(dtype).char in "fd"

    def __getitem__(self, slot_name):
        return self.slots[slot_name]

    @property
    def tmp(self):
        """A scratch buffer the size of P, allocated on first use (SGD needs none)."""
        if self._tmp is None:
            self._tmp = self.xp.empty_like(self.P)
        return self._tmp

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
        ema_momentum: average <- ema_momentum * average + (1 - ema_momentum) * w.
            Defaults to 0.99.
        ema_overwrite_frequency: every this many steps copy the average into the weights.
            Defaults to None (only `finalize_variable_values` copies it).
        loss_scale_factor: gradients are divided by it before use. Defaults to None.
        gradient_accumulation_steps: update once every this many calls, with the mean
            gradient. Defaults to None.
        name: defaults to the snake-case class name, made unique.
        **kwargs: legacy `lr` (alias of `learning_rate`) and Keras 2 `decay`
            (lr_t = lr / (1 + decay * iterations)), both deprecated.

    Each variable's `lr_multiplier` (default 1.0) scales its learning rate, decay included.

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
        for key, value in [*clips.items(), ("weight_decay", weight_decay)]:
            setattr(self, key, None if value is None else check_number(key, value))
        self.use_ema = bool(use_ema)
        self.ema_momentum = check_number("ema_momentum", ema_momentum, 0.0, 1.0)
        self.ema_overwrite_frequency = _check_int(
            "ema_overwrite_frequency", ema_overwrite_frequency, 1)
        self.loss_scale_factor = None if loss_scale_factor is None else check_number(
            "loss_scale_factor", loss_scale_factor, low_open=True)
        self.gradient_accumulation_steps = _check_int(
            "gradient_accumulation_steps", gradient_accumulation_steps, 2)
        self.name = name if name is not None else _auto_name(type(self).__name__)
        self._iterations, self._lr_value = np.zeros((), np.int64), np.zeros((), np.float64)
        self.learning_rate = learning_rate
        self._exclude_ids, self._exclude_pattern = set(), None
        self._key, self._vars, self._entries, self._groups = None, (), [], []
        self._multipliers = []
        self._index, self._empty, self._parked, self.built = {}, [], {}, False

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
        steps = self.gradient_accumulation_steps
        return int(self._iterations) // steps if steps else int(self._iterations)

    @iterations.setter
    def iterations(self, value):
        self._iterations[...] = int(value)

    @property
    def learning_rate(self) -> float:
        """The current learning rate as a float (a schedule is evaluated at the step count)."""
        raw, schedule = int(self._iterations), self._schedule
        if schedule is None:
            lr = float(self._lr_value)
        else:
            lr = float(schedule(raw) if self._schedule_takes_step else schedule())
        return lr / (1.0 + self.decay * raw) if self.decay else lr

    @learning_rate.setter
    def learning_rate(self, value):
        if callable(value) and not isinstance(value, Tensor):
            self._schedule, self._schedule_takes_step = value, True
            try:  # Keras calls a schedule with the step, a plain callable with nothing
                params = inspect.signature(value).parameters.values()
            except (TypeError, ValueError):
                return
            self._schedule_takes_step = any(p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL,
                                                       p.POSITIONAL_OR_KEYWORD) for p in params)
        else:
            if getattr(self, "_schedule", None) is not None:
                raise TypeError(
                    f"This optimizer was created with a learning-rate schedule "
                    f"({type(self._schedule).__name__}), so its learning rate cannot be set to "
                    f"a number (received {value!r}). Build the optimizer with a float "
                    "learning rate to use LearningRateScheduler or ReduceLROnPlateau."
                )
            value = float(value) if isinstance(value, (np.ndarray, Tensor)) else value
            self._lr_value[...] = check_number("learning_rate", value)
            self._schedule = None

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exclude from weight decay the variables in `var_list` and those whose `name`
        contains (regex search) any string in `var_names` (Keras 3)."""
        self._exclude_ids = {id(v) for v in var_list or ()}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None
        for grp in self._groups:
            self._set_decay_mask(grp)

    def slot_specs(self):
        """Return ((keras_slot_name, initial_value), ...) for the slots this optimizer keeps."""
        return ()

    def update_step(self, g, w, lr, grp):
        """Update the flat weights `w` in place from the flat gradient `g`.

        `lr` is a float, or a flat array when variables have an `lr_multiplier`; slots are
        `grp["name"]`, `grp.tmp` / `grp.tmp2` scratch buffers, `grp.xp` the array module.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement update_step().")

    def _before_update(self):
        """Hook run once per applied update, before any `update_step` (Nadam's u-product)."""

    def _all_slot_specs(self):
        # NOTE: an EMA average starts at the weight (None): a variable that joins late is not
        # averaged with zeros (Keras starts at 0 but overwrites it on the first step anyway).
        return ((("average", None),) if self.use_ema else ()) + (
            (("gradient_accumulator", 0.0),) if self.gradient_accumulation_steps else ()
        ) + tuple(self.slot_specs())

    # ---- packing ------------------------------------------------------------------------
    def build(self, variables):
        """Pack `variables` into flat buffers and create the slots (Keras `build`)."""
        variables = list(variables)
        if self._key != tuple(map(id, variables)):
            self._pack(variables)
        elif self._multipliers != [v.lr_multiplier for v in variables]:
            self._set_lr_scales()

    def _set_lr_scales(self):
        """(Re)build each group's flat lr_multiplier mask; a changed multiplier takes
        effect at the next step without repacking."""
        for grp in self._groups:
            multipliers = [float(getattr(v, "lr_multiplier", 1.0)) for v in grp.vars]
            if any(m != 1.0 for m in multipliers):
                grp.lr_scale, grp.lr_buf = grp.repeat(multipliers), grp.xp.empty_like(grp.P)
            else:
                grp.lr_scale = grp.lr_buf = None
        self._multipliers = [v.lr_multiplier for v in self._vars]

    def _pack(self, variables):
        ids = [id(v) for v in variables]
        if len(set(ids)) != len(ids):
            raise ValueError("The same variable was passed to the optimizer twice.")
        for v in variables:
            if not isinstance(v, Variable) or v.dtype.kind != "f":
                raise TypeError(f"Optimizers update float glassnet Variables. Received: {v!r}")
        keep = set(ids)
        carried = {i: self._parked.pop(i)[1] for i in ids if i in self._parked}
        for v, view, gview, grp, a, b in self._entries:
            state = {k: s[a:b].copy() for k, s in grp.slots.items()}
            if id(v) in keep:  # NOTE: keyed by object identity, so momentum survives a repack
                carried[id(v)] = state
            else:  # leaving: it gets its own memory back; its slots wait in case it returns
                v.data = np.array(v.data)
                if v.grad is gview:
                    v.grad = np.array(gview)
                v._grad_buffer, self._parked[id(v)] = None, (v, state)
        by_dtype, where, self._groups = {}, {}, []
        for v in variables:
            if v.size:
                by_dtype.setdefault(v.dtype, []).append(v)
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
            self._set_decay_mask(grp)
            self._groups.append(grp)
        self._entries, self._index = [where[i] for i in ids if i in where], where
        self._empty = [v for v in variables if not v.size]
        self._vars, self._key, self.built = tuple(variables), tuple(ids), True
        self._set_lr_scales()

    def _set_decay_mask(self, grp):
        flags = [id(v) not in self._exclude_ids and (
            self._exclude_pattern is None or self._exclude_pattern.search(v.name) is None)
            for v in grp.vars]
        grp.decay_all = all(flags)
        grp.decay_mask = grp.repeat(flags) if any(flags) and not all(flags) else None

    @staticmethod
    def _rehome(entry):
        v, view, gview = entry[:3]
        if v.data is not view:  # someone replaced .data: take its value, re-home it
            np.copyto(view, v.data)
            v.data = view
        v._grad_buffer = gview

    # ---- applying gradients -------------------------------------------------------------
    def apply_gradients(self, grads_and_vars):
        """Apply (gradient, variable) pairs (Keras); see `apply`. Returns `iterations`."""
        pairs = list(grads_and_vars)
        if pairs:
            self.apply(*zip(*pairs))
        return self.iterations

    def apply(self, grads, trainable_variables=None):
        """Apply `grads` (arrays, Tensors or None) to `trainable_variables`, one to one.

        A gradient that *is* the variable's `_grad_buffer` view is used without a copy, others
        are copied into the flat buffer G (clipping then scales G in place). A None gradient
        skips its variable (weights and slots unchanged), with a warning, as in Keras.
        """
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None and not self.built:
            raise ValueError("When passing `grads` without `variables`, the optimizer must "
                             "already be built: call `optimizer.build(variables)` first.")
        variables = list(self._vars if trainable_variables is None else trainable_variables)
        if len(grads) != len(variables):
            raise ValueError(f"Received {len(grads)} gradients for {len(variables)} variables;"
                             " they must match one to one.")
        self.build(variables)
        skipped, updated = [], []
        for entry, g in zip(self._entries, (g for g, v in zip(grads, variables) if v.size)):
            gview = entry[2]
            self._rehome(entry)
            if g is None:
                gview.fill(0)
                skipped.append(entry)
                continue
            if g is not gview:
                g = as_array(g)
                if g.shape != gview.shape:
                    raise ValueError(f"Gradient for variable {entry[0].path!r} has shape "
                                     f"{g.shape}, expected {gview.shape}.")
                np.copyto(gview, g, casting="unsafe")
            updated.append(entry[0])
        self._finish_step(skipped, updated)

    def step(self, variables):
        """The training loop's fast path: apply the gradients `backward()` left in G.

        Assumes `loss.backward()` wrote each gradient into the variable's `_grad_buffer`.
        A variable whose `.grad` is None is skipped (weights and slots unchanged). Then
        constraints are applied and every `var.grad` is reset to None for the next backward.
        """
        variables = variables if isinstance(variables, (list, tuple)) else list(variables)
        if self._key != tuple(map(id, variables)):
            self._pack(variables)
        elif self._multipliers != [v.lr_multiplier for v in variables]:
            self._set_lr_scales()  # NOTE: a layer's lr_multiplier changed since the last step
        skipped, constrained = [], []
        for entry in self._entries:  # Python checks only: no NumPy call per variable
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
                constrained.append(v)
        for v in self._empty:
            v.grad = None
        self._finish_step(skipped, constrained)

    def _finish_step(self, skipped, updated):
        if skipped:
            if len(skipped) == len(self._entries):
                raise ValueError("No gradients provided for any variable (does the loss "
                                 "depend on them? was backward() called?).")
            warnings.warn(f"Gradients do not exist for variables {[e[0].path for e in skipped]}"
                          " when minimizing the loss; they are not updated.", stacklevel=3)
        self._update(skipped)
        for v in updated:
            if v.constraint is not None:
                v.assign(v.constraint(v.data))
        self._iterations += 1

    def _update(self, skipped):
        groups, steps = self._groups, self.gradient_accumulation_steps
        # NOTE: skipped variables are restored afterwards: Keras' exact skip, cheap when rare.
        saved = [(e, {k: s[e[4]:e[5]].copy() for k, s in e[3].slots.items()
                      if k != "gradient_accumulator"}, e[1].copy()) for e in skipped]
        if self.loss_scale_factor is not None:
            for grp in groups:
                grp.xp.divide(grp.G, self.loss_scale_factor, out=grp.G)
        apply_now = not steps or (int(self._iterations) + 1) % steps == 0
        if steps:
            for grp in groups:  # g <- (g + accumulated) / steps on the updating call
                acc = grp["gradient_accumulator"]
                acc += grp.G
                if apply_now:
                    grp.xp.divide(acc, steps, out=grp.G)
                    acc.fill(0)
        if apply_now:
            self._clip()
            lr, wd = self.learning_rate, self.weight_decay
            self._before_update()
            for grp in groups:
                lr_g = lr if grp.lr_scale is None else grp.xp.multiply(grp.lr_scale, lr,
                                                                       out=grp.lr_buf)
                if wd and grp.decay_all:
                    grp.P *= 1.0 - lr_g * wd  # w <- w - lr * wd * w
                elif wd and grp.decay_mask is not None:
                    grp.P -= grp.xp.multiply(grp.P, grp.decay_mask, out=grp.tmp) * (lr_g * wd)
                self.update_step(grp.G, grp.P, lr_g, grp)
        for (v, view, _, grp, a, b), slots, old in saved:
            np.copyto(view, old)
            for k, value in slots.items():
                grp.slots[k][a:b] = value
        if self.use_ema:
            self._update_ema()

    def _clip(self):
        if self.clipnorm:  # per variable: g * clipnorm / max(||g||, clipnorm)
            c = self.clipnorm
            for grp in self._groups:
                xp = grp.xp
                norms = xp.sqrt(xp.add.reduceat(xp.multiply(grp.G, grp.G, out=grp.tmp),
                                                grp.starts))
                # NOTE: `not <=` so that a NaN norm also takes this branch (NaN propagates,
                # as in Keras, instead of leaving that variable unclipped).
                if not norms.max() <= c:
                    grp.G *= xp.repeat(c / xp.maximum(norms, c), grp.sizes)
        elif self.global_clipnorm:  # all together: g * clip / max(||G||, clip)
            c = self.global_clipnorm
            norm = math.sqrt(sum(float(grp.xp.dot(grp.G, grp.G)) for grp in self._groups))
            scale = c / max(norm, c) if math.isfinite(norm) else math.nan
            if scale != 1.0:
                for grp in self._groups:
                    grp.G *= scale
        elif self.clipvalue:
            for grp in self._groups:
                grp.xp.clip(grp.G, -self.clipvalue, self.clipvalue, out=grp.G)

    def _update_ema(self):
        t = self.iterations
        momentum = self.ema_momentum if t != 0 else 0.0
        for grp in self._groups:  # average <- momentum * average + (1 - momentum) * w
            average = grp["average"]
            average *= momentum
            average += grp.xp.multiply(grp.P, 1.0 - momentum, out=grp.tmp)
            if self.ema_overwrite_frequency and (t + 1) % self.ema_overwrite_frequency == 0:
                grp.xp.copyto(grp.P, average)

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
        """State arrays in Keras order: iterations, learning_rate (when a float), averages,
        accumulators, each variable's slots in turn, then scalars. Writable views."""
        out = [self._iterations] + ([self._lr_value] if self._schedule is None else [])
        names, own = [n for n, _ in self._all_slot_specs()], self.slot_specs()
        for name in names[:len(names) - len(own)]:
            out += [self.get_slot(e[0], name) for e in self._entries]
        out += [self.get_slot(e[0], name) for e in self._entries for name, _ in own]
        return out + self._scalar_state()

    def set_weights(self, weights):
        """Write arrays (in the order of `variables`) into the optimizer state."""
        current = self.variables
        if len(weights) != len(current):
            raise ValueError(f"Optimizer {self.name!r} has {len(current)} state arrays, "
                             f"received {len(weights)}. Build it on the same variables first.")
        for target, value in zip(current, weights):
            if np.shape(value) != target.shape:
                raise ValueError(f"Optimizer state shape mismatch: expected {target.shape}, "
                                 f"received {np.shape(value)}.")
            np.copyto(target, value, casting="unsafe")

    def save_own_variables(self, store):
        for i, value in enumerate(self.variables):
            store[str(i)] = np.array(value)

    def load_own_variables(self, store):
        self.set_weights([store[str(i)] for i in range(len(store.keys()))])

    def get_config(self) -> dict:
        """Return the constructor arguments (Keras 3 keys) as a JSON-safe dict."""
        schedule = self._schedule
        learning_rate = float(self._lr_value) if schedule is None else schedules.serialize(
            schedule)
        config = {k: learning_rate if k == "learning_rate" else getattr(self, k)
                  for k in _BASE_ARGS}
        return {**config, "decay": self.decay} if self.decay else config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild an optimizer from `get_config()` output (a schedule dict is deserialized)."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"],
                                                            custom_objects=custom_objects)
        return cls(**config)

    def explain(self) -> str:
        """Return this optimizer's update rule, hyperparameters and reference as text."""
        doc = inspect.getdoc(type(self)) or ""
        rule = re.search(r"Update rule[^\n]*\n((?:[ \t]+\S[^\n]*\n?)+)", doc)
        ref = re.search(r"Reference:\n((?:[ \t]+\S[^\n]*\n?)+)", doc)
        extra = {k: v for k, v in self.get_config().items() if k not in _BASE_ARGS}
        lines = [f"{type(self).__name__}(learning_rate={self.learning_rate:g}"
                 + "".join(f", {k}={v!r}" for k, v in extra.items()) + ")"]
        for key in ("clipnorm", "global_clipnorm", "clipvalue"):
            if getattr(self, key):
                lines.append(f"  gradients clipped with {key}={getattr(self, key):g}")
        if self.weight_decay:
            lines.append(f"  first: w <- w - lr * {self.weight_decay:g} * w  (decoupled)")
        lines.append("update rule, with t = iterations + 1:")
        lines += ["  " + s.strip() for s in (rule.group(1).splitlines() if rule else [])]
        if ref:
            lines.append("reference: " + " ".join(s.strip() for s in ref.group(1).splitlines()))
        return "\n".join(lines)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} learning_rate={self.learning_rate:g}>"
