"""Fused ops with hand-derived VJPs: fewer array calls on the hot path, and stable numerics.

- `dense`: x @ W + b followed by an activation applied in place; one graph node.
- `batch_norm_train` / `batch_norm_inference`: closed-form batch-norm backward.
- `softmax_cross_entropy` / `sigmoid_binary_cross_entropy`: losses from logits, whose
  gradient is simply `softmax(z) - y` (resp. `sigmoid(z) - y`).
"""
from __future__ import annotations

import numpy as np

from .. import native
from .ops import stable_sigmoid, tensor
from .tensor import GRAD_OWNED, Tensor, fresh_vjp

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _relu_fwd(z):
    return np.maximum(z, 0, out=z)


def _relu_bwd(g, y):
    kernels = native.kernels
    if kernels is not None:  # one compiled pass, no boolean temporary
        out = np.empty_like(y)
        try:
            kernels.relu_backward(g, y, out)
            return out
        except (TypeError, ValueError, BufferError):
            pass  # mixed dtypes or a strided g
    return g * (y > 0)  # NOTE: 2.5x faster than np.where(y > 0, g, 0) on small batches


def _relu_backward(g, y, owned, bias):
    """(g * (y > 0), bias gradient or None): written into g when backward() says this VJP
    owns it (GRAD_OWNED); the compiled kernel also sums the columns for the bias."""
    kernels = native.kernels
    if kernels is not None:
        out = g if owned else np.empty_like(y)
        gb = None
        if bias is not None:
            gb = _grad_target(bias)
            gb = np.empty(y.shape[-1], y.dtype) if gb is None else gb
        try:
            kernels.relu_backward(g, y, out, gb)
            return out, gb
        except (TypeError, ValueError, BufferError):
            pass  # mixed dtypes or a strided g: NumPy below, the bias sum by the caller
    if owned and g.dtype == np.result_type(g, y) and g.flags.writeable:
        g *= y > 0
        return g, None
    return _relu_bwd(g, y), None


def _bias_relu(z, bias):
    """z = max(z + bias, 0) in place: one compiled pass instead of two NumPy calls."""
    try:
        native.kernels.bias_relu(z, bias)
        return z
    except (TypeError, ValueError, BufferError):  # e.g. a float64 bias on float32 inputs
        z += bias
        return _relu_fwd(z)


def _sigmoid_fwd(z):
    return stable_sigmoid(z)


def _sigmoid_bwd(g, y):
    return g * (y * (1 - y))


def _tanh_fwd(z):
    return np.tanh(z, out=z)


def _tanh_bwd(g, y):
    return g * (1 - y * y)


def _elu_fwd(z):
    neg = z < 0
    z[neg] = np.expm1(z[neg])
    return z


def _elu_bwd(g, y):  # for y < 0: d/dz (e^z - 1) = e^z = y + 1
    return np.where(y > 0, g, g * (y + 1))


def _selu_fwd(z):
    neg = z < 0
    z[neg] = SELU_ALPHA * np.expm1(z[neg])
    z *= SELU_SCALE
    return z


def _selu_bwd(g, y):  # for y < 0: d/dz scale*alpha*(e^z - 1) = y + scale*alpha
    return np.where(y > 0, g * SELU_SCALE, g * (y + SELU_SCALE * SELU_ALPHA))


# Activations that `dense` applies in place, with their derivative written from the output.
INPLACE_ACTIVATIONS = {
    "relu": (_relu_fwd, _relu_bwd),
    "sigmoid": (_sigmoid_fwd, _sigmoid_bwd),
    "tanh": (_tanh_fwd, _tanh_bwd),
    "elu": (_elu_fwd, _elu_bwd),
    "selu": (_selu_fwd, _selu_bwd),
}


def _grad_target(param):
    """The optimizer's packed gradient buffer of `param` when a VJP may write into it
    directly (saves a copy per parameter and step), else None."""
    return param.grad_out() if type(param) is not Tensor and param.requires_grad else None


def dense_forward(xd, kernel, bias, activation, out=None):
    """act(xd @ kernel + bias) on arrays: `dense`'s forward pass (the product written into
    `out` when given; the activation is applied in place)."""
    z = np.matmul(xd, kernel.data, out=out)
    if bias is not None and activation == "relu" and native.kernels is not None:
        return _bias_relu(z, bias.data)
    if bias is not None:
        z += bias.data
    return INPLACE_ACTIVATIONS[activation][0](z) if activation else z


