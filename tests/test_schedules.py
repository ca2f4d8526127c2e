"""Learning-rate schedules: each against an independent scalar formula, against installed Keras
(in a subprocess, so no backend choice leaks into other tests), step types, validation,
serialisation (ours and Keras' format) and schedules driving real optimizers and fits."""
import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import glassnet
from glassnet import optimizers
from glassnet.autograd import Variable
from glassnet.callbacks import LambdaCallback
from glassnet.layers import Dense
from glassnet.models import Sequential
from glassnet.optimizers import SGD, Adam, schedules
from glassnet.optimizers.schedules import (CosineDecay, CosineDecayRestarts, ExponentialDecay,
                                           InverseTimeDecay, LearningRateSchedule, OneCycle,
                                           PiecewiseConstantDecay, PolynomialDecay, PowerDecay)

STEPS = [0, 1, 3, 7, 10, 15, 29, 44, 71, 100, 149, 250, 1000]


# ---- independent references: plain scalar Python, written from the papers / Keras docs ------
def ref_exponential(t, lr0, ds, rate, staircase=False):
    return lr0 * rate ** (math.floor(t / ds) if staircase else t / ds)


def ref_inverse_time(t, lr0, ds, rate, staircase=False):
    return lr0 / (1 + rate * (math.floor(t / ds) if staircase else t / ds))


def ref_power(t, lr0, s, c=1.0):
    return lr0 / (1 + t / s) ** c


def ref_piecewise(t, boundaries, values):
    for b, v in zip(boundaries, values):
        if t <= b:
            return v
    return values[-1]


def ref_polynomial(t, lr0, ds, end=0.0001, power=1.0, cycle=False):
    if cycle:
        ds = ds * max(1, math.ceil(t / ds))
    else:
        t = min(t, ds)
    return (lr0 - end) * (1 - t / ds) ** power + end


def ref_cosine(t, lr0, ds, alpha=0.0, warmup_target=None, warmup_steps=0):
    if warmup_target is not None and t < warmup_steps:
        return lr0 + (warmup_target - lr0) * t / warmup_steps
    if warmup_target is not None:
        lr0, t = warmup_target, t - warmup_steps
    t = min(t, ds)
    return lr0 * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t / ds)) + alpha)


def ref_restarts(t, lr0, first, t_mul=2.0, m_mul=1.0, alpha=0.0):
    start, length, peak = 0.0, float(first), 1.0  # walk the periods one by one
    while t >= start + length:
        start, length, peak = start + length, length * t_mul, peak * m_mul
    cos = 0.5 * (1 + math.cos(math.pi * (t - start) / length))
    return lr0 * ((1 - alpha) * peak * cos + alpha)


def ref_one_cycle(t, lr_max, n, lr0=None, lr_end=None, frac=0.1):
    lr0 = lr_max / 10 if lr0 is None else lr0
    lr_end = lr0 / 1000 if lr_end is None else lr_end
    e = frac * n
    h = (n - e) / 2
    if t < h:
        return lr0 + (lr_max - lr0) * t / h
    if t < 2 * h:
        return lr_max - (lr_max - lr0) * (t - h) / h
    if t < n:
        return lr0 - (lr0 - lr_end) * (t - 2 * h) / e
    return lr_end


