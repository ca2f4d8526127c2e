"""Autograd engine and primitive ops: float64 finite-difference checks, graph semantics."""
import numpy as np
import pytest

from glassnet.autograd import GradcheckError, Tensor, fused, gradcheck, no_grad, ops
from glassnet.autograd import Variable as _Variable

R = np.random.default_rng(7)

def Variable(value, **kwargs):  # noqa: N802 - these tests keep the value's own dtype
    kwargs.setdefault("dtype", np.asarray(value).dtype)
    return _Variable(value, **kwargs)



def pos(*shape):
    return R.uniform(0.5, 2.0, shape)


def rnd(*shape):
    return R.standard_normal(shape)


OP_CASES = [
    ("add", lambda a, b: ops.add(a, b), [rnd(3, 4), rnd(3, 4)]),
    ("add_broadcast", lambda a, b: ops.add(a, b), [rnd(3, 4), rnd(4)]),
    ("add_broadcast_keepdim", lambda a, b: a + b, [rnd(3, 4), rnd(3, 1)]),
    ("subtract", lambda a, b: a - b, [rnd(3, 4), rnd(1, 4)]),
    ("multiply", lambda a, b: a * b, [rnd(3, 4), rnd(4)]),
    ("divide", lambda a, b: a / b, [rnd(3, 4), pos(3, 4)]),
    ("negative", lambda a: -a, [rnd(3)]),
    ("power", lambda a, b: ops.power(a, b), [pos(3, 2), rnd(3, 2)]),
    ("pow_scalar", lambda a: a ** 3, [rnd(4)]),
    ("square", ops.square, [rnd(3, 2)]),
    ("sqrt", ops.sqrt, [pos(5)]),
    ("exp", ops.exp, [rnd(2, 3)]),
    ("log", ops.log, [pos(2, 3)]),
    ("log1p", ops.log1p, [pos(4)]),
    ("abs", ops.abs, [pos(4) * np.array([1, -1, 1, -1])]),
    ("matmul", ops.matmul, [rnd(3, 4), rnd(4, 2)]),
    ("matmul_batched", ops.matmul, [rnd(2, 3, 4), rnd(2, 4, 5)]),
    ("matmul_vec", ops.matmul, [rnd(3, 4), rnd(4)]),
    ("maximum", ops.maximum, [rnd(3, 4), rnd(3, 4)]),
    ("minimum", ops.minimum, [rnd(3, 4), rnd(4)]),
    ("where", lambda a, b: ops.where(np.arange(6).reshape(2, 3) % 2 == 0, a, b),
     [rnd(2, 3), rnd(2, 3)]),
    ("clip", lambda a: ops.clip(a, -0.5, 0.5), [np.array([-2.0, -0.2, 0.1, 0.4, 3.0])]),
    ("sigmoid", ops.sigmoid, [rnd(3, 4) * 3]),
    ("tanh", ops.tanh, [rnd(3, 4)]),
    ("relu", ops.relu, [pos(3, 4) * np.sign(rnd(3, 4))]),
    ("softplus", ops.softplus, [rnd(3, 4) * 3]),
    ("logsumexp", lambda a: ops.logsumexp(a, axis=1), [rnd(3, 4)]),
    ("softmax", lambda a: ops.softmax(a, axis=-1), [rnd(3, 4)]),
    ("softmax_axis0", lambda a: ops.softmax(a, axis=0), [rnd(3, 4)]),
    ("log_softmax", ops.log_softmax, [rnd(3, 4)]),
    ("sum_all", ops.sum, [rnd(3, 4)]),
    ("sum_axis", lambda a: ops.sum(a, axis=1), [rnd(3, 4)]),
    ("sum_keepdims", lambda a: ops.sum(a, axis=(0, 2), keepdims=True), [rnd(2, 3, 4)]),
    ("mean_axis", lambda a: ops.mean(a, axis=0), [rnd(3, 4)]),
    ("mean_all", ops.mean, [rnd(3, 4)]),
    ("var", lambda a: ops.var(a, axis=1), [rnd(3, 4)]),
    ("std", lambda a: ops.std(a, axis=0), [rnd(5, 2)]),
    ("max", lambda a: ops.max(a, axis=1), [rnd(3, 4)]),
    ("min", lambda a: ops.min(a, axis=0), [rnd(3, 4)]),
    ("reshape", lambda a: ops.reshape(a, (4, 3)), [rnd(3, 4)]),
    ("transpose", lambda a: ops.transpose(a, (2, 0, 1)), [rnd(2, 3, 4)]),
    ("expand_squeeze", lambda a: ops.squeeze(ops.expand_dims(a, 1), 1), [rnd(3, 4)]),
    ("broadcast_to", lambda a: ops.broadcast_to(a, (3, 4)), [rnd(4)]),
    ("getitem", lambda a: a[1:, ::2], [rnd(3, 4)]),
    ("getitem_fancy_repeat", lambda a: a[np.array([0, 2, 0])], [rnd(3, 4)]),
    ("concatenate", lambda a, b: ops.concatenate([a, b], axis=1), [rnd(2, 3), rnd(2, 2)]),
    ("stack", lambda a, b: ops.stack([a, b], axis=1), [rnd(2, 3), rnd(2, 3)]),
    ("reused_input", lambda a: a * a + ops.exp(a) * a, [rnd(3)]),
]