def dense_backward(g, xd, y, kernel, bias, activation, owned, want_gx, gx_out=None):
    """(gx, gk, gb) of `dense_forward` for the output gradient g: gx only when `want_gx`
    (written into `gx_out` when given), gk / gb only for weights that require one, straight
    into the optimizer's packed buffers when free. g is overwritten when `owned`."""
    gx = gk = gb = None
    want_gb = bias is not None and bias.requires_grad
    if activation is None:
        gz = g
    elif activation == "relu":
        gz, gb = _relu_backward(g, y, owned, bias if want_gb else None)
    else:
        gz = INPLACE_ACTIVATIONS[activation][1](g, y)
    gz2 = gz.reshape(-1, gz.shape[-1])
    if want_gx:
        gx = np.matmul(gz, kernel.data.T, out=gx_out)
    if kernel.requires_grad:
        # NOTE: written straight into the optimizer's packed gradient buffer when free:
        # saves a copy of every kernel gradient per step.
        gk = np.matmul(xd.reshape(-1, xd.shape[-1]).T, gz2, out=_grad_target(kernel))
    if want_gb and gb is None:
        gb = np.add.reduce(gz2, axis=0, out=_grad_target(bias))
    return gx, gk, gb


def dense(x, kernel, bias=None, activation=None) -> Tensor:
    """y = act(x @ kernel + bias) as one node; `activation` is None or a key of
    INPLACE_ACTIVATIONS. x may have any number of leading axes (Keras Dense semantics)."""
    x = tensor(x)
    y = dense_forward(x.data, kernel, bias, activation)
    parents = (x, kernel) if bias is None else (x, kernel, bias)

    def vjp(g):
        gx, gk, gb = dense_backward(g, x.data, y, kernel, bias, activation, GRAD_OWNED[0],
                                    x.requires_grad)
        return (gx, gk) if bias is None else (gx, gk, gb)
    return Tensor.from_op(y, parents, fresh_vjp(vjp), f"dense_{activation or 'linear'}")


def _reduction_axes(ndim: int, axis) -> tuple:
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % ndim for a in axes)
    return tuple(i for i in range(ndim) if i not in axes)


def _param_shape(shape: tuple, reduce_axes: tuple) -> tuple:
    return tuple(1 if i in reduce_axes else n for i, n in enumerate(shape))