CASES = [  # (class, kwargs, reference, reference args)
    (ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5),
     ref_exponential, (0.1, 10, 0.5)),
    (ExponentialDecay, dict(initial_learning_rate=0.3, decay_steps=7, decay_rate=0.9,
                            staircase=True), ref_exponential, (0.3, 7, 0.9, True)),
    (InverseTimeDecay, dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5),
     ref_inverse_time, (0.1, 5, 0.5)),
    (InverseTimeDecay, dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5,
                            staircase=True), ref_inverse_time, (0.1, 5, 0.5, True)),
    (PiecewiseConstantDecay, dict(boundaries=[10, 44, 100], values=[1.0, 0.5, 0.1, 0.01]),
     ref_piecewise, ([10, 44, 100], [1.0, 0.5, 0.1, 0.01])),
    (PolynomialDecay, dict(initial_learning_rate=0.1, decay_steps=100), ref_polynomial,
     (0.1, 100)),
    (PolynomialDecay, dict(initial_learning_rate=0.1, decay_steps=30, end_learning_rate=0.01,
                           power=2.0, cycle=True), ref_polynomial, (0.1, 30, 0.01, 2.0, True)),
    (CosineDecay, dict(initial_learning_rate=0.1, decay_steps=100, alpha=0.1), ref_cosine,
     (0.1, 100, 0.1)),
    (CosineDecay, dict(initial_learning_rate=0.0, decay_steps=100, warmup_target=0.2,
                       warmup_steps=20), ref_cosine, (0.0, 100, 0.0, 0.2, 20)),
    (CosineDecayRestarts, dict(initial_learning_rate=0.1, first_decay_steps=10), ref_restarts,
     (0.1, 10)),
    (CosineDecayRestarts, dict(initial_learning_rate=0.1, first_decay_steps=20, t_mul=1.0,
                               m_mul=0.5, alpha=0.05), ref_restarts, (0.1, 20, 1.0, 0.5, 0.05)),
    (CosineDecayRestarts, dict(initial_learning_rate=0.2, first_decay_steps=8, t_mul=3.0,
                               m_mul=0.8), ref_restarts, (0.2, 8, 3.0, 0.8)),
    (PowerDecay, dict(initial_learning_rate=0.1, decay_steps=20), ref_power, (0.1, 20)),
    (PowerDecay, dict(initial_learning_rate=0.1, decay_steps=20, power=0.5), ref_power,
     (0.1, 20, 0.5)),
    (OneCycle, dict(max_learning_rate=1.0, total_steps=200), ref_one_cycle, (1.0, 200)),
    (OneCycle, dict(max_learning_rate=0.5, total_steps=120, initial_learning_rate=0.02,
                    final_learning_rate=1e-5, annihilation_fraction=0.25), ref_one_cycle,
     (0.5, 120, 0.02, 1e-5, 0.25)),
]
IDS = [f"{c.__name__}-{i}" for i, (c, *_) in enumerate(CASES)]


@pytest.mark.parametrize("cls, kwargs, ref, args", CASES, ids=IDS)
def test_matches_its_formula_at_many_steps(cls, kwargs, ref, args):
    schedule = cls(**kwargs)
    for t in STEPS:
        got = schedule(t)
        assert type(got) is float, f"{cls.__name__}({t}) returned {type(got).__name__}"
        assert got == pytest.approx(ref(t, *args), rel=1e-12, abs=1e-15), f"step {t}"


@pytest.mark.parametrize("cls, kwargs, ref, args", CASES, ids=IDS)
def test_array_of_steps_matches_scalar_calls(cls, kwargs, ref, args):
    schedule = cls(**kwargs)
    values = schedule(np.array(STEPS))
    assert isinstance(values, np.ndarray) and values.shape == (len(STEPS),)
    np.testing.assert_allclose(values, [schedule(t) for t in STEPS], rtol=1e-15)


def test_hand_computed_values():
    assert ExponentialDecay(0.1, 10, 0.5)(20) == pytest.approx(0.025)
    assert PowerDecay(0.1, 100)(300) == pytest.approx(0.025)  # lr0 / 4 after 3 s
    s = PiecewiseConstantDecay([100, 200], [1.0, 0.5, 0.1])
    assert (s(100), s(101), s(200), s(201)) == (1.0, 0.5, 0.5, 0.1)  # right-closed
    assert CosineDecay(0.1, 100)(50) == pytest.approx(0.05)
    assert CosineDecay(0.1, 100)(500) == pytest.approx(0.0)
    one = OneCycle(1.0, total_steps=100)  # initial 0.1, h = 45, final 1e-4
    assert (one(0), one(45), one(90), one(100), one(10**6)) == pytest.approx(
        (0.1, 1.0, 0.1, 1e-4, 1e-4))
    assert one(22.5) == pytest.approx(0.55) and one(95) == pytest.approx((0.1 + 1e-4) / 2)


def test_restarts_start_exactly_at_each_restart():
    s = CosineDecayRestarts(0.1, first_decay_steps=10, t_mul=2.0, m_mul=0.5)
    for i, boundary in enumerate([0, 10, 30, 70, 150, 310]):  # periods 10, 20, 40, ...
        assert s(boundary) == pytest.approx(0.1 * 0.5**i), f"restart {i} at step {boundary}"
        assert s(boundary - 1e-6) < 1e-9 if boundary else True
    assert CosineDecayRestarts(0.1, 10, t_mul=1.0)(np.array([10, 20, 30])).tolist() == [0.1] * 3
    # restarts where floor(log(1 + f (t_mul - 1)) / log t_mul) rounds one period short in
    # float64: 1 + 3 + ... + 3^4 = 121 and 16 * (1 + 1.5 + ... + 1.5^4) = 211
    for s, step in [(CosineDecayRestarts(0.1, 1, t_mul=3.0), 121),
                    (CosineDecayRestarts(0.1, 16, t_mul=1.5), 211)]:
        assert s(step) == pytest.approx(0.1) and s(step) == pytest.approx(
            ref_restarts(step, 0.1, s.first_decay_steps, s.t_mul)), f"{s} at {step}"


