"""Optimizers: hand-computed first steps, trajectories against plain per-variable references of
the Keras 3 rules, the packed flat buffers, clipping, decay, legacy arguments and the registry.
Keras and PyTorch, when importable, are extra oracles (never the only one)."""
import math
import os
import sys
import warnings

import numpy as np
import pytest

from glassnet import optimizers
from glassnet.autograd import Variable as _Variable
from glassnet.autograd import ops
from glassnet.optimizers import (SGD, Adagrad, Adam, Adamax, AdamW, Nadam, RMSprop,
                                 RMSProp)
from glassnet.optimizers import base as base_module

SHAPES = [(3, 2), (4,), (), (2, 1, 3)]

def Variable(value, **kwargs):  # noqa: N802 - these tests keep the value's own dtype
    kwargs.setdefault("dtype", np.asarray(value).dtype)
    return _Variable(value, **kwargs)



# ---- independent references: the Keras 3 rules, one variable at a time, float64 ------------
def ref_sgd(w, g, s, t, lr, momentum=0.0, nesterov=False, **_):
    if momentum == 0:
        return w - lr * g
    s["v"] = momentum * s.get("v", np.zeros_like(w)) - lr * g
    return w + momentum * s["v"] - lr * g if nesterov else w + s["v"]


def ref_adagrad(w, g, s, t, lr, initial_accumulator_value=0.1, epsilon=1e-7, **_):
    s["a"] = s.get("a", np.full_like(w, initial_accumulator_value)) + g * g
    return w - lr * g / np.sqrt(s["a"] + epsilon)


def ref_rmsprop(w, g, s, t, lr, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **_):
    s["v"] = rho * s.get("v", 0.0) + (1 - rho) * g * g
    if centered:
        s["mg"] = rho * s.get("mg", 0.0) + (1 - rho) * g
        increment = lr * g / np.sqrt(s["v"] - s["mg"] ** 2 + epsilon)
    else:
        increment = lr * g / np.sqrt(s["v"] + epsilon)
    if momentum > 0:
        s["b"] = momentum * s.get("b", 0.0) + increment
        return w - s["b"]
    return w - increment


def ref_adam(w, g, s, t, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
             weight_decay=None, **_):
    if weight_decay:
        w = w - w * weight_decay * lr
    s["m"] = s.get("m", 0.0) + (1 - beta_1) * (g - s.get("m", 0.0))
    s["v"] = s.get("v", 0.0) + (1 - beta_2) * (g * g - s.get("v", 0.0))
    v = s["v"]
    if amsgrad:
        v = s["vh"] = np.maximum(s.get("vh", 0.0), s["v"])
    alpha = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    return w - alpha * s["m"] / (np.sqrt(v) + epsilon)


def ref_adamax(w, g, s, t, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **_):
    s["m"] = s.get("m", 0.0) + (1 - beta_1) * (g - s.get("m", 0.0))
    s["u"] = np.maximum(beta_2 * s.get("u", 0.0), np.abs(g))
    return w - lr * s["m"] / ((1 - beta_1**t) * (s["u"] + epsilon))


def ref_nadam(w, g, s, t, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **_):
    def u(i):
        return beta_1 * (1 - 0.5 * 0.96**i)
    p_t = np.prod([u(i) for i in range(1, t + 1)])
    p_t1 = p_t * u(t + 1)
    s["m"] = s.get("m", 0.0) + (1 - beta_1) * (g - s.get("m", 0.0))
    s["v"] = s.get("v", 0.0) + (1 - beta_2) * (g * g - s.get("v", 0.0))
    m_hat = u(t + 1) * s["m"] / (1 - p_t1) + (1 - u(t)) * g / (1 - p_t)
    v_hat = s["v"] / (1 - beta_2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + epsilon)


