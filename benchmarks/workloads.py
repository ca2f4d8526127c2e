"""Benchmark workloads and one runner per framework.

A workload is a small MLP classifier (float32, softmax output, sparse categorical
cross-entropy). Every runner of a case starts from the same initial weights and the same
batch, so the loss of its first training step must agree across frameworks (`run.py`
checks it; for inference-only workloads, the cross-entropy of the first predictions). A
runner exposes `train_step()` (forward + loss + backward + update), `infer()`
(inference-mode forward) and `fit_epoch()` (one epoch over a data set), all synchronous,
and `timed(mode, n)`. A workload says which of the modes "train", "infer", "fit" it times.

Frameworks are imported lazily inside their runner, so a missing one only skips itself.
"""
from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass

import numpy as np

SEED = 0
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3  # Keras defaults (torch momentum = 1 - 0.99)
ADAM = dict(lr=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7)  # Keras defaults


@dataclass(frozen=True)
class Workload:
    """An MLP: [Flatten] → (Dense relu [→ BN]) × len(hidden) → Dense softmax."""

    name: str
    input_shape: tuple
    hidden: tuple
    classes: int
    batch_norm: bool
    optimizer: str  # "sgd", "sgd_nesterov" (momentum 0.9) or "adam"
    init: str  # Keras name of the hidden kernels' initializer
    batch_sizes: tuple
    description: str
    modes: tuple = ("train", "infer")  # what is timed: training step, inference, fit epoch
    fit_samples: int = 0  # "fit": training-set size (Fashion-MNIST, else random data)

    @property
    def n_in(self) -> int:
        return math.prod(self.input_shape)


WORKLOADS = {w.name: w for w in [
    Workload("W1", (32, 32, 3), (128, 128), 100, False, "sgd_nesterov", "he_normal",
             (32, 256), "Flatten(32,32,3)→128→128→100, SGD nesterov"),
    Workload("W2", (4,), (64, 128, 128, 64, 64), 3, True, "adam", "glorot_uniform",
             (32,), "4→64→128→128→64→64→3, BN after each, Adam"),
    Workload("W3", (784,), (300, 100), 10, True, "adam", "glorot_uniform",
             (32, 256), "784→300→100→10, BN after each, Adam"),
    Workload("W4", (784,), (2048, 2048), 10, False, "sgd", "glorot_uniform",
             (512,), "784→2048→2048→10, SGD"),
    Workload("W5", (784,), (300, 100), 10, True, "adam", "glorot_uniform",
             (1, 1024), "W3's 784→300→100→10 BN net, inference only", modes=("infer",)),
    Workload("W6", (784,), (256,) * 20, 10, True, "adam", "he_normal",
             (32, 256), "784→256×20→10, BN after each, Adam"),
    Workload("W7", (784,), (128, 128), 10, False, "adam", "he_normal",
             (32,), "Fashion-MNIST fit epochs, 784→128→128→10, Adam", modes=("fit",),
             fit_samples=60000),
]}


def make_batch(wl: Workload, batch: int):
    """Deterministic float32 inputs and int64 labels for one case."""
    rng = np.random.default_rng([SEED, int(wl.name[1:]), batch])
    x = rng.standard_normal((batch, *wl.input_shape), dtype=np.float32)
    y = rng.integers(0, wl.classes, size=batch, dtype=np.int64)
    return x, y


def load_fit_data(wl: Workload, samples: int):
    """(x, y, source): the first `samples` Fashion-MNIST training images as float32 in
    [0, 1] and int64 labels, or random data of that shape when the files are not on disk
    (never downloads)."""
    try:
        from glassnet.datasets import fashion_mnist
        if fashion_mnist.is_available():
            (x, y), _ = fashion_mnist.load_data()
            x = x[:samples].reshape(-1, wl.n_in).astype(np.float32) / np.float32(255)
            return x, y[:samples].astype(np.int64), "Fashion-MNIST"
        why = "not on disk"
    except (ImportError, OSError, ValueError) as exc:  # a broken file: random data, noted
        why = f"{type(exc).__name__}: {exc}"
    rng = np.random.default_rng([SEED, int(wl.name[1:])])
    x = rng.random((samples, wl.n_in), dtype=np.float32)
    y = rng.integers(0, wl.classes, size=samples, dtype=np.int64)
    return x, y, f"random data (Fashion-MNIST {why})"