def test_restarts_with_shrinking_periods_stay_at_alpha_after_the_end():
    s = CosineDecayRestarts(1.0, first_decay_steps=10, t_mul=0.5, alpha=0.1)
    assert s(15) == pytest.approx(1.0) and s(17.5) == pytest.approx(1.0)  # periods 10, 5, 2.5
    assert s(19.99) < 1.0
    assert s(20) == pytest.approx(0.1) and s(1000) == pytest.approx(0.1)


def test_one_cycle_momentum_is_the_inverse_cycle():
    s = OneCycle(1.0, total_steps=100, max_momentum=0.95, base_momentum=0.85)
    steps = np.arange(0, 101)
    lr, mom = s(steps), s.momentum(steps)
    assert mom[0] == pytest.approx(0.95) and mom[45] == pytest.approx(0.85)
    assert mom[90] == pytest.approx(0.95) and mom[100] == pytest.approx(0.95)
    rising = steps < 90  # while the rate goes up the momentum goes down, and vice versa
    np.testing.assert_array_equal(np.sign(np.diff(lr)[rising[1:]]),
                                  -np.sign(np.diff(mom)[rising[1:]]))
    assert s.momentum(22.5) == pytest.approx(0.9)


@pytest.mark.parametrize("step", [7, np.int64(7), np.int32(7), np.uint8(7), 7.0,
                                  np.float32(7.0), np.array(7), np.array([7])[0]])
def test_step_may_be_any_python_or_numpy_number(step):
    for cls, kwargs, ref, args in CASES:
        got = cls(**kwargs)(step)
        assert type(got) is float and got == pytest.approx(ref(7, *args), rel=1e-12)


@pytest.mark.parametrize("step, error", [("3", TypeError), (None, TypeError), (True, TypeError),
                                         (-1, ValueError), (float("nan"), ValueError)])
def test_bad_steps_raise(step, error):
    with pytest.raises(error, match="step"):
        ExponentialDecay(0.1, 10, 0.5)(step)