def batch_norm_train(x, gamma, beta, axis=-1, epsilon=1e-3, moving=None):
    """Normalise with the batch's own statistics.

    y = gamma * (x - mean) / sqrt(var + epsilon) + beta, with mean and the biased var taken
    over every axis except `axis`. Backward in closed form (N values per channel):
    dx = gamma * inv_std * (g - sum(g)/N - xhat * sum(g * xhat)/N),
    dgamma = sum(g * xhat), dbeta = sum(g).
    `moving` = (moving_mean, moving_variance, momentum) arrays are updated in place:
    moving <- moving * momentum + (1 - momentum) * batch statistic.

    Returns:
        (y, batch_mean, batch_var): a Tensor and two arrays of shape (channels,).
    """
    x = tensor(x)
    xd = x.data
    if native.kernels is not None and xd.ndim == 2 and axis in (-1, 1):
        try:
            return _batch_norm_train_native(x, gamma, beta, epsilon, moving)
        except (TypeError, ValueError, BufferError):
            pass  # e.g. float16 or a strided view: the NumPy code below handles it
    red = _reduction_axes(xd.ndim, axis)
    pshape = _param_shape(xd.shape, red)
    inv_n = 1.0 / (xd.size // _prod(pshape))
    # NOTE: ufunc.reduce instead of ndarray.mean: same result, a third of the call overhead.
    mean = np.add.reduce(xd, axis=red, keepdims=True)
    mean *= inv_n
    xhat = xd - mean
    var = np.add.reduce(xhat * xhat, axis=red, keepdims=True)
    var *= inv_n
    inv_std = var + np.asarray(epsilon, dtype=var.dtype)
    np.sqrt(inv_std, out=inv_std)
    np.reciprocal(inv_std, out=inv_std)
    xhat *= inv_std
    gamma_b = None if gamma is None else gamma.data.reshape(pshape)
    # NOTE: the VJP recomputes xhat from x, as the compiled backward does, so y may take it
    y = xhat * gamma_b if gamma is not None else xhat
    if beta is not None:
        y += beta.data.reshape(pshape)
    parents = tuple(p for p in (x, gamma, beta) if p is not None)

    def vjp(g):
        xhat = xd - mean
        xhat *= inv_std  # the forward pass's two operations: the same bits
        sum_g = np.add.reduce(g, axis=red, keepdims=True)
        sum_gx = np.add.reduce(g * xhat, axis=red, keepdims=True)
        out = [None]
        if x.requires_grad:
            gx = g - sum_g * inv_n
            gx -= xhat * (sum_gx * inv_n)
            gx *= inv_std if gamma is None else gamma_b * inv_std
            out[0] = gx
        if gamma is not None:
            out.append(sum_gx.reshape(gamma.shape))
        if beta is not None:
            out.append(sum_g.reshape(beta.shape))
        return tuple(out)
    out = Tensor.from_op(y, parents, fresh_vjp(vjp), "batch_norm_train")
    # NOTE: a copy, under another name: the VJP reads `mean`, a caller may write the one
    # returned
    batch_mean, batch_var = mean.reshape(-1).copy(), var.reshape(-1)
    if moving is not None:
        _update_moving(moving, batch_mean, batch_var)
    return out, batch_mean, batch_var


def _update_moving(moving, mean, var):
    moving_mean, moving_var, momentum = moving
    for average, batch in ((moving_mean, mean), (moving_var, var)):
        average *= momentum
        average += (1.0 - momentum) * batch.astype(average.dtype, copy=False)


def _batch_norm_train_native(x, gamma, beta, epsilon, moving):
    """`batch_norm_train` for a (N, C) batch in compiled passes (_native.c)."""
    xd = x.data
    moving = () if moving is None else moving
    if moving and moving[0].dtype != xd.dtype:  # e.g. float16 inputs, float32 statistics
        return _update_moving_after(_batch_norm_train_native(x, gamma, beta, epsilon, None),
                                    moving)
    y, mean, var, inv_std = batch_norm_train_forward(xd, gamma, beta, epsilon, moving)
    parents = tuple(p for p in (x, gamma, beta) if p is not None)

    def vjp(g):
        gx, dgamma, dbeta = batch_norm_train_backward(g, xd, mean, gamma, beta, inv_std,
                                                      x.requires_grad)
        out = [gx]
        if gamma is not None:
            out.append(dgamma.reshape(gamma.shape))
        if beta is not None:
            out.append(dbeta.reshape(beta.shape))
        return tuple(out)
    # NOTE: a copy: the VJP reads `mean`, a caller may write the one returned
    return Tensor.from_op(y, parents, fresh_vjp(vjp), "batch_norm_train"), mean.copy(), var


def batch_norm_train_forward(xd, gamma, beta, epsilon, moving=(), y=None):
    """The compiled forward pass of `batch_norm_train` on a C-contiguous (N, C) array:
    (y, mean, var, inv_std), y written into the array given; `moving` is () or
    (moving_mean, moving_variance, momentum) arrays of xd's dtype, updated in place.
    xhat is not kept: the backward pass recomputes it from xd (which must not change in
    between), mean and inv_std, bit for bit."""
    rows, channels = xd.shape
    y = np.empty_like(xd) if y is None else y
    mean, var, inv_std = np.empty((3, channels), xd.dtype)
    native.kernels.bn_forward(xd, rows, None if gamma is None else gamma.data,
                              None if beta is None else beta.data, epsilon,
                              y, mean, var, inv_std, *moving)
    return y, mean, var, inv_std


def batch_norm_train_backward(g, xd, mean, gamma, beta, inv_std, want_gx, gx_out=None):
    """(gx, dgamma, dbeta) of `batch_norm_train_forward` for the input xd and its batch
    statistics, in one compiled pass: gx only when `want_gx` (into `gx_out` when given);
    dgamma and dbeta land in the optimizer's packed gradient buffers when free."""
    channels = xd.shape[1]
    kernels = native.compiled()
    # NOTE: dgamma = sum_gx and dbeta = sum_g land in the packed gradient buffers
    sum_gx = _grad_target(gamma) if gamma is not None else None
    sum_g = _grad_target(beta) if beta is not None else None
    scale = np.empty(channels, xd.dtype)
    sum_gx = np.empty_like(scale) if sum_gx is None else sum_gx
    sum_g = np.empty_like(scale) if sum_g is None else sum_g
    gx = (np.empty_like(xd) if gx_out is None else gx_out) if want_gx else None
    gamma_d = None if gamma is None else gamma.data
    try:
        kernels.bn_backward(g, xd, mean, gamma_d, inv_std, gx, sum_g, sum_gx, scale)
    except (TypeError, ValueError, BufferError):  # g broadcast, read-only or float64
        g = np.ascontiguousarray(g, dtype=xd.dtype)
        kernels.bn_backward(g, xd, mean, gamma_d, inv_std, gx, sum_g, sum_gx, scale)
    return gx, sum_gx, sum_g


def _update_moving_after(result, moving):
    _update_moving(moving, result[1], result[2])
    return result


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _inverse_std(moving_variance, epsilon):
    return 1.0 / np.sqrt(moving_variance.data + np.asarray(epsilon, moving_variance.dtype))


def _batch_norm_inference_native(x, gamma, beta, moving_mean, moving_variance, epsilon):
    """(y, scale) of `batch_norm_inference` over the last axis in one compiled pass instead
    of eight small NumPy calls (same operations, same order), or None where the kernel
    does not apply (no kernels, float16, mixed dtypes, a strided x)."""
    kernels = native.kernels
    if kernels is None:
        return None
    y, scale = np.empty_like(x.data), np.empty(x.shape[-1], x.dtype)
    try:
        kernels.bn_inference(x.data, None if gamma is None else gamma.data,
                             None if beta is None else beta.data, moving_mean.data,
                             moving_variance.data, epsilon, y, scale, np.empty_like(scale))
    except (TypeError, ValueError, BufferError):
        return None
    return y, scale


def batch_norm_inference(x, gamma, beta, moving_mean, moving_variance, axis=-1,
                         epsilon=1e-3) -> Tensor:
    """y = (x - moving_mean) * gamma / sqrt(moving_variance + epsilon) + beta, one affine."""
    x = tensor(x)
    fast = _batch_norm_inference_native(x, gamma, beta, moving_mean, moving_variance,
                                        epsilon) if axis in (-1, x.ndim - 1) else None
    if fast is not None:  # channels last: statistics over every leading axis
        (y, scale), red = fast, tuple(range(x.ndim - 1))
        pshape = (1,) * (x.ndim - 1) + scale.shape
    else:
        red = _reduction_axes(x.ndim, axis)
        pshape = _param_shape(x.shape, red)
        inv_std = _inverse_std(moving_variance, epsilon)
        scale = inv_std if gamma is None else gamma.data * inv_std
        shift = -moving_mean.data * scale
        if beta is not None:
            shift = shift + beta.data
        y = x.data * scale.reshape(pshape)
        y += shift.reshape(pshape)
    parents = tuple(p for p in (x, gamma, beta) if p is not None)

    def vjp(g):
        out = [g * scale.reshape(pshape) if x.requires_grad else None]
        if gamma is not None:
            inv_std = _inverse_std(moving_variance, epsilon)
            xhat = (x.data - moving_mean.data.reshape(pshape)) * inv_std.reshape(pshape)
            out.append(np.sum(g * xhat, axis=red).reshape(gamma.shape))
        if beta is not None:
            out.append(np.sum(g, axis=red).reshape(beta.shape))
        return tuple(out)
    return Tensor.from_op(y, parents, vjp, "batch_norm_inference")


def softmax_cross_entropy(logits, target, sparse: bool, label_smoothing: float = 0.0,
                          axis: int = -1) -> Tensor:
    """Per-sample cross-entropy of softmax(logits) against `target`.

    loss = logsumexp(z) - sum(y * z) / ... in general  -sum(y * log_softmax(z));
    d loss / dz = softmax(z) * sum(y) - y. `target` holds class indices when `sparse`,
    otherwise probabilities (one-hot) with the class axis at `axis`.
    """
    z = tensor(logits)
    if axis not in (-1, z.ndim - 1):
        zt = np.moveaxis(z.data, axis, -1)
    else:
        zt = z.data
    if sparse and not label_smoothing and zt.ndim == 2 and native.kernels is not None:
        try:
            return _sparse_softmax_cross_entropy_native(z, target)
        except (TypeError, ValueError, BufferError):
            pass  # e.g. float16 logits: the NumPy code below
    k = zt.shape[-1]
    shifted = zt - zt.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=-1, keepdims=True)
    log_softmax = shifted  # NOTE: in place: `shifted` is not needed afterwards
    log_softmax -= np.log(s)
    if sparse:
        labels = np.asarray(target)
        if labels.ndim == zt.ndim:  # (N, 1) labels, as Keras accepts
            labels = labels[..., 0]
        labels = labels.astype(np.intp, copy=False)
        if label_smoothing:
            y = np.full(zt.shape, label_smoothing / k, dtype=zt.dtype)
            np.put_along_axis(y, labels[..., None], 1 - label_smoothing + label_smoothing / k,
                              axis=-1)
            loss = -np.sum(y * log_softmax, axis=-1)
        else:
            y = None
            loss = -np.take_along_axis(log_softmax, labels[..., None], axis=-1)[..., 0]
    else:
        y = np.asarray(target, dtype=zt.dtype)
        if zt is not z.data:
            y = np.moveaxis(y, axis, -1)
        if label_smoothing:
            y = y * (1 - label_smoothing) + label_smoothing / k
        loss = -np.sum(y * log_softmax, axis=-1)

    def vjp(g):
        p = e / s
        if y is None:
            gz = p
            idx = labels[..., None]
            np.put_along_axis(gz, idx, np.take_along_axis(gz, idx, axis=-1) - 1, axis=-1)
        else:
            gz = p * y.sum(axis=-1, keepdims=True) - y
        gz *= g[..., None]
        if zt is not z.data:
            gz = np.moveaxis(gz, -1, axis)
        return (gz,)
    return Tensor.from_op(loss, (z,), vjp, "softmax_cross_entropy")