def make_data(wl: Workload, batch: int, samples: int | None = None):
    """(x, y, fit_data, source) for one case: the batch every runner starts from and, for
    "fit" workloads, the training set (x, y) it comes from (else None)."""
    if "fit" not in wl.modes:
        return *make_batch(wl, batch), None, None
    x, y, source = load_fit_data(wl, samples or wl.fit_samples)
    return x[:batch], y[:batch], (x, y), source


def make_weights(wl: Workload) -> list:
    """Initial weights in Keras order: kernel, bias[, gamma, beta, mean, var] per layer."""
    rng = np.random.default_rng([SEED, int(wl.name[1:])])
    weights, fan_in = [], wl.n_in
    for i, units in enumerate(wl.hidden + (wl.classes,)):
        last = i == len(wl.hidden)
        if wl.init == "he_normal" and not last:
            kernel = rng.standard_normal((fan_in, units)) * math.sqrt(2.0 / fan_in)
        else:
            limit = math.sqrt(6.0 / (fan_in + units))
            kernel = rng.uniform(-limit, limit, (fan_in, units))
        weights += [kernel.astype(np.float32), np.zeros(units, np.float32)]
        if wl.batch_norm and not last:
            weights += [np.ones(units, np.float32), np.zeros(units, np.float32),
                        np.zeros(units, np.float32), np.ones(units, np.float32)]
        fan_in = units
    return weights


class Runner:
    """Times `train_step`, `infer` or `fit_epoch`; subclasses build their model in
    `__init__` and keep the case's batch as `self.x`, `self.y` in their own array type.

    Loop-style runners implement `train_on(x, y)` (one step on any batch) and get
    `train_step` and a plain epoch loop (`fit_epoch`) from here.
    """

    fit_data = None  # (x, y, batch) for "fit" workloads: see `set_fit_data`

    def prepare(self, mode: str) -> None:
        """Untimed set-up before a block of `mode` steps (e.g. torch train()/eval())."""

    def sync(self, result):
        """Wait until `result` is computed (asynchronous frameworks); return it."""
        return result

    def as_batch(self, x, y):
        """NumPy batch → the arrays `train_on` takes."""
        return x, y

    def train_step(self):
        return self.sync(self.train_on(self.x, self.y))

    def set_fit_data(self, x, y, batch: int) -> None:
        self.fit_data, self.rng = (x, y, batch), np.random.default_rng(SEED)

    def fit_epoch(self):
        """One epoch of a plain loop over shuffled index batches (the last one partial)."""
        x, y, batch = self.fit_data
        order = self.rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            loss = self.train_on(*self.as_batch(x[idx], y[idx]))
        return self.sync(loss)

    def timed(self, mode: str, n: int) -> float:
        """Seconds per step (or per epoch), averaged over `n` after one untimed step.

        An epoch is long enough to need no untimed one before each block: `run.py` warms
        up with one timed epoch, once.
        """
        self.prepare(mode)
        step = getattr(self, {"train": "train_step", "infer": "infer", "fit": "fit_epoch"}[mode])
        if mode != "fit":
            step()
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        return (time.perf_counter() - t0) / n

    def first_loss(self, mode: str, y) -> float | None:
        """Loss from the initial weights (call once, first): of one training step, or, when
        `mode` is "infer", the cross-entropy of the first predictions at labels `y`."""
        self.prepare(mode)
        if mode == "infer":
            probs = np.asarray(self.infer(), dtype=np.float64)
            return float(-np.log(probs[np.arange(len(y)), y]).mean())
        return float(np.asarray(self.train_step()))


# ---- glassnet and Keras 3 (same API) ---------------------------------------------------
def build_keras_like(k, wl: Workload, weights: list):
    """Build and compile `wl` with the Keras API of module `k` (glassnet or keras)."""
    layers = [k.layers.Input(shape=wl.input_shape)]
    if len(wl.input_shape) > 1:
        layers.append(k.layers.Flatten())
    for units in wl.hidden:
        layers.append(k.layers.Dense(units, activation="relu", kernel_initializer=wl.init))
        if wl.batch_norm:
            layers.append(k.layers.BatchNormalization())
    layers.append(k.layers.Dense(wl.classes, activation="softmax"))
    model = k.Sequential(layers)
    optimizer = {"sgd": lambda: k.optimizers.SGD(0.01),
                 "sgd_nesterov": lambda: k.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                 "adam": lambda: k.optimizers.Adam(ADAM["lr"])}[wl.optimizer]()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    model.set_weights(weights)
    return model


