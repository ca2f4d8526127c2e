"""Optimizers with per-coordinate step sizes: Adagrad, RMSprop, Adam, AdamW, Adamax, Nadam.

Each `update_step` runs on the flat arrays of one dtype group (see `base`), in place, one
line per equation of the Keras 3 rule, with `tmp` / `tmp2` as scratch so nothing is allocated.
"""
from __future__ import annotations

import math

import numpy as np

from .. import native
from .base import Optimizer, check_number

__all__ = ["Adagrad", "RMSprop", "RMSProp", "Adam", "AdamW", "Adamax", "Nadam"]


def _check_betas(beta_1, beta_2, epsilon, beta_2_high_open=True):
    return (check_number("beta_1", beta_1, 0.0, 1.0, high_open=True),
            check_number("beta_2", beta_2, 0.0, 1.0, high_open=beta_2_high_open),
            check_number("epsilon", epsilon))


class Adagrad(Optimizer):
    """Adagrad: steps shrink with the running sum of squared gradients (Keras 3).

    Update rule (a is the "accumulator" slot, starting at initial_accumulator_value):
        a <- a + g^2
        w <- w - lr * g / sqrt(a + epsilon)

    Args:
        learning_rate: float or schedule. Defaults to 0.001.
        initial_accumulator_value: starting value of a, >= 0. Defaults to 0.1.
        epsilon: added inside the square root. Defaults to 1e-7.
        **kwargs: base optimizer arguments (`weight_decay`, `clipnorm`, ...).

    Example:
        >>> opt = Adagrad(learning_rate=0.1)
        >>> w = Variable(np.zeros(2, "float32"))
        >>> opt.apply_gradients([(np.ones(2, "float32"), w)])

    Reference:
        Duchi et al., 2011, JMLR 12, https://jmlr.org/papers/v12/duchi11a.html
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.initial_accumulator_value = check_number(
            "initial_accumulator_value", initial_accumulator_value)
        self.epsilon = check_number("epsilon", epsilon)

    def slot_specs(self):
        return (("accumulator", self.initial_accumulator_value),)

    def update_step(self, g, w, lr, grp):
        # NumPy calls per dtype group: 7.
        xp, a, tmp = grp.xp, grp["accumulator"], grp.tmp
        a += xp.multiply(g, g, out=tmp)  # a <- a + g^2
        xp.sqrt(xp.add(a, self.epsilon, out=tmp), out=tmp)
        xp.divide(g, tmp, out=tmp)
        w -= xp.multiply(tmp, lr, out=tmp)  # w <- w - lr * g / sqrt(a + eps)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon,
                "initial_accumulator_value": self.initial_accumulator_value}


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square (Keras 3).

    Update rule (v "velocity", mg "average_gradient", b "momentum" slots):
        v <- rho * v + (1 - rho) * g^2
        centered:  mg <- rho * mg + (1 - rho) * g;  d = v - mg^2 + epsilon
        otherwise: d = v + epsilon
        momentum > 0: b <- momentum * b + lr * g / sqrt(d);  w <- w - b
        otherwise:    w <- w - lr * g / sqrt(d)

    NOTE: epsilon sits inside the square root (Keras 3); PyTorch adds it outside.

    Args:
        learning_rate: float or schedule. Defaults to 0.001.
        rho: discounting factor of the squared-gradient average. Defaults to 0.9.
        momentum: heavy-ball momentum on the increment; 0 disables it. Defaults to 0.0.
        epsilon: added inside the square root. Defaults to 1e-7.
        centered: normalise by the variance instead of the second moment. Defaults to
            False.
        **kwargs: base optimizer arguments (`weight_decay`, `clipnorm`, ...).

    Example:
        >>> opt = RMSprop(learning_rate=0.01, centered=True)

    Reference:
        Hinton, Lecture 6e of "Neural Networks for Machine Learning", 2012;
        Graves, 2013, arXiv:1308.0850 (centered variant)
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho = check_number("rho", rho, 0.0, 1.0)
        self.momentum = check_number("momentum", momentum, 0.0, 1.0)
        self.epsilon = check_number("epsilon", epsilon)
        self.centered = bool(centered)

    def slot_specs(self):
        specs = [("velocity", 0.0)]
        if self.momentum > 0:
            specs.append(("momentum", 0.0))
        if self.centered:
            specs.append(("average_gradient", 0.0))
        return tuple(specs)

    def update_step(self, g, w, lr, grp):
        # NumPy calls per dtype group: 9, +5 centered, +1 momentum.
        xp, v, tmp, rho = grp.xp, grp["velocity"], grp.tmp, self.rho
        v *= rho
        v += xp.multiply(xp.multiply(g, g, out=tmp), 1 - rho, out=tmp)  # v <- rho v + (1-rho) g^2
        if self.centered:
            mg = grp["average_gradient"]
            mg *= rho
            mg += xp.multiply(g, 1 - rho, out=tmp)  # mg <- rho mg + (1-rho) g
            xp.subtract(v, xp.multiply(mg, mg, out=tmp), out=tmp)
            tmp += self.epsilon  # d = v - mg^2 + eps
        else:
            xp.add(v, self.epsilon, out=tmp)  # d = v + eps
        xp.divide(g, xp.sqrt(tmp, out=tmp), out=tmp)
        tmp *= lr  # increment = lr * g / sqrt(d)
        if self.momentum > 0:
            b = grp["momentum"]
            b *= self.momentum
            b += tmp  # b <- momentum * b + increment
            w -= b
        else:
            w -= tmp  # w <- w - increment

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


RMSProp = RMSprop  # Keras-style alias: the same class object


class Adam(Optimizer):
    """Adam: adaptive moment estimation, with Keras 3's folded bias correction.

    Update rule (m "momentum", v "velocity", v_hat "velocity_hat" slots):
        m <- m + (1 - beta_1) * (g - m)
        v <- v + (1 - beta_2) * (g^2 - v)
        amsgrad: v_hat <- max(v_hat, v), and v_hat replaces v below
        alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        w <- w - alpha * m / (sqrt(v) + epsilon)

    NOTE: epsilon is the paper's epsilon-hat: it is added to sqrt(v) *before* the bias
    correction of v, so it acts as epsilon * sqrt(1 - beta_2^t) in PyTorch's convention.

    Args:
        learning_rate: float or schedule. Defaults to 0.001.
        beta_1: decay of the first moment, in [0, 1). Defaults to 0.9.
        beta_2: decay of the second moment, in [0, 1). Defaults to 0.999.
        epsilon: numerical-stability constant. Defaults to 1e-7.
        amsgrad: use the AMSGrad maximum of past second moments. Defaults to False.
        **kwargs: base optimizer arguments (`weight_decay`, `clipnorm`, ...).

    Example:
        >>> opt = Adam(learning_rate=0.001)

    Reference:
        Kingma & Ba, 2015, https://arxiv.org/abs/1412.6980;
        Reddi et al., 2018, https://openreview.net/forum?id=ryQu7f-RZ (amsgrad)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = _check_betas(beta_1, beta_2, epsilon)
        self.amsgrad = bool(amsgrad)

    def slot_specs(self):
        specs = (("momentum", 0.0), ("velocity", 0.0))
        return specs + (("velocity_hat", 0.0),) if self.amsgrad else specs

    def update_step(self, g, w, lr, grp):
        # NumPy calls per dtype group: 12 (13 with amsgrad); 0 allocations of flat arrays.
        t = self.iterations + 1
        alpha = lr * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        kernels = native.kernels
        if kernels is not None and grp.native_ok and isinstance(alpha, float):
            # the same equations as below in one pass (bit-identical, but subnormal results
            # are stored as 0: see _native.c)
            kernels.adam(w, g, grp["momentum"], grp["velocity"],
                         grp["velocity_hat"] if self.amsgrad else None,
                         1 - self.beta_1, 1 - self.beta_2, alpha, self.epsilon)
            return
        xp, m, v, tmp = grp.xp, grp["momentum"], grp["velocity"], grp.tmp
        m += xp.multiply(xp.subtract(g, m, out=tmp), 1 - self.beta_1, out=tmp)  # m <- ...
        xp.subtract(xp.multiply(g, g, out=tmp), v, out=tmp)
        v += xp.multiply(tmp, 1 - self.beta_2, out=tmp)  # v <- v + (1-b2) (g^2 - v)
        if self.amsgrad:
            v = xp.maximum(grp["velocity_hat"], v, out=grp["velocity_hat"])
        xp.add(xp.sqrt(v, out=tmp), self.epsilon, out=tmp)  # sqrt(v) + eps
        w -= xp.multiply(xp.divide(m, tmp, out=tmp), alpha, out=tmp)  # w <- w - alpha m / (.)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay, on by default (Keras 3).

    Update rule (decay first, then Adam's rule):
        w <- w - lr * weight_decay * w
        then Adam: m, v, alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t),
        w <- w - alpha * m / (sqrt(v) + epsilon)

    Args:
        learning_rate: float or schedule. Defaults to 0.001.
        weight_decay: decoupled decay coefficient (must not be None). Defaults to 0.004.
        beta_1, beta_2, epsilon, amsgrad: as in `Adam`.
        **kwargs: base optimizer arguments (`clipnorm`, ...).

    Example:
        >>> opt = AdamW(learning_rate=0.001, weight_decay=0.01)

    Reference:
        Loshchilov & Hutter, 2019, https://arxiv.org/abs/1711.05101
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW needs a float `weight_decay`. Received: weight_decay=None")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, weight_decay=weight_decay, **kwargs)


