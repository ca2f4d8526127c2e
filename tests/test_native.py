"""The compiled kernels (_native.c) against the NumPy code they replace.

Every kernel has a NumPy twin at its call site; these tests run both on the same inputs.
Optimizer updates must be bit-identical (same float operations, same order; the kernels
flush subnormal slots to zero, NumPy keeps them); batch norm and
ReLU too on 2-D float32/float64 batches; softmax cross-entropy to a few ulps (glibc's exp vs
NumPy's). Without the built extension the whole module is skipped, except where
GLASSNET_REQUIRE_NATIVE=1 (set by .ci/run, which must build it).
"""
import os

import numpy as np
import pytest

import glassnet as keras
from glassnet import native
from glassnet.autograd import Tensor, Variable, fused, gradcheck

if not native.available():
    if os.environ.get("GLASSNET_REQUIRE_NATIVE") == "1":
        pytest.fail("GLASSNET_REQUIRE_NATIVE=1 but glassnet._native is not built "
                    "(pip install -e . needs gcc and the Python headers)", pytrace=False)
    pytest.skip("glassnet._native is not built (no C compiler at install time)",
                allow_module_level=True)

DTYPES = ["float32", "float64"]


@pytest.fixture(autouse=True)
def _kernels_on():
    native.set_enabled(True)
    yield
    native.set_enabled(True)


def _both(fn):
    """fn() with the kernels, then with NumPy alone."""
    with_kernels = fn()
    with native.disabled():
        assert not native.enabled()
        without = fn()
    assert native.enabled()
    return with_kernels, without


def _train_weights(optimizer_factory, dtype, steps=5):
    rng = np.random.default_rng(0)
    shapes = [(7, 5), (5,), (3,)]
    variables = [Variable(rng.standard_normal(s), dtype=dtype, name=f"v{i}")
                 for i, s in enumerate(shapes)]
    opt = optimizer_factory()
    for _ in range(steps):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        opt.apply_gradients(zip(grads, variables))
    return [v.numpy().copy() for v in variables] + [s.copy() for s in opt.variables[1:]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factory", [
    lambda: keras.optimizers.Adam(learning_rate=0.01),
    lambda: keras.optimizers.Adam(learning_rate=0.01, amsgrad=True),
    lambda: keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1),
    lambda: keras.optimizers.SGD(learning_rate=0.1),
    lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
    lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
], ids=["adam", "amsgrad", "adamw", "sgd", "momentum", "nesterov"])
def test_optimizer_updates_are_bit_identical(factory, dtype):
    fast, slow = _both(lambda: _train_weights(factory, dtype))
    assert len(fast) == len(slow) >= 3
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factory", [
    lambda: keras.optimizers.Adam(learning_rate=0.01),
    lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
    lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
], ids=["adam", "momentum", "nesterov"])
def test_optimizer_kernels_flush_subnormal_slots(factory, dtype):
    """Slots of weights whose gradient stays zero decay into subnormals (slow on x86); the
    kernels store 0 instead and otherwise agree with NumPy bit for bit."""
    if not native.kernels.FLUSHES_SUBNORMALS:
        pytest.skip("this CPU's kernels keep subnormals")
    tiny = np.finfo(dtype).tiny
    subnormal = np.array([tiny / 4, tiny / 3, 0.5, 0.25], dtype)  # valid for v too

    def decayed_slots():
        w = Variable(np.ones(4), dtype=dtype)
        opt = factory()
        opt.apply_gradients([(np.ones(4, dtype), w)])  # creates the slots
        slots = [v for v in opt.variables if np.ndim(v) == 1]
        for slot in slots:
            slot[...] = subnormal
        opt.apply_gradients([(np.zeros(4, dtype), w)])
        return [w.numpy().copy()] + [s.copy() for s in slots]

    fast, slow = _both(decayed_slots)
    for a, b in zip(fast, slow):
        is_subnormal = (b != 0) & (np.abs(b) < tiny)
        assert not np.any((a != 0) & (np.abs(a) < tiny)), a
        np.testing.assert_array_equal(a[~is_subnormal], b[~is_subnormal])
    assert np.any(fast[1][:2] == 0) and np.all(fast[1][2:] != 0)
    # the caller's floating-point mode is restored: NumPy still produces subnormals
    assert np.multiply(np.asarray(tiny, dtype), np.asarray(0.5, dtype)) != 0