class KerasLikeRunner(Runner):
    """The Keras API of module `k`: `train_on_batch`, `predict_on_batch`, `fit`."""

    def __init__(self, k, wl, x, y, weights):
        self.x, self.y = x, y
        self.model = build_keras_like(k, wl, weights)

    def train_step(self):
        return self.model.train_on_batch(self.x, self.y)

    def infer(self):
        return self.model.predict_on_batch(self.x)

    def fit_epoch(self):
        x, y, batch = self.fit_data
        return self.model.fit(x, y, batch_size=batch, epochs=1, shuffle=True, verbose=0)


class GlassnetRunner(KerasLikeRunner):
    """glassnet: `train_on_batch` / `predict_on_batch` / `fit`, or with `low_level=True`
    the internal `_train_batch` step and a direct `model(x, training=False)` call."""

    def __init__(self, wl, x, y, weights, low_level=False):
        import glassnet
        self.gn = glassnet
        super().__init__(glassnet, wl, x, y, weights)
        if low_level:
            self.train_step, self.infer = self._step, self._call

    def _step(self):
        loss, _ = self.model._train_batch(self.x, self.y, None,
                                          self.model.trainable_variables)
        return loss.data

    def _call(self):
        with self.gn.no_grad():
            return self.model(self.x, training=False).data


class KerasRunner(KerasLikeRunner):
    """Keras 3 on whatever backend was imported."""

    def __init__(self, wl, x, y, weights):
        import keras
        keras.utils.set_random_seed(SEED)
        super().__init__(keras, wl, x, y, weights)


# ---- PyTorch eager ----------------------------------------------------------------------
class TorchRunner(Runner):
    """Idiomatic PyTorch: nn.Sequential, logits + F.cross_entropy, torch.optim."""

    def __init__(self, wl, x, y, weights):
        import torch
        from torch import nn
        torch.manual_seed(SEED)
        self.torch = torch
        it = iter(weights)

        def load(tensor, array):
            with torch.no_grad():
                tensor.copy_(torch.from_numpy(array))

        mods = [nn.Flatten()]
        for layer, units in enumerate(wl.hidden + (wl.classes,)):
            kernel, bias = next(it), next(it)
            lin = nn.Linear(*kernel.shape)
            load(lin.weight, kernel.T.copy())
            load(lin.bias, bias)
            mods.append(lin)
            if layer < len(wl.hidden):
                mods.append(nn.ReLU())
                if wl.batch_norm:
                    bn = nn.BatchNorm1d(units, eps=BN_EPSILON, momentum=1 - BN_MOMENTUM)
                    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                        load(t, next(it))
                    mods.append(bn)
        self.model = nn.Sequential(*mods)
        params = self.model.parameters()
        self.opt = {"sgd": lambda: torch.optim.SGD(params, lr=0.01),
                    "sgd_nesterov": lambda: torch.optim.SGD(params, lr=0.01, momentum=0.9,
                                                            nesterov=True),
                    "adam": lambda: torch.optim.Adam(params, lr=ADAM["lr"],
                                                     eps=ADAM["epsilon"])}[wl.optimizer]()
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.loss_fn = nn.CrossEntropyLoss()

    def prepare(self, mode):
        self.model.train(mode != "infer")

    def as_batch(self, x, y):
        return self.torch.from_numpy(x), self.torch.from_numpy(y)

    def forward_loss(self, x, y):
        return self.loss_fn(self.model(x), y)

    def train_on(self, x, y):
        self.opt.zero_grad(set_to_none=True)
        loss = self.forward_loss(x, y)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def infer(self):
        with self.torch.inference_mode():
            return self.torch.softmax(self.model(self.x), dim=1)


class TorchCompileRunner(TorchRunner):
    """PyTorch with model + loss under `torch.compile` (default mode): the backward runs
    the compiled backward graph; zero_grad and the optimizer step stay eager. Compiling
    happens in the first step (untimed). The first compile error is kept: later cases
    report it at once instead of trying again."""

    error = None

    def __init__(self, wl, x, y, weights):
        super().__init__(wl, x, y, weights)
        self.forward_loss = self.torch.compile(self.forward_loss)

    def first_loss(self, mode, y):
        if TorchCompileRunner.error:
            raise RuntimeError(f"torch.compile failed in an earlier case: "
                               f"{TorchCompileRunner.error}")
        try:
            return super().first_loss(mode, y)
        except Exception as exc:
            TorchCompileRunner.error = f"{type(exc).__name__}: {exc}"
            raise