@pytest.mark.parametrize("name, fn, inputs", OP_CASES, ids=[c[0] for c in OP_CASES])
def test_op_vjp_matches_finite_differences(name, fn, inputs):
    assert gradcheck(fn, *[np.array(i) for i in inputs])


DENSE_ACTS = [None, "relu", "sigmoid", "tanh", "elu", "selu"]


@pytest.mark.parametrize("activation", DENSE_ACTS)
def test_fused_dense_gradcheck(activation):
    x = rnd(5, 4)
    w, b = rnd(4, 3), rnd(3)
    assert gradcheck(lambda x, w, b: fused.dense(x, w, b, activation), x, w, b)


def test_fused_dense_rank3_and_no_bias():
    assert gradcheck(lambda x, w: fused.dense(x, w, None, "tanh"), rnd(2, 3, 4), rnd(4, 2))


@pytest.mark.parametrize("axis, shape", [(-1, (6, 3)), (1, (4, 3, 2)), (-1, (2, 3, 4))])
def test_fused_batch_norm_train_gradcheck(axis, shape):
    channels = shape[axis]
    gamma, beta = pos(channels), rnd(channels)
    assert gradcheck(lambda x, g, b: fused.batch_norm_train(x, g, b, axis=axis)[0],
                     rnd(*shape), gamma, beta)


def test_fused_batch_norm_train_statistics_match_definition():
    x = rnd(50, 3) * 4 + 2
    y, mean, var = fused.batch_norm_train(Tensor(x), None, None, epsilon=1e-3)
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(var, x.var(0))
    np.testing.assert_allclose(y.data, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3))


def test_fused_batch_norm_inference_gradcheck():
    mm, mv = Tensor(rnd(3)), Tensor(pos(3))
    assert gradcheck(lambda x, g, b: fused.batch_norm_inference(x, g, b, mm, mv),
                     rnd(4, 3), pos(3), rnd(3))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_softmax_cross_entropy_sparse_and_dense_gradcheck(smoothing):
    labels = np.array([0, 2, 1, 1, 0])
    assert gradcheck(lambda z: fused.softmax_cross_entropy(z, labels, True, smoothing),
                     rnd(5, 3))
    onehot = np.eye(3)[labels]
    assert gradcheck(lambda z: fused.softmax_cross_entropy(z, onehot, False, smoothing),
                     rnd(5, 3))


def test_softmax_cross_entropy_class_axis_first():
    labels = np.eye(3)[[0, 2, 1, 1]].T  # classes on axis 0
    assert gradcheck(lambda z: fused.softmax_cross_entropy(z, labels, False, axis=0),
                     rnd(3, 4))


def test_sigmoid_bce_gradcheck_and_value():
    y = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert gradcheck(lambda z: fused.sigmoid_binary_cross_entropy(z, y), rnd(3, 2))
    z = rnd(3, 2)
    p = 1 / (1 + np.exp(-z))
    ref = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(fused.sigmoid_binary_cross_entropy(Tensor(z), y).data, ref)


