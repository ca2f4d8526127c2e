"""Reverse-mode automatic differentiation over NumPy arrays."""
from . import fused, ops
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor, enable_grad, is_grad_enabled, no_grad
from .variable import Variable

__all__ = ["Tensor", "Variable", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck",
           "GradcheckError", "ops", "fused"]