CASES = [  # (class, constructor kwargs, reference)
    (SGD, {"learning_rate": 0.1}, ref_sgd),
    (SGD, {"learning_rate": 0.1, "momentum": 0.9}, ref_sgd),
    (SGD, {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True}, ref_sgd),
    (Adagrad, {"learning_rate": 0.1}, ref_adagrad),
    (Adagrad, {"learning_rate": 0.1, "initial_accumulator_value": 0.5, "epsilon": 1e-3},
     ref_adagrad),
    (RMSprop, {"learning_rate": 0.01}, ref_rmsprop),
    (RMSprop, {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5, "centered": True},
     ref_rmsprop),
    (Adam, {"learning_rate": 0.01}, ref_adam),
    (Adam, {"learning_rate": 0.01, "beta_1": 0.5, "amsgrad": True, "epsilon": 1e-3}, ref_adam),
    (AdamW, {"learning_rate": 0.01, "weight_decay": 0.1}, ref_adam),
    (Adamax, {"learning_rate": 0.01}, ref_adamax),
    (Nadam, {"learning_rate": 0.01}, ref_nadam),
    (Nadam, {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.99}, ref_nadam),
]
IDS = [f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(CASES)]


def make_vars(rng, dtype="float64", shapes=SHAPES):
    return [Variable(rng.standard_normal(s).astype(dtype), name=f"v{i}")
            for i, s in enumerate(shapes)]


def run_against_reference(opt, ref, hp, variables, rng, steps, lr_at=None, rtol=1e-10,
                          atol=1e-12):
    """Drive `opt` and the reference side by side; compare the weights after every step."""
    want = [v.numpy().astype("float64") for v in variables]
    states = [{} for _ in variables]
    for t in range(1, steps + 1):
        if lr_at is not None:
            opt.learning_rate = lr_at(t)
        lr = opt.learning_rate
        grads = [rng.standard_normal(v.shape).astype(v.dtype) for v in variables]
        opt.apply_gradients(zip(grads, variables))
        want = [ref(w, g.astype("float64"), s, t, lr, **hp)
                for w, g, s in zip(want, grads, states)]
        for v, w in zip(variables, want):
            np.testing.assert_allclose(v.numpy(), w, rtol=rtol, atol=atol, err_msg=f"step {t}")
    return want, states


# ---- one step by hand ---------------------------------------------------------------------
def one_step(opt, w, g):
    var = Variable(np.array(w, dtype="float64"))
    opt.apply_gradients([(np.array(g, dtype="float64"), var)])
    return var.numpy()


def test_sgd_one_step_by_hand():
    np.testing.assert_allclose(one_step(SGD(0.1), [1.0, 2.0], [1.0, -2.0]), [0.9, 2.2])
    # nesterov, first step: v = -lr g; w + momentum v - lr g = w - 0.19 g
    np.testing.assert_allclose(one_step(SGD(0.1, 0.9, True), [1.0], [1.0]), [0.81])


def test_sgd_momentum_two_steps_by_hand():
    opt, w = SGD(0.1, momentum=0.9), Variable(np.array([1.0]))
    for _ in range(2):
        opt.apply_gradients([(np.array([1.0]), w)])
    # v1 = -0.1, w1 = 0.9; v2 = 0.9 * -0.1 - 0.1 = -0.19, w2 = 0.71
    np.testing.assert_allclose(w.numpy(), [0.71])
    np.testing.assert_allclose(opt.get_slot(w, "momentum"), [-0.19])


@pytest.mark.parametrize("opt, expected", [
    (Adagrad(0.1), 1.0 - 0.1 * 2.0 / math.sqrt(0.1 + 4.0 + 1e-7)),
    (RMSprop(0.01), 1.0 - 0.01 * 2.0 / math.sqrt(0.1 * 4.0 + 1e-7)),
    # Adam's first step is lr * g / (|g| + eps / sqrt(1 - beta_2)), about lr * sign(g)
    (Adam(0.01), 1.0 - 0.01 * 2.0 / (2.0 + 1e-7 / math.sqrt(0.001))),
    (AdamW(0.01, weight_decay=0.5), 1.0 * (1 - 0.01 * 0.5) - 0.01 * 2.0
     / (2.0 + 1e-7 / math.sqrt(0.001))),
    (Adamax(0.01), 1.0 - 0.01 * 0.1 * 2.0 / (0.1 * (2.0 + 1e-7))),
    (Nadam(0.01), 1.0 - 0.01 * (
        0.9 * (1 - 0.5 * 0.96**2) * 0.2 / (1 - 0.9**2 * (1 - 0.5 * 0.96) * (1 - 0.5 * 0.96**2))
        + (1 - 0.9 * (1 - 0.5 * 0.96)) * 2.0 / (1 - 0.9 * (1 - 0.5 * 0.96))) / (2.0 + 1e-7)),
], ids=lambda x: type(x).__name__ if isinstance(x, optimizers.Optimizer) else "")
def test_adaptive_one_step_by_hand(opt, expected):
    np.testing.assert_allclose(one_step(opt, [1.0], [2.0]), [expected], rtol=1e-12)