def _sparse_softmax_cross_entropy_native(z, target):
    """`softmax_cross_entropy` of (N, K) logits and N integer labels, in one compiled pass;
    the probabilities it leaves make the backward pass a second one."""
    p, loss, labels = sparse_softmax_cross_entropy_forward(z.data, target)

    def vjp(g):
        return (sparse_softmax_cross_entropy_backward(p, labels, g),)
    return Tensor.from_op(loss, (z,), fresh_vjp(vjp), "softmax_cross_entropy")


def sparse_softmax_cross_entropy_forward(zd, target):
    """(p, loss, labels) for (N, K) logits `zd` and N integer labels (or (N, 1)), compiled:
    p = softmax(zd) (the same loop as the softmax activation's), the per-row loss, and the
    labels as the int64 array the backward pass takes."""
    labels = np.asarray(target)
    if labels.ndim == 2:  # (N, 1) labels, as Keras accepts
        labels = labels[:, 0]
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    p, loss = np.empty_like(zd), np.empty(zd.shape[0], zd.dtype)
    native.kernels.xent_forward(zd, labels, p, loss)
    return p, loss, labels


def sparse_softmax_cross_entropy_backward(p, labels, g):
    """d loss / d logits = (p - onehot(labels)) * g[:, None], compiled."""
    gz = np.empty_like(p)
    if not (g.flags.c_contiguous and g.dtype == p.dtype):  # e.g. a broadcast mean VJP
        g = np.ascontiguousarray(g, dtype=p.dtype)
    native.compiled().xent_backward(p, labels, g, gz)
    return gz


def sigmoid_binary_cross_entropy(logits, target, label_smoothing: float = 0.0) -> Tensor:
    """Elementwise BCE of sigmoid(logits): max(z,0) - z*y + log1p(exp(-|z|));
    d/dz = sigmoid(z) - y."""
    z = tensor(logits)
    y = np.asarray(target, dtype=z.dtype)
    if label_smoothing:
        y = y * (1 - label_smoothing) + 0.5 * label_smoothing
    zd = z.data
    loss = np.maximum(zd, 0) - zd * y + np.log1p(np.exp(-np.abs(zd)))

    def vjp(g):
        return ((stable_sigmoid(zd) - y) * g,)
    return Tensor.from_op(loss, (z,), vjp, "sigmoid_binary_cross_entropy")