def test_optimizer_falls_back_for_float16_and_lr_multipliers():
    rng = np.random.default_rng(1)
    v16 = Variable(rng.standard_normal(4).astype("float16"), dtype="float16")
    opt = keras.optimizers.Adam(0.1)
    opt.apply_gradients([(np.ones(4, "float16"), v16)])  # no kernel for float16: NumPy path
    assert v16.dtype == np.float16 and np.all(np.isfinite(v16.numpy()))

    def train_with_multiplier():
        w = Variable(np.ones(3, "float32"))
        w.lr_multiplier = 0.5  # per-element learning rates: an array, NumPy path
        opt = keras.optimizers.Adam(0.1)
        opt.apply_gradients([(np.ones(3, "float32"), w)])
        return w.numpy()
    fast, slow = _both(train_with_multiplier)
    np.testing.assert_array_equal(fast, slow)
    assert not np.allclose(fast, 1.0)


def _bn_step(dtype, gamma_on=True, beta_on=True, rows=16, channels=6, moving=True):
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((rows, channels)).astype(dtype) * 3 + 1,
               requires_grad=True)
    gamma = Variable(rng.standard_normal(channels), dtype=dtype) if gamma_on else None
    beta = Variable(rng.standard_normal(channels), dtype=dtype) if beta_on else None
    mm, mv = np.full(channels, 0.5, dtype), np.full(channels, 2.0, dtype)
    y, mean, var = fused.batch_norm_train(x, gamma, beta, epsilon=1e-3,
                                          moving=(mm, mv, 0.9) if moving else None)
    y.backward(rng.standard_normal((rows, channels)).astype(dtype))
    out = [y.data, mean, var, mm, mv, x.grad]
    out += [p.grad for p in (gamma, beta) if p is not None]
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma_on,beta_on", [(True, True), (False, True), (True, False),
                                              (False, False)])
def test_batch_norm_matches_numpy(dtype, gamma_on, beta_on):
    fast, slow = _both(lambda: _bn_step(dtype, gamma_on, beta_on))
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


def _bn_grads_after_writes(write):
    """Gradients of a BN node whose input array or returned batch mean the caller writes
    between forward and backward: both backward passes recompute xhat from the input."""
    rng = np.random.default_rng(4)
    xd = rng.standard_normal((8, 3)).astype("float32")
    x = Tensor(xd, requires_grad=True)
    gamma = Variable(rng.standard_normal(3), dtype="float32")
    beta = Variable(rng.standard_normal(3), dtype="float32")
    y, mean, _ = fused.batch_norm_train(x, gamma, beta)
    write(xd, mean)
    y.backward(rng.standard_normal((8, 3)).astype("float32"))
    return [x.grad, gamma.grad, beta.grad]