# ---- trajectories -------------------------------------------------------------------------
@pytest.mark.parametrize("cls, hp, ref", CASES, ids=IDS)
def test_trajectory_matches_reference(cls, hp, ref):
    rng = np.random.default_rng(0)
    run_against_reference(cls(**hp), ref, hp, make_vars(rng), rng, steps=25)


@pytest.mark.parametrize("cls, hp, ref", CASES, ids=IDS)
def test_float32_stays_float32(cls, hp, ref):
    rng = np.random.default_rng(1)
    variables = make_vars(rng, "float32")
    variables[0].lr_multiplier = 0.5
    opt = cls(**hp)
    for _ in range(3):
        opt.apply_gradients([(rng.standard_normal(v.shape).astype("float32"), v)
                             for v in variables])
    assert all(v.dtype == np.float32 for v in variables)
    arrays = [grp.P for grp in opt._groups] + [grp.G for grp in opt._groups] + [
        s for grp in opt._groups for s in grp.slots.values()] + opt.variables[2:]
    assert arrays and all(a.dtype == np.float32 for a in arrays
                          if a.dtype.kind == "f" and a.ndim), [a.dtype for a in arrays]


def test_sgd_momentum_learning_rate_change_mid_run():
    rng = np.random.default_rng(2)
    hp = {"momentum": 0.9}
    opt = SGD(learning_rate=0.1, **hp)
    run_against_reference(opt, ref_sgd, hp, make_vars(rng), rng, steps=12,
                          lr_at=lambda t: 0.1 if t <= 5 else 0.02)
    assert opt.learning_rate == pytest.approx(0.02)


def test_schedule_is_evaluated_at_iterations():
    rng = np.random.default_rng(3)
    seen = []

    def schedule(step):
        seen.append(int(step))
        return 0.1 / (1 + step)

    opt = Adam(learning_rate=schedule)
    run_against_reference(opt, ref_adam, {}, make_vars(rng), rng, steps=4)
    assert opt.learning_rate == pytest.approx(0.1 / 5)
    assert seen[:2] == [0, 0] and 3 in seen


# ---- packing ------------------------------------------------------------------------------
def test_packing_shares_memory_and_assign_reaches_buffer():
    rng = np.random.default_rng(4)
    variables = make_vars(rng, "float32")
    opt = SGD(0.1, momentum=0.5)
    opt.build(variables)
    (grp,) = opt._groups
    assert grp.P.size == sum(v.size for v in variables)
    for v in variables:
        assert np.shares_memory(v.data, grp.P) and np.shares_memory(v._grad_buffer, grp.G)
        assert np.shares_memory(opt.get_slot(v, "momentum"), grp["momentum"])
    variables[1].assign(np.full(4, 7.0))
    a = int(grp.starts[1])
    np.testing.assert_array_equal(grp.P[a:a + 4], 7.0)
    opt.apply_gradients([(np.ones(v.shape, "float32"), v) for v in variables])
    np.testing.assert_allclose(variables[1].numpy(), 6.9, rtol=1e-6)


def test_replaced_data_is_adopted_not_lost():
    v = Variable(np.zeros(3))
    opt = SGD(1.0)
    opt.build([v])
    v.data = np.full(3, 5.0)  # not through assign: the optimizer must take the new value
    opt.apply_gradients([(np.ones(3), v)])
    np.testing.assert_allclose(v.numpy(), 4.0)
    assert np.shares_memory(v.data, opt._groups[0].P)