@pytest.mark.parametrize("build, match", [
    (lambda: ExponentialDecay(0.1, 0, 0.5), "decay_steps.*Received: decay_steps=0"),
    (lambda: PolynomialDecay(0.1, -3), "decay_steps.*Received: decay_steps=-3"),
    (lambda: CosineDecay("0.1", 10), "initial_learning_rate.*Received"),
    (lambda: CosineDecayRestarts(0.1, 0), "first_decay_steps.*Received"),
    (lambda: PiecewiseConstantDecay([1, 2], [0.1, 0.2]), "one element fewer.*length 2"),
    (lambda: PiecewiseConstantDecay([5, 2], [0.1, 0.2, 0.3]), "increasing.*\\[5, 2\\]"),
    (lambda: OneCycle(1.0, 100, annihilation_fraction=1.0), "\\[0, 1\\).*Received"),
    (lambda: PowerDecay(0.1, 10, power=None), "power.*Received: power=None"),
])
def test_invalid_arguments_raise_with_what_was_received(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# ---- serialisation -----------------------------------------------------------------------
@pytest.mark.parametrize("cls, kwargs, ref, args", CASES, ids=IDS)
def test_serialization_round_trip_through_json(cls, kwargs, ref, args):
    schedule = cls(**kwargs)
    data = json.loads(json.dumps(schedules.serialize(schedule)))
    assert data["module"] == "keras.optimizers.schedules" and data["class_name"] == cls.__name__
    assert data["registered_name"] is None
    back = schedules.deserialize(data)
    assert type(back) is cls and back.get_config() == schedule.get_config()
    np.testing.assert_array_equal(back(np.array(STEPS)), schedule(np.array(STEPS)))
    assert type(schedules.get(data)) is cls and schedules.get(schedule) is schedule


def test_numpy_arguments_give_a_json_safe_config():
    s = ExponentialDecay(np.float32(0.5), np.int64(10), np.float64(0.5), staircase=np.bool_(1))
    config = json.loads(json.dumps(s.get_config()))
    assert config["decay_steps"] == 10 and config["staircase"] is True
    assert schedules.deserialize(json.loads(json.dumps(schedules.serialize(s))))(10) == 0.25


class Halving(LearningRateSchedule):
    def __init__(self, initial_learning_rate, every=10):
        self.initial_learning_rate, self.every = initial_learning_rate, every

    def __call__(self, step):
        return self.initial_learning_rate / 2 ** (int(step) // self.every)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "every": self.every}


def test_custom_schedule_registers_itself_and_round_trips():
    data = schedules.serialize(Halving(0.4, every=3))
    assert data["registered_name"] == "Halving" and data["module"] == __name__
    back = schedules.deserialize(json.loads(json.dumps(data)))
    assert isinstance(back, Halving) and back(7) == pytest.approx(0.1)

    class Other(Halving):
        pass

    data["registered_name"] = "my_package>Halving"
    assert type(schedules.deserialize(data, custom_objects={"my_package>Halving": Other})) \
        is Other


def test_user_class_named_like_a_builtin_does_not_replace_it():
    class ExponentialDecay(LearningRateSchedule):  # noqa: F811 (the point of the test)
        def __call__(self, step):
            return 0.0

    back = schedules.deserialize({"class_name": "ExponentialDecay", "config": {
        "initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}})
    assert type(back) is schedules.ExponentialDecay and back(10) == pytest.approx(0.05)


def test_plain_function_schedules_serialize_by_name():
    def my_schedule(step):
        return 0.1 / (1 + step)

    data = schedules.serialize(my_schedule)
    assert data["class_name"] == "function" and data["config"] == "my_schedule"
    assert schedules.deserialize(data, custom_objects={"my_schedule": my_schedule}) \
        is my_schedule
    with pytest.raises(ValueError, match="my_schedule.*custom_objects"):
        schedules.deserialize(data)


def test_unknown_names_and_bad_identifiers_raise_helpfully():
    with pytest.raises(ValueError, match="ExponentalDecay.*Did you mean.*ExponentialDecay"):
        schedules.deserialize({"class_name": "ExponentalDecay", "config": {}})
    with pytest.raises(ValueError, match="needs its arguments.*CosineDecay"):
        schedules.get("CosineDecay")
    with pytest.raises(ValueError, match="Unknown learning rate schedule.*Valid names"):
        schedules.get("cosine_decay_fast")
    with pytest.raises(ValueError, match="Could not interpret.*42"):
        schedules.get(42)
    with pytest.raises(ValueError, match="class_name.*Received"):
        schedules.deserialize(["ExponentialDecay"])
    with pytest.raises(NotImplementedError, match="Halfway.*get_config"):
        type("Halfway", (LearningRateSchedule,), {"__call__": lambda s, t: 0.1})().get_config()


def test_public_namespaces_match_keras():
    assert glassnet.optimizers.schedules.ExponentialDecay is ExponentialDecay
    assert "schedules" in optimizers.__all__
    for name in ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay",
                 "PolynomialDecay", "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts",
                 "serialize", "deserialize"]:
        assert name in schedules.__all__ and hasattr(schedules, name), name


# ---- schedules inside optimizers -----------------------------------------------------------
def test_optimizer_learning_rate_follows_iterations_and_drives_the_update():
    schedule = PiecewiseConstantDecay([2, 4], [0.5, 0.1, 0.01])
    opt = SGD(learning_rate=schedule)
    w = Variable(np.zeros(3, "float32"))
    g = np.array([1.0, -2.0, 4.0], "float32")
    for t in range(7):
        assert opt.learning_rate == pytest.approx(schedule(t)), f"iteration {t}"
        before = w.numpy().copy()
        opt.apply_gradients([(g, w)])
        np.testing.assert_allclose(before - w.numpy(), schedule(t) * g, rtol=1e-6)
    assert w.dtype == np.float32 and opt.iterations == 7
    opt.iterations = 3  # reading follows a restored step count too
    assert opt.learning_rate == pytest.approx(0.1)


def test_learning_rate_changes_with_iterations_in_a_real_fit():
    glassnet.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype("float32")
    y = (x @ rng.standard_normal((4, 1))).astype("float32")
    schedule = ExponentialDecay(0.05, decay_steps=4, decay_rate=0.5)
    model = Sequential([Dense(8, input_shape=(4,), activation="relu"), Dense(1)])
    model.compile(optimizer=SGD(learning_rate=schedule), loss="mse")
    seen = []
    record = LambdaCallback(on_train_batch_begin=lambda batch, logs: seen.append(
        (model.optimizer.iterations, model.optimizer.learning_rate)))
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[record])
    assert [it for it, _ in seen] == list(range(12))
    np.testing.assert_allclose([lr for _, lr in seen], [0.05 * 0.5 ** (t / 4) for t in range(12)],
                               rtol=1e-12)
    assert model.optimizer.learning_rate == pytest.approx(0.05 * 0.5**3)


def test_one_cycle_with_momentum_cycling_in_a_fit():
    glassnet.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True).astype("float32")
    schedule = OneCycle(0.05, total_steps=20)
    opt = SGD(learning_rate=schedule, momentum=schedule.max_momentum)
    model = Sequential([Dense(1, input_shape=(3,))])
    model.compile(optimizer=opt, loss="mse")
    used = []

    def cycle(batch, logs):
        opt.momentum = schedule.momentum(opt.iterations)
        used.append((opt.learning_rate, opt.momentum))

    model.fit(x, y, batch_size=10, epochs=5, verbose=0,
              callbacks=[LambdaCallback(on_train_batch_begin=cycle)])
    np.testing.assert_allclose([lr for lr, _ in used], schedule(np.arange(20)), rtol=1e-12)
    np.testing.assert_allclose([m for _, m in used], schedule.momentum(np.arange(20)))
    assert min(m for _, m in used) == pytest.approx(0.85, abs=0.01)


@pytest.mark.parametrize("cls, kwargs, ref, args", CASES[::3], ids=IDS[::3])
def test_optimizer_config_round_trip_with_a_schedule(cls, kwargs, ref, args):
    opt = Adam(learning_rate=cls(**kwargs), clipnorm=1.0)
    data = json.loads(json.dumps(optimizers.serialize(opt)))
    assert data["config"]["learning_rate"] == schedules.serialize(opt._schedule)
    back = optimizers.deserialize(data)
    assert type(back) is Adam and back.clipnorm == 1.0
    assert type(back._schedule) is cls
    assert back._schedule.get_config() == cls(**kwargs).get_config()
    for t in (0, 5, 44):
        opt.iterations = back.iterations = t
        assert back.learning_rate == opt.learning_rate == pytest.approx(ref(t, *args))
    assert type(optimizers.get(data)) is Adam


# ---- Keras 3 as an extra oracle (a subprocess with the numpy backend) -----------------------
KERAS_CASES = [(c.__name__, kw) for c, kw, _, _ in CASES if c not in (PowerDecay, OneCycle)]
# NOTE: Keras computes in float32, so a step exactly on a restart of CosineDecayRestarts may
# land one period back there; those steps are checked against the reference above instead.
KERAS_STEPS = [0, 1, 3, 7, 9, 15, 25, 44, 69, 71, 100, 149, 250, 1001]

KERAS_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    cases, steps = json.loads(sys.stdin.read())
    out = []
    for name, kwargs in cases:
        s = getattr(keras.optimizers.schedules, name)(**kwargs)
        opt = keras.optimizers.SGD(learning_rate=s)
        out.append({"values": [float(np.asarray(s(t))) for t in steps],
                    "serialized": keras.optimizers.schedules.serialize(s),
                    "optimizer": keras.optimizers.serialize(opt)})
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def keras_results():
    if importlib.util.find_spec("keras") is None:  # not imported here: no backend chosen
        pytest.skip("Keras is not installed")
    env = {**os.environ, "KERAS_BACKEND": "numpy", "OPENBLAS_NUM_THREADS": "1",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", KERAS_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300, input=json.dumps([KERAS_CASES, KERAS_STEPS]))
    if proc.returncode != 0:
        pytest.skip(f"Keras could not run: {proc.stderr[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("index", range(len(KERAS_CASES)),
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(KERAS_CASES)])
def test_matches_keras(keras_results, index):
    name, kwargs = KERAS_CASES[index]
    ours = getattr(schedules, name)(**kwargs)
    theirs = keras_results[index]
    # float32 rounding of the peak rate (~0.1): atol 1e-8 covers cos(pi c) near -1
    np.testing.assert_allclose([ours(t) for t in KERAS_STEPS], theirs["values"], rtol=2e-6,
                               atol=1e-8, err_msg=f"{name}({kwargs})")
    assert schedules.serialize(ours) == theirs["serialized"]  # same format, same config
    from_keras = schedules.deserialize(theirs["serialized"])
    assert type(from_keras) is type(ours) and from_keras.get_config() == ours.get_config()
    opt = optimizers.deserialize(theirs["optimizer"])  # an optimizer saved by Keras
    assert type(opt) is SGD and type(opt._schedule) is type(ours)
    assert opt.get_config()["learning_rate"] == theirs["optimizer"]["config"]["learning_rate"]