# ---- JAX jit (pure jax.numpy, hand-written optimizer) -----------------------------------
class JaxRunner(Runner):
    """One jitted function for the whole train step (buffers donated), one for inference."""

    def __init__(self, wl, x, y, weights):
        import jax
        import jax.numpy as jnp
        self.jax, n_hidden, bn = jax, len(wl.hidden), wl.batch_norm
        per = 6 if bn else 2
        # params[i] = (kernel, bias[, gamma, beta]); stats[i] = (mean, var) for BN layers
        params, stats, i = [], [], 0
        for layer in range(n_hidden + 1):
            if bn and layer < n_hidden:
                w = weights[i:i + per]
                params.append(tuple(map(jnp.asarray, w[:4])))
                stats.append(tuple(map(jnp.asarray, w[4:])))
                i += per
            else:
                params.append(tuple(map(jnp.asarray, weights[i:i + 2])))
                i += 2

        def forward(params, stats, x, train):
            h, new_stats = x.reshape(x.shape[0], -1), []
            for layer, p in enumerate(params[:-1]):
                h = jax.nn.relu(h @ p[0] + p[1])
                if bn:
                    mean, var = stats[layer]
                    if train:
                        mu, sigma2 = h.mean(0), h.var(0)
                        new_stats.append((BN_MOMENTUM * mean + (1 - BN_MOMENTUM) * mu,
                                          BN_MOMENTUM * var + (1 - BN_MOMENTUM) * sigma2))
                        mean, var = mu, sigma2
                    h = (h - mean) * jax.lax.rsqrt(var + BN_EPSILON) * p[2] + p[3]
            return h @ params[-1][0] + params[-1][1], new_stats

        def loss_fn(params, stats, x, y):
            logits, new_stats = forward(params, stats, x, True)
            logp = jax.nn.log_softmax(logits)
            return -jnp.take_along_axis(logp, y[:, None], axis=1).mean(), new_stats

        tmap = jax.tree_util.tree_map
        if wl.optimizer == "adam":
            b1, b2, eps, lr = ADAM["beta_1"], ADAM["beta_2"], ADAM["epsilon"], ADAM["lr"]
            opt_state = (tmap(jnp.zeros_like, params), tmap(jnp.zeros_like, params),
                         jnp.zeros((), jnp.float32))

            def update(params, grads, state):
                m, v, t = state
                t = t + 1
                m = tmap(lambda m, g: m + (1 - b1) * (g - m), m, grads)
                v = tmap(lambda v, g: v + (1 - b2) * (g * g - v), v, grads)
                step = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                params = tmap(lambda p, m, v: p - step * m / (jnp.sqrt(v) + eps),
                              params, m, v)
                return params, (m, v, t)
        elif wl.optimizer == "sgd_nesterov":
            opt_state = tmap(jnp.zeros_like, params)

            def update(params, grads, v):
                v = tmap(lambda v, g: 0.9 * v - 0.01 * g, v, grads)
                return tmap(lambda p, v, g: p + 0.9 * v - 0.01 * g, params, v, grads), v
        else:
            opt_state = ()

            def update(params, grads, state):
                return tmap(lambda p, g: p - 0.01 * g, params, grads), state

        def train_step(params, opt_state, stats, x, y):
            (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, stats, x, y)
            params, opt_state = update(params, grads, opt_state)
            return params, opt_state, new_stats, loss

        self._train = jax.jit(train_step, donate_argnums=(0, 1, 2))
        self._infer = jax.jit(lambda params, stats, x: jax.nn.softmax(
            forward(params, stats, x, False)[0]))
        self.state = (params, opt_state, stats)
        self.x, self.y = jax.device_put(x), jax.device_put(y)

    def train_on(self, x, y):
        """Dispatch one step (asynchronous: a fit loop only waits at the end)."""
        *self.state, loss = self._train(*self.state, x, y)
        return loss

    def sync(self, loss):
        self.jax.block_until_ready((self.state, loss))
        return loss

    def infer(self):
        return self._infer(self.state[0], self.state[2], self.x).block_until_ready()