def test_frozen_variables_are_never_touched():
    rng = np.random.default_rng(5)
    trained, frozen = make_vars(rng, shapes=[(3,)]), make_vars(rng, shapes=[(2, 2)])
    before = frozen[0].numpy().copy()
    opt = AdamW(0.1, weight_decay=0.5)
    for _ in range(3):
        opt.apply_gradients([(np.ones(3), trained[0])])
    np.testing.assert_array_equal(frozen[0].numpy(), before)
    assert frozen[0]._grad_buffer is None
    assert not np.shares_memory(frozen[0].data, opt._groups[0].P)


@pytest.mark.parametrize("opt", [SGD(0.1, momentum=0.9, weight_decay=0.1), Adam(0.1),
                                 AdamW(0.1), Nadam(0.1), RMSprop(0.1, momentum=0.5)],
                         ids=lambda o: type(o).__name__)
def test_none_gradient_leaves_variable_and_slots_unchanged(opt):
    a, b = Variable(np.ones(3)), Variable(np.ones(2))
    opt.apply_gradients([(np.ones(3), a), (np.ones(2), b)])  # momentum is now non-zero
    w_before = b.numpy().copy()
    slots_before = {k: opt.get_slot(b, k).copy() for k, _ in opt.slot_specs()}
    a_before = a.numpy().copy()
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        opt.apply_gradients([(np.ones(3), a), (None, b)])
    np.testing.assert_array_equal(b.numpy(), w_before)
    for k, value in slots_before.items():
        np.testing.assert_array_equal(opt.get_slot(b, k), value)
    assert not np.allclose(a.numpy(), a_before)
    assert opt.iterations == 2


def test_all_gradients_none_raises():
    v = Variable(np.ones(2))
    with pytest.raises(ValueError, match="No gradients"):
        SGD().apply_gradients([(None, v)])


def test_repacking_keeps_momentum_of_remaining_variables():
    rng = np.random.default_rng(6)
    variables = make_vars(rng)
    hp = {"momentum": 0.9}
    opt = SGD(0.05, **hp)
    want, states = run_against_reference(opt, ref_sgd, hp, variables, rng, steps=4)
    kept = [variables[0], variables[2], variables[3]]
    momentum = [opt.get_slot(v, "momentum").copy() for v in kept]
    leaving_value = variables[1].numpy().copy()
    opt.build(kept)
    for v, m in zip(kept, momentum):
        np.testing.assert_array_equal(opt.get_slot(v, "momentum"), m)
    left = variables[1]
    assert left._grad_buffer is None and not np.shares_memory(left.data, opt._groups[0].P)
    np.testing.assert_array_equal(left.numpy(), leaving_value)
    for t in range(5, 9):  # the trajectory continues as if nothing happened
        grads = [rng.standard_normal(v.shape) for v in kept]
        opt.apply_gradients(zip(grads, kept))
        for i, (idx, g) in enumerate(zip([0, 2, 3], grads)):
            want[idx] = ref_sgd(want[idx], g, states[idx], t, 0.05, **hp)
            np.testing.assert_allclose(kept[i].numpy(), want[idx], rtol=1e-12)
    np.testing.assert_array_equal(left.numpy(), leaving_value)


def test_a_variable_that_returns_gets_its_slots_back():
    a, b = Variable(np.ones(2)), Variable(np.ones(3))
    opt = Adam(0.1)
    opt.apply_gradients([(np.ones(2), a), (np.full(3, 2.0), b)])
    m, v = opt.get_slot(b, "momentum").copy(), opt.get_slot(b, "velocity").copy()
    opt.apply_gradients([(np.ones(2), a)])  # b is frozen for a step
    with pytest.raises(ValueError, match="not tracked"):
        opt.get_slot(b, "momentum")
    opt.build([a, b])
    np.testing.assert_array_equal(opt.get_slot(b, "momentum"), m)
    np.testing.assert_array_equal(opt.get_slot(b, "velocity"), v)
    with pytest.raises(ValueError, match='Did you mean "momentum"'):
        opt.get_slot(b, "momentun")