@pytest.mark.parametrize("write", ["input", "returned mean"])
def test_batch_norm_paths_agree_when_the_caller_writes_arrays(write):
    def change(xd, mean):
        if write == "input":
            xd += 1.0  # read again by backward, in both paths
        else:
            mean -= 1.0  # a copy: backward keeps its own
    fast, slow = _both(lambda: _bn_grads_after_writes(change))
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)
    if write == "returned mean":
        for a, b in zip(fast, _bn_grads_after_writes(lambda xd, mean: None)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_numbers(dtype):
    """The kernel's forward against the formula, written out here."""
    rng = np.random.default_rng(3)
    xd = rng.standard_normal((10, 4)).astype(dtype)
    gamma, beta = Variable(np.arange(1, 5, dtype=dtype)), Variable(np.ones(4, dtype))
    mm, mv = np.zeros(4, dtype), np.ones(4, dtype)
    y, mean, var = fused.batch_norm_train(Tensor(xd), gamma, beta, epsilon=1e-3,
                                          moving=(mm, mv, 0.99))
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(mean, xd.mean(0), rtol=tol, atol=tol)
    np.testing.assert_allclose(var, xd.var(0), rtol=tol, atol=tol)
    np.testing.assert_allclose(y.data, (xd - xd.mean(0)) / np.sqrt(xd.var(0) + 1e-3)
                               * np.arange(1, 5) + 1, rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(mm, 0.01 * xd.mean(0), rtol=tol, atol=tol)
    np.testing.assert_allclose(mv, 0.99 + 0.01 * xd.var(0), rtol=tol, atol=tol)


def test_batch_norm_kernel_gradcheck_float64():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 3))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    assert native.enabled()
    assert gradcheck(lambda a, g, b: fused.batch_norm_train(a, g, b)[0], x, gamma, beta)


def test_batch_norm_falls_back_on_broadcast_gradient_and_float16():
    rng = np.random.default_rng(5)
    x = Tensor(rng.standard_normal((8, 3)).astype("float32"), requires_grad=True)
    y, _, _ = fused.batch_norm_train(x, None, None)
    y.backward(np.broadcast_to(np.float32(1.0), (8, 3)))  # read-only, strided: copied
    np.testing.assert_allclose(x.grad, 0.0, atol=1e-5)  # d(sum of normalised x)/dx = 0
    x16 = Tensor(rng.standard_normal((8, 3)).astype("float16"), requires_grad=True)
    y16, _, _ = fused.batch_norm_train(x16, None, None)
    assert y16.dtype == np.float16


def _bn_inference(dtype, gamma_on, beta_on, shape=(7, 5)):
    rng = np.random.default_rng(12)
    channels = shape[-1]
    x = Tensor(rng.standard_normal(shape).astype(dtype) * 3 + 1, requires_grad=True)
    gamma = Variable(rng.standard_normal(channels), dtype=dtype) if gamma_on else None
    beta = Variable(rng.standard_normal(channels), dtype=dtype) if beta_on else None
    mm = Variable(rng.standard_normal(channels), dtype=dtype, trainable=False)
    mv = Variable(rng.random(channels) + 0.5, dtype=dtype, trainable=False)
    y = fused.batch_norm_inference(x, gamma, beta, mm, mv, epsilon=1e-3)
    y.backward(rng.standard_normal(shape).astype(dtype))
    return [y.data, x.grad] + [p.grad for p in (gamma, beta) if p is not None]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma_on,beta_on", [(True, True), (False, True), (True, False),
                                              (False, False)])
@pytest.mark.parametrize("shape", [(7, 5), (2, 3, 5), (5,)])
def test_batch_norm_inference_matches_numpy(dtype, gamma_on, beta_on, shape):
    fast, slow = _both(lambda: _bn_inference(dtype, gamma_on, beta_on, shape))
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