# ---- NumPy floor ------------------------------------------------------------------------
class NumpyFloorRunner(Runner):
    """Straight-line NumPy for the same net: the floor a NumPy library can approach.

    Every activation and gradient buffer is allocated once (again only when the batch size
    changes, i.e. twice per epoch of a fit with a partial last batch) and written with
    `out=`. The trainable weights live in one flat buffer (their gradients in another), so
    the optimizer update is a handful of whole-buffer ufunc calls with no temporaries.
    """

    def __init__(self, wl, x, y, weights):
        self.opt, self.bn, self.y = wl.optimizer, wl.batch_norm, y
        self.x = x.reshape(len(x), -1)
        trainable, self.stats, i = [], [], 0
        for layer in range(len(wl.hidden) + 1):
            k = 4 if self.bn and layer < len(wl.hidden) else 2  # kernel, bias[, gamma, beta]
            trainable.append(weights[i:i + k])
            if k == 4:  # moving mean and variance stacked: one update for both
                self.stats.append(np.stack(weights[i + 4:i + 6]))
            i += k + (2 if k == 4 else 0)
        self.w = np.concatenate([w.ravel() for group in trainable for w in group])
        self.g, self.scratch = np.zeros_like(self.w), np.empty_like(self.w)
        self.params, self.grads, off = [], [], 0
        for group in trainable:  # views into the flat buffers
            self.params.append([])
            self.grads.append([])
            for w in group:
                self.params[-1].append(self.w[off:off + w.size].reshape(w.shape))
                self.grads[-1].append(self.g[off:off + w.size].reshape(w.shape))
                off += w.size
        self.units = [p[0].shape[1] for p in self.params]
        self.batch_stats = [np.empty((2, u), np.float32) for u in self.units[:-1]]
        n_slots = {"sgd": 0, "sgd_nesterov": 1, "adam": 2}[wl.optimizer]
        self.slots = [np.zeros_like(self.w) for _ in range(n_slots)]
        self.t, self.rows = 0, np.arange(0)
        self._allocate(len(x))

    def _allocate(self, n: int) -> None:
        """Activation and gradient buffers for batches of `n` rows (kept while n is)."""
        if n == len(self.rows):
            return
        units, self.rows = self.units, np.arange(n)
        self.act = [np.empty((n, u), np.float32) for u in units]  # relu outputs, then logits
        self.xhat = [np.empty((n, u), np.float32) for u in units[:-1]] if self.bn else []
        self.out = [np.empty((n, u), np.float32) for u in units[:-1]] if self.bn else []
        self.dx = [np.empty((n, p[0].shape[0]), np.float32) for p in self.params[1:]]

    def train_on(self, x, y):
        x = x.reshape(len(x), -1)
        self._allocate(len(x))
        h, inv_std = x, []
        for layer, p in enumerate(self.params[:-1]):
            a = np.matmul(h, p[0], out=self.act[layer])
            a += p[1]
            np.maximum(a, 0, out=a)
            h = a
            if self.bn:  # y = gamma * (a - mean) / sqrt(var + eps) + beta
                mean_var, xhat = self.batch_stats[layer], self.xhat[layer]
                np.mean(a, axis=0, out=mean_var[0])
                np.subtract(a, mean_var[0], out=xhat)
                np.mean(np.square(xhat, out=self.out[layer]), axis=0, out=mean_var[1])
                inv = 1.0 / np.sqrt(mean_var[1] + BN_EPSILON)
                xhat *= inv
                h = np.multiply(xhat, p[2], out=self.out[layer])
                h += p[3]
                inv_std.append(inv)
                stats = self.stats[layer]  # moving = m * moving + (1 - m) * batch
                stats *= BN_MOMENTUM
                stats += (1 - BN_MOMENTUM) * mean_var
        z = np.matmul(h, self.params[-1][0], out=self.act[-1])
        z += self.params[-1][1]
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        loss = -np.log(z[self.rows, y]).mean()
        z[self.rows, y] -= 1.0  # dL/dlogits = (softmax - onehot) / batch
        z /= len(z)
        g = z
        for layer in range(len(self.params) - 1, -1, -1):
            p, gr = self.params[layer], self.grads[layer]
            if layer < len(self.params) - 1:  # back through this layer's BN, then relu
                a = self.act[layer]
                if self.bn:  # dx = gamma*inv/N * (N*g - sum(g) - xhat * sum(g*xhat))
                    xhat = self.xhat[layer]
                    np.sum(g, axis=0, out=gr[3])
                    np.sum(np.multiply(g, xhat, out=self.out[layer]), axis=0, out=gr[2])
                    g *= len(g)
                    g -= gr[3]
                    g -= np.multiply(xhat, gr[2], out=self.out[layer])
                    g *= p[2] * (inv_std[layer] / len(g))
                g *= a > 0
            h_in = x if layer == 0 else (self.out if self.bn else self.act)[layer - 1]
            np.matmul(h_in.T, g, out=gr[0])
            np.sum(g, axis=0, out=gr[1])
            if layer:
                g = np.matmul(g, p[0].T, out=self.dx[layer - 1])
        self._update()
        return loss

    def _update(self):
        w, g, tmp = self.w, self.g, self.scratch
        if self.opt == "sgd":  # w -= lr * g
            g *= 0.01
            w -= g
        elif self.opt == "sgd_nesterov":  # Keras: v = m*v - lr*g;  w += m*v - lr*g
            v, = self.slots
            g *= 0.01
            v *= 0.9
            v -= g
            w -= g
            w += np.multiply(v, 0.9, out=tmp)
        else:  # Adam, Keras form: m += (1-b1)(g-m); v += (1-b2)(g²-v); w -= step*m/(√v+ε)
            m, v = self.slots
            self.t += 1
            b1, b2 = ADAM["beta_1"], ADAM["beta_2"]
            m += np.multiply(np.subtract(g, m, out=tmp), 1 - b1, out=tmp)
            g *= g
            v += np.multiply(np.subtract(g, v, out=tmp), 1 - b2, out=tmp)
            step = ADAM["lr"] * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
            np.sqrt(v, out=tmp)
            tmp += ADAM["epsilon"]
            np.divide(m, tmp, out=tmp)
            tmp *= step
            w -= tmp

    def infer(self):
        self._allocate(len(self.x))
        h = self.x
        for layer, p in enumerate(self.params[:-1]):
            a = np.matmul(h, p[0], out=self.act[layer])
            a += p[1]
            np.maximum(a, 0, out=a)
            if self.bn:  # folded: a * scale + (beta - mean * scale)
                mean, var = self.stats[layer]
                scale = p[2] / np.sqrt(var + BN_EPSILON)
                a *= scale
                a += p[3] - mean * scale
            h = a
        z = np.matmul(h, self.params[-1][0], out=self.act[-1])
        z += self.params[-1][1]
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z