def test_many_variables_one_vectorised_update(monkeypatch):
    rng = np.random.default_rng(7)
    shapes = [tuple(rng.integers(1, 5, size=rng.integers(0, 3))) for _ in range(50)]
    variables = make_vars(rng, shapes=shapes)
    opt = Adam(0.01)
    calls = []
    original = opt.update_step
    monkeypatch.setattr(opt, "update_step", lambda *a: (calls.append(1), original(*a)))
    run_against_reference(opt, ref_adam, {}, variables, rng, steps=5)
    assert len(calls) == 5  # one update_step per step for 50 variables of one dtype
    mixed = variables[:3] + [Variable(np.ones(4, "float32"))]
    opt2 = SGD(0.1)
    monkeypatch.setattr(opt2, "update_step", lambda *a: (calls.append(2), SGD.update_step(
        opt2, *a)))
    opt2.apply_gradients([(np.ones(v.shape, v.dtype), v) for v in mixed])
    assert calls.count(2) == 2 and len(opt2._groups) == 2


class _CountingNumpy:
    """Stands in for the numpy module and counts the functions looked up through it."""

    def __init__(self):
        self.count = 0

    def __getattr__(self, name):
        attr = getattr(np, name)
        if callable(attr):
            self.count += 1
        return attr


@pytest.mark.parametrize("cls, kwargs", [(Adam, {}), (SGD, {"momentum": 0.9}),
                                         (Nadam, {"global_clipnorm": 1.0}),
                                         (RMSprop, {"clipnorm": 0.1, "weight_decay": 0.1})])
def test_step_makes_a_constant_number_of_numpy_calls(monkeypatch, cls, kwargs):
    counts = []
    for n in (5, 60):
        variables = [Variable(np.ones((2, 3), "float32")) for _ in range(n)]
        opt = cls(0.01, **kwargs)
        opt.apply_gradients([(np.ones((2, 3), "float32"), v) for v in variables])  # packs
        counter = _CountingNumpy()
        monkeypatch.setattr(base_module, "np", counter)
        for grp in opt._groups:
            grp.xp = counter
        for v in variables:
            v._accumulate_grad(np.ones((2, 3), "float32"))  # what backward() does
        opt.step(variables)
        monkeypatch.undo()
        counts.append(counter.count)
        assert all(v.grad is None for v in variables)
    assert counts[0] == counts[1] and counts[0] < 40, counts


# ---- step(): the training loop's entry point ----------------------------------------------
def test_step_uses_autograd_buffers_and_resets_grads():
    w = Variable(np.array([1.0, 2.0], "float32"), name="w")
    b = Variable(np.array([0.5], "float32"), name="b")
    unused = Variable(np.ones(2, "float32"), name="unused")
    variables = [w, b, unused]
    opt = SGD(0.1)
    opt.build(variables)
    x = np.array([3.0, 4.0], "float32")
    for step in range(2):
        w0, b0 = w.numpy().copy(), b.numpy().copy()
        loss = ops.add(ops.sum(ops.multiply(w, x)), ops.sum(ops.multiply(b, b)))
        loss.backward()
        assert w.grad is w._grad_buffer and np.shares_memory(w.grad, opt._groups[0].G)
        with pytest.warns(UserWarning, match="unused"):
            opt.step(variables)
        np.testing.assert_allclose(w.numpy(), w0 - 0.1 * x, rtol=1e-6)
        np.testing.assert_allclose(b.numpy(), b0 - 0.1 * 2 * b0, rtol=1e-6)
        np.testing.assert_array_equal(unused.numpy(), 1.0)
        assert w.grad is None and b.grad is None and opt.iterations == step + 1


