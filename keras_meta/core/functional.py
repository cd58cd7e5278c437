"""Functional fast weights: a Keras model evaluated on explicit weight values."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf


class FunctionalModel:
    """Runs ``model`` on given weight values through `keras.Model.stateless_call`.

    Works for any built Keras model (Sequential, functional or subclassed). The trainable
    weights are split into the ones the inner loop adapts (``adapt_layers``, default all) and
    the ones it holds fixed; all of them remain meta-parameters.

    Args:
        model: a built Keras model.
        adapt_layers: layers (objects or names) whose trainable weights the inner loop adapts;
            ``None`` adapts every trainable weight.
    """

    def __init__(self, model: keras.Model, adapt_layers: Sequence | None = None):
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"`model` must be a keras.Model. Received: {type(model).__name__}"
            )
        if not model.built or not model.trainable_variables:
            raise ValueError(
                f"`model` ({model.name}) must be built and have trainable weights. Build it by "
                "giving it a `keras.Input` or by calling it once on a batch of data."
            )
        self.model = model
        variables = model.trainable_variables
        if adapt_layers is None:
            self.adapt_index = list(range(len(variables)))
        else:
            self.adapt_index = _indices_of_layers(model, adapt_layers)

    @property
    def adapted_variables(self) -> list:
        variables = self.model.trainable_variables
        return [variables[i] for i in self.adapt_index]

    def trainable_values(self) -> list[tf.Tensor]:
        return [tf.convert_to_tensor(v) for v in self.model.trainable_variables]

    def non_trainable_values(self) -> list[tf.Tensor]:
        return [tf.convert_to_tensor(v) for v in self.model.non_trainable_variables]

    def select(self, values: Sequence) -> list:
        """The adapted subset of a full list of trainable values."""
        return [values[i] for i in self.adapt_index]

    def merge(self, values: Sequence, adapted: Sequence) -> list:
        """A full list of trainable values with the adapted subset replaced."""
        values = list(values)
        for i, value in zip(self.adapt_index, adapted):
            values[i] = value
        return values

    def __call__(self, trainable, non_trainable, x, training: bool):
        """``(outputs, new_non_trainable, regularization_loss)``."""
        kwargs = {"training": training} if self.model._call_has_training_arg else {}
        outputs, non_trainable, losses = self.model.stateless_call(
            list(trainable), list(non_trainable), x, return_losses=True, **kwargs
        )
        regularization = tf.add_n(losses) if losses else 0.0
        return outputs, non_trainable, regularization


def _indices_of_layers(model, layers) -> list[int]:
    by_name = {layer.name: layer for layer in model._flatten_layers(include_self=False)}
    wanted = []
    for layer in layers:
        if isinstance(layer, str):
            if layer not in by_name:
                raise ValueError(
                    f"`adapt_layers` names a layer {layer!r} that is not in model "
                    f"{model.name!r}. Its layers are: {sorted(by_name)}"
                )
            layer = by_name[layer]
        wanted.extend(id(v) for v in layer.trainable_variables)
    positions = {id(v): i for i, v in enumerate(model.trainable_variables)}
    missing = [w for w in wanted if w not in positions]
    if missing or not wanted:
        raise ValueError("`adapt_layers` must name layers of the model that have trainable "
                         f"weights. Received: {list(layers)!r}")
    return sorted(positions[w] for w in wanted)


def last_layer_with_weights(model: keras.Model):
    """The last layer (in definition order) that has trainable weights: the usual head."""
    candidates = [
        layer for layer in model._flatten_layers(include_self=False, recursive=True)
        if layer.trainable_variables and not layer._layers
    ]
    if not candidates:
        raise ValueError(f"Model {model.name!r} has no layer with trainable weights.")
    return candidates[-1]