def test_batch_norm_inference_numbers_gradcheck_and_fallbacks():
    rng = np.random.default_rng(13)
    xd = rng.standard_normal((6, 3))
    f64 = dict(dtype="float64")
    gamma, beta = Variable(np.arange(1.0, 4.0), **f64), Variable(np.ones(3), **f64)
    mm = Variable(np.full(3, 0.5), trainable=False, **f64)
    mv = Variable(np.full(3, 4.0), trainable=False, **f64)
    y = fused.batch_norm_inference(Tensor(xd), gamma, beta, mm, mv, epsilon=1e-3)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, (xd - 0.5) / np.sqrt(4.0 + 1e-3) * np.arange(1, 4) + 1,
                               rtol=1e-12)
    assert gradcheck(lambda a, g, b: fused.batch_norm_inference(a, g, b, mm, mv), xd,
                     rng.standard_normal(3), rng.standard_normal(3))
    x16 = Tensor(xd.astype("float16"))  # float16 inputs, float64 statistics: NumPy path
    assert fused.batch_norm_inference(x16, None, None, mm, mv).dtype == np.float64
    strided = Tensor(np.asfortranarray(rng.standard_normal((4, 3))))
    np.testing.assert_allclose(
        fused.batch_norm_inference(strided, gamma, beta, mm, mv).data,
        fused.batch_norm_inference(Tensor(np.ascontiguousarray(strided.data)), gamma, beta,
                                   mm, mv).data, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_dense_forward_and_backward_match_numpy(dtype):
    """bias + ReLU in one pass forward; the ReLU derivative (in place in the owned gradient
    of the inner layer) and the bias gradient in one pass backward."""
    def run():
        rng = np.random.default_rng(6)
        x = Tensor(rng.standard_normal((9, 5)).astype(dtype), requires_grad=True)
        k1, b1 = (Variable(rng.standard_normal(s), dtype=dtype) for s in ((5, 4), (4,)))
        k2, b2 = (Variable(rng.standard_normal(s), dtype=dtype) for s in ((4, 3), (3,)))
        h = fused.dense(x, k1, b1, "relu")
        y = fused.dense(h, k2, b2, "relu")
        y.backward(rng.standard_normal((9, 3)).astype(dtype))
        return h.data, y.data, x.grad, k1.grad, b1.grad, k2.grad, b2.grad
    fast, slow = _both(run)
    assert np.any(fast[0] == 0) and np.any(fast[0] > 0)  # both sides of the ReLU are hit
    for a, c in zip(fast, slow):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_rows_matches_numpy(dtype):
    from glassnet.autograd import ops

    def run():
        rng = np.random.default_rng(9)
        z = Tensor(rng.standard_normal((6, 7)).astype(dtype) * 5, requires_grad=True)
        y = ops.softmax(z)
        y.backward(rng.standard_normal((6, 7)).astype(dtype))
        return y.data, z.grad
    fast, slow = _both(run)
    tol = 1e-6 if dtype == "float32" else 1e-14
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    np.testing.assert_allclose(fast[0].sum(axis=1), 1.0, rtol=tol)
    assert ops.softmax(Tensor(np.ones((2, 3), "float16"))).dtype == np.float16  # fallback


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_shape", ["flat", "column"])
def test_sparse_softmax_cross_entropy_matches_numpy(dtype, label_shape):
    def run():
        rng = np.random.default_rng(7)
        z = Tensor(rng.standard_normal((12, 5)).astype(dtype) * 4, requires_grad=True)
        labels = rng.integers(0, 5, 12)
        labels = labels[:, None] if label_shape == "column" else labels
        loss = fused.softmax_cross_entropy(z, labels, sparse=True)
        loss.backward(rng.random(12).astype(dtype))
        return loss.data, z.grad
    fast, slow = _both(run)
    tol = 2e-6 if dtype == "float32" else 1e-14
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_sparse_softmax_cross_entropy_gradcheck_and_extremes():
    rng = np.random.default_rng(8)
    labels = np.array([0, 2, 1])
    assert gradcheck(lambda z: fused.softmax_cross_entropy(z, labels, sparse=True),
                     rng.standard_normal((3, 4)))
    big = Tensor(np.array([[1000.0, 0.0, -1000.0]], "float32"))  # no overflow: max shifted
    loss = fused.softmax_cross_entropy(big, np.array([1]), sparse=True)
    np.testing.assert_allclose(loss.data, [1000.0])


def test_kernels_reject_bad_buffers_with_clear_errors():
    k = native.kernels
    w32, w64 = np.zeros(4, "float32"), np.zeros(4, "float64")
    with pytest.raises(TypeError, match="g: expected a float32"):
        k.sgd(w32, w64, None, 0.1, 0.0, False)  # mixed dtypes
    with pytest.raises(ValueError, match="expected 4 values, got 3"):
        k.sgd(w32, np.zeros(3, "float32"), None, 0.1, 0.0, False)
    with pytest.raises((TypeError, ValueError, BufferError)):
        k.sgd(np.zeros(4, "int32"), np.zeros(4, "int32"), None, 0.1, 0.0, False)
    with pytest.raises((ValueError, BufferError)):  # read-only output
        ro = np.zeros(4, "float32")
        ro.flags.writeable = False
        k.sgd(ro, w32, None, 0.1, 0.0, False)
    with pytest.raises(ValueError, match="out of range"):
        k.xent_forward(np.zeros((2, 3), "float32"), np.array([0, 3]), np.empty((2, 3), "float32"),
                       np.empty(2, "float32"))


def test_training_agrees_with_and_without_kernels():
    """A BN + Adam model trained for a few epochs: the same losses to float32 rounding."""
    def run():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.layers.Input((4,)), keras.layers.Dense(16, activation="relu"),
            keras.layers.BatchNormalization(), keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(1)
        x, y = rng.standard_normal((64, 4)).astype("float32"), rng.integers(0, 3, 64)
        history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=False)
        return history.history["loss"], model.get_weights()
    (loss_a, w_a), (loss_b, w_b) = _both(run)
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5)
    for a, b in zip(w_a, w_b):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_set_enabled_without_build_is_an_error(monkeypatch):
    monkeypatch.setattr(native, "_module", None)
    with pytest.raises(RuntimeError, match="not built"):
        native.set_enabled(True)
    native.set_enabled(False)
    assert not native.enabled()