class GemmRunner(Runner):
    """Only the matrix products of a training step, for the "GEMMs only" column: forward
    h @ W per Dense layer, backward hᵀ @ g (kernel gradient) and g @ Wᵀ (input gradient,
    none for the first layer). float32, the NumPy floor's shapes and memory layouts
    (transposes are views), preallocated `out=`; no loss, so no first-step check."""

    def __init__(self, wl, x, y, weights):
        rng = np.random.default_rng(SEED)
        h = x.reshape(len(x), -1)
        forward, backward = [], []
        for i, kernel in enumerate(w for w in weights if w.ndim == 2):
            out = np.zeros((len(h), kernel.shape[1]), np.float32)
            grad = rng.standard_normal(out.shape, dtype=np.float32)  # dL/d(out)
            forward.append((h, kernel, out))
            backward.insert(0, (h.T, grad, np.empty_like(kernel)))
            if i:
                backward.insert(1, (grad, kernel.T, np.empty_like(h)))
            h = out
        self.products = forward + backward

    def train_step(self):
        for a, b, out in self.products:
            np.matmul(a, b, out=out)

    def fit_epoch(self):
        """The GEMMs of one epoch: one step's products per batch (the floor of a fit)."""
        x, _, batch = self.fit_data
        for _ in range(0, len(x), batch):
            self.train_step()

    def first_loss(self, mode, y):
        """No loss to compare: just one untimed step."""
        self.train_step()


RUNNERS = {
    "glassnet": lambda wl, x, y, w: GlassnetRunner(wl, x, y, w),
    "glassnet-step": lambda wl, x, y, w: GlassnetRunner(wl, x, y, w, low_level=True),
    "numpy": NumpyFloorRunner,
    "gemm": GemmRunner,
    "torch": TorchRunner,
    "torch-compile": TorchCompileRunner,
    "jax": JaxRunner,
    "keras": KerasRunner,
}