def test_step_applies_constraints_and_repacks_on_new_set():
    a, b = Variable(np.array([0.05, 1.0])), Variable(np.array([2.0]))
    a.constraint = lambda arr: np.clip(arr, 0.0, None)
    opt = SGD(0.1, momentum=0.5)
    for variables in ([a, b], [a]):
        for v in variables:
            v._accumulate_grad(np.ones(v.shape))
        opt.step(variables)
    assert a.numpy()[0] == 0.0 and a.numpy()[1] > 0
    assert b._grad_buffer is None and opt._vars == (a,)


# ---- clipping, decay, multipliers, EMA, accumulation ---------------------------------------
def test_clipnorm_and_global_clipnorm_match_their_definitions():
    g1, g2 = np.array([3.0, 4.0]), np.array([0.0, 1.0])  # norms 5 and 1; global sqrt(26)

    def delta(**kw):
        v1, v2 = Variable(np.zeros(2)), Variable(np.zeros(2))
        SGD(1.0, **kw).apply_gradients([(g1.copy(), v1), (g2.copy(), v2)])
        return -v1.numpy(), -v2.numpy()

    d1, d2 = delta(clipnorm=2.0)
    np.testing.assert_allclose(d1, g1 * 2.0 / 5.0)
    np.testing.assert_allclose(d2, g2)  # below the threshold: untouched
    e1, e2 = delta(global_clipnorm=2.0)
    np.testing.assert_allclose(e1, g1 * 2.0 / math.sqrt(26.0))
    np.testing.assert_allclose(e2, g2 * 2.0 / math.sqrt(26.0))
    assert not np.allclose(d2, e2)
    np.testing.assert_allclose(delta(global_clipnorm=100.0)[0], g1)


def test_clipvalue():
    v = Variable(np.zeros(3))
    SGD(1.0, clipvalue=1.0).apply_gradients([(np.array([-3.0, 0.5, 2.0]), v)])
    np.testing.assert_allclose(v.numpy(), [1.0, -0.5, -1.0])


@pytest.mark.parametrize("kw", [{"clipnorm": 1.0, "clipvalue": 1.0},
                                {"clipnorm": 1.0, "global_clipnorm": 1.0},
                                {"clipvalue": 1.0, "global_clipnorm": 1.0}])
def test_more_than_one_clip_argument_raises(kw):
    with pytest.raises(ValueError, match="Only one of"):
        Adam(**kw)


def test_weight_decay_exclusion_and_lr_multiplier():
    kernel, bias = Variable(np.ones(2), name="kernel"), Variable(np.ones(2), name="bias")
    bias.lr_multiplier = 0.5
    opt = SGD(0.1, weight_decay=0.2)
    opt.exclude_from_weight_decay(var_names=["bias"])
    opt.apply_gradients([(np.ones(2), kernel), (np.ones(2), bias)])
    np.testing.assert_allclose(kernel.numpy(), 1.0 - 0.1 * 0.2 - 0.1)
    np.testing.assert_allclose(bias.numpy(), 1.0 - 0.05)


def test_ema_and_finalize():
    v = Variable(np.zeros(1))
    opt = SGD(1.0, use_ema=True, ema_momentum=0.5)
    for _ in range(3):  # w: -1, -2, -3; average: -1 (first step copies), -1.5, -2.25
        opt.apply_gradients([(np.ones(1), v)])
    np.testing.assert_allclose(opt.get_slot(v, "average"), [-2.25])
    opt.finalize_variable_values([v])
    np.testing.assert_allclose(v.numpy(), [-2.25])


def test_gradient_accumulation_uses_the_mean_gradient():
    v = Variable(np.zeros(1))
    opt = SGD(1.0, gradient_accumulation_steps=2)
    opt.apply_gradients([(np.array([1.0]), v)])
    assert v.numpy()[0] == 0.0 and opt.iterations == 0
    opt.apply_gradients([(np.array([3.0]), v)])
    np.testing.assert_allclose(v.numpy(), [-2.0])
    assert opt.iterations == 1


def test_loss_scale_factor_divides_gradients():
    v = Variable(np.zeros(1))
    opt = SGD(1.0, loss_scale_factor=4.0)
    opt.apply_gradients([(np.array([8.0]), v)])
    np.testing.assert_allclose(v.numpy(), [-2.0])
    assert opt.scale_loss(2.0) == 8.0