def test_softmax_cross_entropy_value_and_stability():
    z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = fused.softmax_cross_entropy(Tensor(z), np.array([1, 2]), True).data
    assert loss.dtype == np.float32
    ref1 = np.log(np.exp([1.0, 2, 3]).sum()) - 3.0
    np.testing.assert_allclose(loss, [1000.0, ref1], rtol=1e-6)


def test_gradcheck_catches_a_wrong_vjp():
    def bad_square(x):
        return Tensor.from_op(x.data ** 2, (x,), lambda g: (g * x.data,), "bad")
    with pytest.raises(GradcheckError, match="gradient of input 0"):
        gradcheck(bad_square, rnd(3))


def test_gradients_accumulate_over_shared_subgraphs():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = x * 2
    (y * y + y).sum().backward()
    np.testing.assert_allclose(x.grad, 8 * x.data + 2)


def test_no_grad_records_nothing_and_backward_errors():
    v = Variable(np.ones(3))
    with no_grad():
        y = (v * 3).sum()
    assert not y.requires_grad and y._parents == ()
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        y.backward()


def test_float32_stays_float32():
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    y = ops.sigmoid(x * 2.0 + 1) / 3.0 - ops.exp(x) * 0.5
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
    assert Tensor([1.0, 2.0]).dtype == np.float32


def test_sigmoid_is_stable_for_large_inputs():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = ops.sigmoid(Tensor(np.array([-1000.0, 0.0, 1000.0], dtype=np.float32))).data
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0])


def test_frozen_variable_gets_no_gradient_and_no_weight_gemm():
    x = Tensor(rnd(4, 3), requires_grad=True)
    w = Variable(rnd(3, 2), trainable=False)
    b = Variable(rnd(2))
    fused.dense(x, w, b, "relu").sum().backward()
    assert w.grad is None and b.grad is not None and x.grad is not None


def test_variable_assign_checks_shape_and_keeps_identity():
    v = Variable(np.zeros((2, 2)), name="w")
    data = v.data
    v.assign(np.ones((2, 2)))
    assert v.data is data and v.data.sum() == 4
    with pytest.raises(ValueError, match=r"expected shape \(2, 2\)"):
        v.assign(np.ones(3))


def test_variable_does_not_alias_user_array():
    arr = np.zeros(3, dtype=np.float32)
    v = Variable(arr)
    v.assign_add(np.ones(3))
    assert arr.sum() == 0


def test_torch_agrees_on_a_composite_graph():
    torch = pytest.importorskip("torch")
    a, b = rnd(4, 3), rnd(3, 2)
    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    torch.log_softmax(torch.tanh(ta @ tb), dim=1).sum().backward()
    ga, gb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    ops.log_softmax(ops.tanh(ga @ gb)).sum().backward()
    np.testing.assert_allclose(ga.grad, ta.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(gb.grad, tb.grad.numpy(), rtol=1e-10)


def test_backward_frees_the_graph_unless_retained():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (ops.exp(x) * 2).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_inplace_relu_backward_never_clobbers_a_shared_gradient():
    """fused.dense applies the ReLU derivative in place only to gradients backward() owns.

    Here an `add` hands the same gradient array to two dense VJPs, and one hidden output
    feeds two layers (its gradient is a sum): every gradient must still be exact.
    """
    from glassnet.autograd import fused, gradcheck, ops
    rng = np.random.default_rng(11)

    def net(x, k1, k2, k3, k4):
        h = fused.dense(x, k1, None, "relu")
        both = ops.add(fused.dense(h, k2, None, "relu"), fused.dense(h, k3, None, "relu"))
        return fused.dense(both, k4, None, "relu")
    shapes = [(5, 4), (4, 6), (6, 3), (6, 3), (3, 2)]
    args = [rng.standard_normal(s) for s in shapes]
    masks = [fused.dense(fused.dense(args[0], Tensor(args[1]), None, "relu"), Tensor(k), None,
                         "relu").data > 0
             for k in args[2:4]]
    assert not np.array_equal(*masks)  # the two ReLU masks differ: a clobber would show
    assert gradcheck(net, *args)
