"""Stochastic gradient descent, with optional (Nesterov) momentum, exactly as Keras 3."""
from __future__ import annotations

from .. import native
from .base import Optimizer, check_number

__all__ = ["SGD"]


class SGD(Optimizer):
    """Gradient descent with optional momentum (Keras 3 `keras.optimizers.SGD`).

    Update rule (Keras 3; v is the "momentum" slot, lr already includes any schedule):
        momentum == 0:  w <- w - lr * g
        v <- momentum * v - lr * g
        nesterov=False: w <- w + v
        nesterov=True:  w <- w + momentum * v - lr * g

    NOTE: Keras folds lr into v; PyTorch keeps b <- momentum * b + g and steps w -= lr * b.
    The two agree exactly while lr is constant and differ after an lr change.

    Args:
        learning_rate: float or schedule. Defaults to 0.01.
        momentum: float in [0, 1]; 0 disables the velocity slot. Defaults to 0.0.
        nesterov: use Nesterov momentum. Defaults to False.
        **kwargs: base optimizer arguments (`weight_decay`, `clipnorm`, ...).

    Example:
        >>> opt = SGD(learning_rate=0.1, momentum=0.9)
        >>> w = Variable(np.array([1.0], "float32"))
        >>> opt.apply_gradients([(np.array([1.0], "float32"), w)]); w.numpy()
        array([0.9], dtype=float32)

    Reference:
        Sutskever et al., 2013, "On the importance of initialization and momentum in deep
        learning", ICML; Keras 3 keras/src/optimizers/sgd.py
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = check_number("momentum", momentum, 0.0, 1.0)
        self.nesterov = bool(nesterov)

    def slot_specs(self):
        return (("momentum", 0.0),) if self.momentum != 0 else ()

    def update_step(self, g, w, lr, grp):
        # NumPy calls per dtype group: 2 (plain), 4 (momentum), 6 (nesterov). The gradient
        # buffer is dead after the step, so it doubles as scratch: no extra P-sized array.
        kernels = native.kernels
        if kernels is not None and grp.native_ok and isinstance(lr, float):
            # the same equations in one pass, g left as it is (bit-identical, but subnormal
            # results are stored as 0: see _native.c)
            kernels.sgd(w, g, grp["momentum"] if self.momentum else None, lr, self.momentum,
                        self.nesterov)
            return
        g *= lr  # g <- lr * g
        if self.momentum == 0:
            w -= g  # w <- w - lr * g
            return
        v = grp["momentum"]
        v *= self.momentum
        v -= g  # v <- momentum * v - lr * g
        if self.nesterov:
            w -= g
            w += grp.xp.multiply(v, self.momentum, out=g)  # w <- w + momentum * v - lr * g
        else:
            w += v  # w <- w + v

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