def test_environment_variable_switches_kernels_off():
    import subprocess
    import sys
    code = "import glassnet.native as n; print(n.available(), n.enabled())"
    env = {**os.environ, "GLASSNET_NATIVE": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "False"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_float32_and_float64_batches_take_the_kernels(monkeypatch, dtype):
    """The comparisons above mean something only if the kernels ran: count their calls."""
    calls = []
    for name in ("adam", "bn_forward", "bn_backward", "bn_inference", "relu_backward"):
        kernel = getattr(native.kernels, name)
        monkeypatch.setattr(native.kernels, name,
                            lambda *a, _k=kernel, _n=name: calls.append(_n) or _k(*a))
    _train_weights(lambda: keras.optimizers.Adam(learning_rate=0.01), dtype, steps=1)
    _bn_step(dtype)
    _bn_inference(dtype, True, True)
    assert {"adam", "bn_forward", "bn_backward", "bn_inference"} <= set(calls), calls


def test_a_backward_pass_finishes_with_the_kernels_its_forward_began_with():
    """Switching the kernels off between a forward and its backward pass is harmless."""
    z = Tensor(np.random.default_rng(0).standard_normal((4, 3)).astype("float32"),
               requires_grad=True)
    loss = fused.softmax_cross_entropy(z, np.array([0, 1, 2, 1]), sparse=True)
    assert native.compiled() is not None
    with native.disabled():
        assert native.kernels is None and native.compiled() is not None
        loss.backward(np.ones(4, "float32"))
    assert z.grad.shape == (4, 3) and np.allclose(z.grad.sum(axis=1), 0, atol=1e-6)


def test_a_stale_build_is_refused_with_advice():
    """An extension built from an older _native.c (an editable install not rebuilt after an
    update) would get the wrong arguments: glassnet says so and runs on NumPy."""
    import subprocess
    import sys
    code = ("import sys, types, warnings\n"
            "sys.modules['glassnet._native'] = types.ModuleType('glassnet._native')\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    import glassnet as keras\n"
            "    from glassnet import native\n"
            "m = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(4),\n"
            "                      keras.layers.BatchNormalization(),\n"
            "                      keras.layers.Dense(2, activation='softmax')])\n"
            "m.compile('adam', 'sparse_categorical_crossentropy')\n"
            "m.train_on_batch([[0., 1., 2.]] * 4, [0, 1, 0, 1])\n"
            "print(native.available(), [str(w.message) for w in caught])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("False") and "pip install -e ." in out, out
    assert native.KERNELS_VERSION == getattr(native.compiled(), "KERNELS_VERSION",
                                             native.KERNELS_VERSION)