# ---- arguments, registry, config ----------------------------------------------------------
def test_lr_alias_warns_and_works():
    with pytest.warns(DeprecationWarning, match="lr"):
        opt = SGD(lr=0.3)
    assert opt.learning_rate == pytest.approx(0.3)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="disagree"):
        Adam(learning_rate=0.1, lr=0.2)


def test_legacy_decay_is_inverse_time_decay():
    with pytest.warns(DeprecationWarning, match="decay"):
        opt = SGD(0.1, decay=0.5)
    v = Variable(np.zeros(1))
    for _ in range(3):
        opt.apply_gradients([(np.ones(1), v)])
    np.testing.assert_allclose(v.numpy(), [-(0.1 + 0.1 / 1.5 + 0.1 / 2.0)])


@pytest.mark.parametrize("cls, kw, hint", [(SGD, {"momentun": 0.9}, "momentum"),
                                           (Adam, {"beta1": 0.9}, "beta_1"),
                                           (RMSprop, {"clip_norm": 1.0}, "clipnorm")])
def test_unknown_kwarg_raises_with_suggestion(cls, kw, hint):
    with pytest.raises(TypeError, match=f'Did you mean "{hint}"'):
        cls(**kw)


@pytest.mark.parametrize("kw", [{"beta_1": 1.5}, {"beta_2": -0.1}, {"epsilon": -1.0},
                                {"learning_rate": "fast"}, {"gradient_accumulation_steps": 1},
                                {"ema_momentum": 2.0}])
def test_invalid_hyperparameters_raise(kw):
    with pytest.raises(ValueError):
        Adam(**kw)


def test_registry_and_get():
    names = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adagrad": Adagrad,
             "adamw": AdamW, "adamax": Adamax, "nadam": Nadam, "RMSProp": RMSprop,
             "Adam": Adam}
    for name, cls in names.items():
        assert type(optimizers.get(name)) is cls
    assert RMSProp is RMSprop
    opt = Adam()
    assert optimizers.get(opt) is opt
    with pytest.raises(ValueError, match="Did you mean \"rmsprop\""):
        optimizers.get("rmsporp")
    with pytest.raises(ValueError):
        optimizers.get(3)


@pytest.mark.parametrize("cls, hp, ref", CASES, ids=IDS)
def test_config_round_trip(cls, hp, ref):
    opt = cls(**hp, clipnorm=0.5, name="my_opt")
    config = opt.get_config()
    for key in ("name", "learning_rate", "weight_decay", "clipnorm", "global_clipnorm",
                "clipvalue", "use_ema", "ema_momentum", "ema_overwrite_frequency",
                "loss_scale_factor", "gradient_accumulation_steps", *hp):
        assert key in config
    assert cls.from_config(config).get_config() == config
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert type(again) is cls and again.get_config() == config
    assert optimizers.get({"class_name": cls.__name__.lower(), "config": config}
                          ).get_config() == config


def test_state_round_trip_through_variables():
    rng = np.random.default_rng(8)
    a, b = make_vars(rng, shapes=[(3,)]), make_vars(rng, shapes=[(3,)])
    b[0].assign(a[0].numpy())
    opt_a, opt_b = Nadam(0.1), Nadam(0.1)
    grads = [rng.standard_normal(3) for _ in range(6)]
    for g in grads[:3]:
        opt_a.apply_gradients([(g, a[0])])
    opt_b.build(b)
    opt_b.set_weights([np.array(x) for x in opt_a.variables])
    b[0].assign(a[0].numpy())
    for g in grads[3:]:
        opt_a.apply_gradients([(g, a[0])])
        opt_b.apply_gradients([(g, b[0])])
    np.testing.assert_allclose(b[0].numpy(), a[0].numpy(), rtol=1e-14)
    assert opt_b.iterations == 6


def test_explain_shows_the_rule_and_reference():
    text = Adam(0.01).explain()
    assert "sqrt(1 - beta_2^t)" in text and "Kingma" in text
    assert "weight_decay" not in SGD().explain() and "w <- w - lr * g" in SGD().explain()
    assert "w <- w - lr * 0.004 * w" in AdamW().explain()


