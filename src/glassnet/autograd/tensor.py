"""Tensor: an array that remembers how it was made, so gradients can flow back through it.

A Tensor made by an op keeps its parents and a vector-Jacobian product (VJP): a function that
maps the gradient of the output to one gradient per parent. `backward()` walks the graph in
reverse topological order, calls each VJP once, sums gradients that meet, and undoes
broadcasting. Only leaves that require a gradient (Variables, or Tensors made with
`requires_grad=True`) keep a `.grad`.
"""
from __future__ import annotations

import contextlib
import numbers

import numpy as np

from .. import backend

_GRAD_ENABLED = True


@contextlib.contextmanager
def no_grad():
    """Context manager in which ops record no graph (inference, metrics, optimizer steps)."""
    global _GRAD_ENABLED
    previous, _GRAD_ENABLED = _GRAD_ENABLED, False
    try:
        yield
    finally:
        _GRAD_ENABLED = previous


@contextlib.contextmanager
def enable_grad():
    """Context manager that records the graph even inside `no_grad`."""
    global _GRAD_ENABLED
    previous, _GRAD_ENABLED = _GRAD_ENABLED, True
    try:
        yield
    finally:
        _GRAD_ENABLED = previous


def is_grad_enabled() -> bool:
    """Return whether ops currently record the graph."""
    return _GRAD_ENABLED


def as_array(value, dtype=None) -> np.ndarray:
    """Convert `value` to an array; Python floats and lists of floats become `floatx()`."""
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, np.ndarray):
        return value if dtype is None else value.astype(dtype, copy=False)
    if dtype is None:
        arr = np.asarray(value)
        if arr.dtype.kind == "f" and not isinstance(value, np.generic):
            arr = arr.astype(backend.floatx(), copy=False)
        return arr
    return np.asarray(value, dtype=dtype)


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` down to `shape`, undoing NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


class Tensor:
    """An array plus the graph that produced it.

    Args:
        data: array-like; Python floats become `floatx()`, NumPy arrays keep their dtype.
        requires_grad: whether `backward()` should fill `.grad` on this leaf.
        dtype: optional dtype to cast to.

    Example:
        >>> x = Tensor([1.0, 2.0], requires_grad=True)
        >>> (x * x).sum().backward(); x.grad
        array([2., 4.], dtype=float32)
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_vjp", "op",
                 "_logits", "_keras_history", "__weakref__")
    __array_priority__ = 100  # so that ndarray <op> Tensor defers to Tensor's reflected op

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = as_array(data, dtype)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents = ()
        self._vjp = None
        self.op = None
        self._logits = None
        self._keras_history = None

    @staticmethod
    def from_op(data, parents, vjp, op: str) -> "Tensor":
        """Make the output of an op; it joins the graph only if a parent needs a gradient."""
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out._logits = None
        out._keras_history = None
        out.op = op
        if _GRAD_ENABLED:
            for p in parents:
                if p.requires_grad:
                    out.requires_grad = True
                    out._parents = parents
                    out._vjp = vjp
                    return out
        out.requires_grad = False
        out._parents = ()
        out._vjp = None
        return out

    # ---- array-like surface -------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """Return the underlying array (not a copy)."""
        return self.data

    def item(self):
        return self.data.item()

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, threshold=20)}, dtype={self.dtype}{grad})"

    def detach(self) -> "Tensor":
        """Return a Tensor sharing the data but cut from the graph."""
        return Tensor(self.data)

    # ---- gradients ----------------------------------------------------------------------
    def _accumulate_grad(self, g: np.ndarray) -> None:
        self.grad = g if self.grad is None else self.grad + g

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Compute the gradient of this tensor with respect to every leaf that requires one.

        Args:
            grad: gradient of the final objective with respect to this tensor; defaults to
                ones (so a scalar loss needs no argument).
            retain_graph: keep the graph for a second backward. By default each node drops
                its VJP (and the activations it holds) as soon as it has run, as PyTorch
                does, so a training step never holds two steps' activations.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require a gradient: none of "
                "its inputs is a trainable Variable or a Tensor with requires_grad=True "
                "(or it was computed inside no_grad())."
            )
        if grad is None:
            grad = np.ones(self.data.shape, self.data.dtype)  # NOTE: np.ones_like: 5x slower
        else:
            grad = as_array(grad, self.data.dtype)
        if self._vjp is None:  # backward() on a leaf
            self._accumulate_grad(grad)
            return
        # NOTE: leaves (variables, inputs) take their gradient as soon as a VJP yields it;
        # only the op nodes are sorted, which halves the walk for a layer stack.
        order = _topological_order(self)
        grads, owned = {id(self): grad}, set()
        for node in order:
            key = id(node)
            g = grads.pop(key, None)
            if g is None:
                continue
            vjp = node._vjp
            GRAD_OWNED[0] = key in owned
            try:
                parent_grads = vjp(g)
            finally:
                GRAD_OWNED[0] = False
            fresh = getattr(vjp, "fresh", False)
            parents = node._parents
            if not retain_graph:
                node._vjp, node._parents = _freed_vjp, ()
            for parent, pg in zip(parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent.data.shape:
                    pg = unbroadcast(pg, parent.data.shape)
                if parent._vjp is None:
                    parent._accumulate_grad(pg)
                    continue
                pkey = id(parent)
                previous = grads.get(pkey)
                if previous is None:
                    grads[pkey] = pg
                    if fresh and pg is not g:
                        owned.add(pkey)
                else:
                    grads[pkey] = previous + pg
                    owned.add(pkey)

    # Operator dunders are attached at the bottom of ops.py (one sanctioned cycle).


# True while the VJP now running was handed a gradient that nothing else references: an
# array a `fresh` VJP allocated for this one parent, or a sum made by backward(). Such a VJP
# may overwrite it (fused.dense applies the ReLU derivative in place: one activation-sized
# array less at the peak of a step).
GRAD_OWNED = [False]


def fresh_vjp(vjp):
    """Mark `vjp` as returning newly allocated gradients, one per parent, that nothing else
    references; backward() then lets the parent's VJP overwrite them (see GRAD_OWNED)."""
    vjp.fresh = True
    return vjp


def _freed_vjp(g):
    raise RuntimeError(
        "Trying to backward through the graph a second time: its intermediate values were "
        "freed after the first backward(). Pass backward(retain_graph=True) the first time."
    )


def _topological_order(root: Tensor) -> list:
    """Return the op nodes (leaves left out) from `root` down, each after every node that
    uses it."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        key = id(node)
        if key in visited:
            continue
        visited.add(key)
        stack.append((node, True))
        for parent in node._parents:
            if parent.requires_grad and parent._vjp is not None and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def is_scalar(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)
