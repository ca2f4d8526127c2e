"""The symbolic graph behind functional models: walking, ordering and mapping structures.

A graph is made of `Node`s (layer calls, see `layers/input_layer.py`) linked through the
KerasTensors they consume and produce. These helpers find the nodes between a model's
inputs and outputs, order them for execution and as Keras 3 orders `model.layers`, and
map nested structures (tensor, list, tuple, dict) of tensors.
"""
from __future__ import annotations

from ..layers.base import shape_str
from ..layers.input_layer import InputLayer, KerasTensor


def _check_tensors(tensors, what) -> list:
    for t in tensors:
        if not isinstance(t, KerasTensor):
            raise TypeError(f"Model `{what}` must be KerasTensors, from keras.Input(...) and "
                            f"layer calls on them. Received: {type(t).__name__} {t!r}")
    if not tensors:
        raise ValueError(f"Model `{what}` is empty: pass at least one KerasTensor.")
    return list(tensors)


def _is_input_tensor(t) -> bool:
    return isinstance(t.layer, InputLayer) and t.node.is_input


def _topological_nodes(inputs, outputs, model_name) -> list:
    """Nodes between `inputs` and `outputs`, each after the nodes it depends on."""
    input_ids = {id(t) for t in inputs}
    order, done = [], set()
    names = [t.layer.name for t in inputs]

    def node_of(t, consumer):
        node = t.node
        if node.is_input:
            raise ValueError(
                f"Graph disconnected in model {model_name!r}: {consumer} needs the input "
                f"{t.layer.name!r} (shape {shape_str(t.shape)}), which is not one of the "
                f"model's inputs {names}. Add it to `inputs`.")
        return node

    stack = []
    for t in reversed(outputs):
        if id(t) not in input_ids:
            stack.append((node_of(t, f"output {t.layer.name!r}"), False))
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        for t in reversed(node.input_tensors):
            if id(t) not in input_ids:
                parent = node_of(t, f"layer {node.layer.name!r}")
                if id(parent) not in done:
                    stack.append((parent, False))
    return order


def _keras_layer_order(sources, inputs, outputs) -> list:
    """Layers in Keras 3 order (`map_graph`): by depth from the outputs, deepest first;
    ties by first visit in a depth-first walk from the outputs. Same order, same
    `get_weights()` list as Keras."""
    replaced = {id(s): t for s, t in zip(sources, inputs)}
    visit_index, finished, post = {}, set(), []
    for out in outputs:
        stack = [(replaced.get(id(out), out), False)]
        while stack:
            t, closing = stack.pop()
            node = t.node
            if closing:
                if id(node) not in finished:
                    finished.add(id(node))
                    post.append(node)
                continue
            if id(node) in finished:
                continue
            visit_index.setdefault(id(node.layer), len(visit_index))
            stack.append((t, True))
            if not node.is_input:
                for child in reversed(node.input_tensors):
                    stack.append((replaced.get(id(child), child), False))
    node_depth, layer_depth, layers = {}, {}, {}
    for node in reversed(post):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)], node_depth[id(node)] = depth, depth
        layers[id(node.layer)] = node.layer
        for child in ([] if node.is_input else node.input_tensors):
            parent = replaced.get(id(child), child).node
            node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    for t in inputs:  # an input that no output uses
        if id(t.layer) not in layer_depth:
            layer_depth[id(t.layer)], visit_index[id(t.layer)] = 0, -1
            layers[id(t.layer)] = t.layer
    return sorted(layers.values(),
                  key=lambda layer: (-layer_depth[id(layer)], visit_index[id(layer)]))


def _plan_node(node):
    """(layer, args, call kwargs without training, fixed training or None, outputs)."""
    kwargs = {k: v for k, v in node.call_kwargs.items() if k != "training"}
    return node.layer, node.args, kwargs, node.call_kwargs.get("training"), node.outputs


def _fill(structure, values):
    if isinstance(structure, KerasTensor):
        return values[id(structure)]
    if isinstance(structure, dict):
        return {k: _fill(v, values) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [_fill(v, values) for v in structure]
    return structure


def _map_structure(structure, fn):
    if isinstance(structure, KerasTensor):
        return fn(structure)
    if isinstance(structure, dict):
        return {k: _map_structure(v, fn) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [_map_structure(v, fn) for v in structure]
    return structure


def _as_given(structure):
    return list(structure) if isinstance(structure, tuple) else structure


def _restructure(structure, flat_keys, flat_values):
    """Rebuild `structure` (KerasTensor / list / tuple / dict) with values in place of keys."""
    lookup = {id(k): v for k, v in zip(flat_keys, flat_values)}
    return _map_structure(_as_given(structure), lambda kt: lookup[id(kt)])