class Adamax(Optimizer):
    """Adamax: Adam with the infinity norm in place of the second moment (Keras 3).

    Update rule (m "momentum", u "norm" slots):
        m <- m + (1 - beta_1) * (g - m)
        u <- max(beta_2 * u, |g|)
        w <- w - lr * m / ((1 - beta_1^t) * (u + epsilon))

    Args:
        learning_rate: float or schedule. Defaults to 0.001.
        beta_1: decay of the first moment, in [0, 1). Defaults to 0.9.
        beta_2: decay of the infinity norm, in [0, 1]. Defaults to 0.999.
        epsilon: numerical-stability constant. Defaults to 1e-7.
        **kwargs: base optimizer arguments (`weight_decay`, `clipnorm`, ...).

    Example:
        >>> opt = Adamax(learning_rate=0.002)

    Reference:
        Kingma & Ba, 2015, section 7.1, https://arxiv.org/abs/1412.6980
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = _check_betas(beta_1, beta_2, epsilon, False)

    def slot_specs(self):
        return (("momentum", 0.0), ("norm", 0.0))

    def update_step(self, g, w, lr, grp):
        # NumPy calls per dtype group: 10.
        xp, m, u, tmp = grp.xp, grp["momentum"], grp["norm"], grp.tmp
        t = self.iterations + 1
        m += xp.multiply(xp.subtract(g, m, out=tmp), 1 - self.beta_1, out=tmp)  # m <- ...
        u *= self.beta_2
        xp.maximum(u, xp.abs(g, out=tmp), out=u)  # u <- max(b2 u, |g|)
        xp.divide(m, xp.add(u, self.epsilon, out=tmp), out=tmp)
        w -= xp.multiply(tmp, lr / (1 - self.beta_1**t), out=tmp)  # w <- w - lr m / (...)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Nadam: Adam with Nesterov momentum and Dozat's momentum schedule (Keras 3).

    Update rule (m "momentum", v "velocity" slots; P_t = u_1 * ... * u_t, kept as a scalar):
        u_t = beta_1 * (1 - 0.5 * 0.96^t);  u_t1 = beta_1 * (1 - 0.5 * 0.96^(t+1))
        P_t = P_(t-1) * u_t;  P_t1 = P_t * u_t1
        m <- m + (1 - beta_1) * (g - m);  v <- v + (1 - beta_2) * (g^2 - v)
        m_hat = u_t1 * m / (1 - P_t1) + (1 - u_t) * g / (1 - P_t)
        v_hat = v / (1 - beta_2^t)
        w <- w - lr * m_hat / (sqrt(v_hat) + epsilon)

    Args:
        learning_rate: float or schedule. Defaults to 0.001.
        beta_1: decay of the first moment, in [0, 1). Defaults to 0.9.
        beta_2: decay of the second moment, in [0, 1). Defaults to 0.999.
        epsilon: numerical-stability constant. Defaults to 1e-7.
        **kwargs: base optimizer arguments (`weight_decay`, `clipnorm`, ...).

    Example:
        >>> opt = Nadam(learning_rate=0.002)

    Reference:
        Dozat, 2016, "Incorporating Nesterov Momentum into Adam", ICLR workshop,
        https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = _check_betas(beta_1, beta_2, epsilon)
        self._u_product = np.ones((), np.float64)

    def slot_specs(self):
        return (("momentum", 0.0), ("velocity", 0.0))

    def _before_update(self):
        t = self.iterations + 1
        self._u_product *= self.beta_1 * (1.0 - 0.5 * 0.96**t)  # P_t = P_(t-1) * u_t

    def _scalar_state(self):
        return [self._u_product]

    def update_step(self, g, w, lr, grp):
        # NumPy calls per dtype group: 16.
        xp, m, v, tmp, tmp2 = grp.xp, grp["momentum"], grp["velocity"], grp.tmp, grp.tmp2
        b1, b2, t = self.beta_1, self.beta_2, self.iterations + 1
        u_t, u_t1 = b1 * (1.0 - 0.5 * 0.96**t), b1 * (1.0 - 0.5 * 0.96 ** (t + 1))
        p_t = float(self._u_product)
        p_t1 = p_t * u_t1
        m += xp.multiply(xp.subtract(g, m, out=tmp), 1 - b1, out=tmp)  # m <- ...
        xp.subtract(xp.multiply(g, g, out=tmp), v, out=tmp)
        v += xp.multiply(tmp, 1 - b2, out=tmp)  # v <- v + (1-b2) (g^2 - v)
        xp.multiply(m, u_t1 / (1 - p_t1), out=tmp)
        tmp += xp.multiply(g, (1 - u_t) / (1 - p_t), out=tmp2)  # m_hat
        xp.sqrt(xp.divide(v, 1 - b2**t, out=tmp2), out=tmp2)
        tmp2 += self.epsilon  # sqrt(v_hat) + eps
        w -= xp.multiply(xp.divide(tmp, tmp2, out=tmp), lr, out=tmp)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}
