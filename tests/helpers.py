"""Shared test helpers: the layer contract check."""
import numpy as np

from glassnet.autograd import Tensor, gradcheck


def check_layer(layer_cls, kwargs, input_shape, expected_output_shape,
                expected_trainable, expected_non_trainable, rng=None, gradcheck_inputs=True):
    """Output shape, weight counts, config round trip, and float64 gradient of the layer."""
    rng = rng or np.random.default_rng(0)
    layer = layer_cls(**kwargs)
    x = rng.standard_normal(input_shape).astype("float32")
    y = layer(x)
    assert y.shape == expected_output_shape
    assert y.dtype == np.float32
    assert len(layer.trainable_weights) == expected_trainable
    assert len(layer.non_trainable_weights) == expected_non_trainable
    assert layer.compute_output_shape((None,) + tuple(input_shape[1:])) == \
        (None,) + tuple(expected_output_shape[1:])
    config = layer.get_config()
    clone = layer_cls.from_config({**config, "name": config["name"] + "_clone"})
    assert {k: v for k, v in clone.get_config().items() if k != "name"} == \
        {k: v for k, v in config.items() if k != "name"}
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x).data, y.data, rtol=1e-6)
    if gradcheck_inputs:
        layer64 = layer_cls(**{**kwargs, "dtype": "float64"})
        layer64(x.astype("float64"))
        for w, value in zip(layer64.weights, layer.get_weights()):
            w.assign(value.astype("float64"))

        def fn(inp, *weights):
            for var, t in zip(layer64.trainable_weights, weights):
                var.data = t.data
            return layer64.call(inp, training=True) if layer64._call_has_training \
                else layer64.call(inp)
        assert _gradcheck_with_weights(fn, x.astype("float64"), layer64)
    return layer


def _gradcheck_with_weights(fn, x, layer):
    """Gradcheck wrt the input and every trainable weight (weights become leaf Tensors)."""
    weights = [np.array(w.data) for w in layer.trainable_weights]

    def wrapped(inp, *ws):
        for var, t in zip(layer.trainable_weights, ws):
            var.data = t.data
            var.requires_grad = t.requires_grad
        out = fn(inp, *ws)
        return out

    leaves_fn = _LeafSwap(layer, fn)
    return gradcheck(leaves_fn, x, *weights)


class _LeafSwap:
    """Call the layer with its trainable Variables replaced by the gradcheck leaves."""

    def __init__(self, layer, fn):
        self.layer = layer
        self.fn = fn

    def __call__(self, inp, *leaves):
        layer = self.layer
        originals = list(layer._weights)
        mapping = {id(v): leaf for v, leaf in zip(layer.trainable_weights, leaves)}
        swapped = {}
        for name, value in list(vars(layer).items()):
            if id(value) in mapping:
                swapped[name] = value
                object.__setattr__(layer, name, mapping[id(value)])
        try:
            return layer.call(inp, training=True) if layer._call_has_training \
                else layer.call(inp)
        finally:
            for name, value in swapped.items():
                object.__setattr__(layer, name, value)
            layer._weights = originals


__all__ = ["check_layer", "Tensor"]