# ---- extra oracles ------------------------------------------------------------------------
def _keras():
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "numpy")
    return pytest.importorskip("keras")


KERAS_CASES = [(c.__name__, hp) for c, hp, _ in CASES] + [
    ("SGD", {"learning_rate": 0.1, "clipnorm": 0.5}),
    ("Adam", {"learning_rate": 0.1, "global_clipnorm": 0.5}),
    ("RMSprop", {"learning_rate": 0.1, "clipvalue": 0.5, "weight_decay": 0.1}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.5, "use_ema": True,
             "ema_overwrite_frequency": 3}),
    ("Adam", {"learning_rate": 0.1, "gradient_accumulation_steps": 2}),
    ("Nadam", {"learning_rate": 0.1, "gradient_accumulation_steps": 3}),
]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras internals, numpy 2
@pytest.mark.parametrize("name, hp", KERAS_CASES, ids=[n for n, _ in KERAS_CASES])
def test_matches_keras(name, hp):
    keras = _keras()
    rng = np.random.default_rng(9)
    values = [rng.standard_normal(s).astype("float32") for s in [(3, 2), (4,)]]
    ours = [Variable(x.copy()) for x in values]
    theirs = [keras.Variable(x.copy()) for x in values]
    opt, kopt = getattr(optimizers, name)(**hp), getattr(keras.optimizers, name)(**hp)
    assert set(opt.get_config()) == set(kopt.get_config())
    for _ in range(12):
        grads = [rng.standard_normal(x.shape).astype("float32") for x in values]
        opt.apply_gradients(zip(grads, ours))
        kopt.apply_gradients(zip([g.copy() for g in grads], theirs))
    for v, k in zip(ours, theirs):
        np.testing.assert_allclose(v.numpy(), np.asarray(k.numpy()), rtol=2e-5, atol=2e-6)
    assert opt.iterations == int(np.asarray(kopt.iterations))


@pytest.mark.parametrize("name, hp, torch_name, torch_hp", [
    ("SGD", {"learning_rate": 0.1}, "SGD", {"lr": 0.1}),
    # Keras folds lr into the velocity (v = m v - lr g); torch does not (b = m b + g,
    # w -= lr b). With a constant lr, v = -lr b, so the trajectories coincide.
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}, "SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}, "SGD",
     {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    # Keras adds epsilon to sqrt(v) before bias correction (epsilon-hat), torch after; and
    # RMSprop/Adagrad put epsilon inside vs outside the root. With epsilon = 0 they coincide.
    ("Adam", {"learning_rate": 0.01, "epsilon": 0.0}, "Adam", {"lr": 0.01, "eps": 0.0}),
    ("Adam", {"learning_rate": 0.01, "epsilon": 0.0, "amsgrad": True}, "Adam",
     {"lr": 0.01, "eps": 0.0, "amsgrad": True}),
    ("RMSprop", {"learning_rate": 0.01, "epsilon": 0.0, "rho": 0.9}, "RMSprop",
     {"lr": 0.01, "eps": 0.0, "alpha": 0.9}),
    ("Adagrad", {"learning_rate": 0.1, "epsilon": 0.0}, "Adagrad",
     {"lr": 0.1, "eps": 0.0, "initial_accumulator_value": 0.1}),
])
def test_matches_torch_where_the_rules_coincide(name, hp, torch_name, torch_hp):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    x0 = rng.standard_normal((3, 4))
    ours = Variable(x0.copy())
    theirs = torch.nn.Parameter(torch.tensor(x0.copy()))
    opt, topt = getattr(optimizers, name)(**hp), getattr(torch.optim, torch_name)(
        [theirs], **torch_hp)
    for _ in range(15):
        g = rng.standard_normal((3, 4))
        opt.apply_gradients([(g, ours)])
        theirs.grad = torch.tensor(g.copy())
        topt.step()
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_no_warnings_on_the_happy_path():
    v = Variable(np.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Adam().apply_gradients([(np.ones(2), v)])
