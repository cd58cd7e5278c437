"""What every meta-RL learner shares as a Keras model.

RL learners train on datasets of task batches and seeds (their data is already random),
log running means of their own diagnostics rather than compiled metrics, count the
training iterations and environment steps they played (saved with their weights, so a resumed
run knows where its task stream stands), and default to no XLA (their rollouts are while loops over
time, which XLA:CPU runs slowly).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras


class RLLearner(keras.Model):
    """A `keras.Model` base for meta-RL learners (`RL2`, `MAMLRL`).

    Subclasses call ``super().__init__(log_names, name=...)``, update
    ``self._trackers[name]`` in ``train_step`` and count it in `meta_iterations` (and the
    environment steps in `env_steps`); ``metrics`` lists those trackers, so Keras resets them
    every epoch and logs them by name.

    Args:
        log_names: names of the per-step diagnostics the learner logs.
        name: model name.
    """

    def __init__(self, log_names: Sequence[str], *, name: str, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.env_steps = self.add_weight(shape=(), dtype="int64", initializer="zeros",
                                         trainable=False, name="env_steps")
        # The optimizer's step counter cannot stand in: TRPO steps do not use the optimizer.
        self.meta_iterations = self.add_weight(shape=(), dtype="int64", initializer="zeros",
                                               trainable=False, name="meta_iterations")
        self._trackers = {n: keras.metrics.Mean(name=n) for n in log_names}

    def compile(self, optimizer: Any = "adam", *, jit_compile: bool | str = False,
                **kwargs) -> None:
        """As `keras.Model.compile`, with XLA off by default.

        On CPU, XLA made the in-graph rollouts' while loops about 10 times slower here
        (1.0 s instead of 0.1 s per RL^2 PPO iteration on 2 cores); pass
        ``jit_compile=True`` or ``"auto"`` to measure it on an accelerator.

        Raises:
            NotImplementedError: under a `tf.distribute` strategy with several replicas.
            ValueError: for an optimizer with loss scaling (mixed precision).
        """
        replicas = self.distribute_strategy.num_replicas_in_sync
        if replicas > 1:
            # Advantage normalisation, minibatch shuffles and TRPO's conjugate gradient work on
            # the whole batch of trials; split over replicas they would silently change.
            raise NotImplementedError(
                f"{type(self).__name__} trains on one device; it was built under a "
                f"tf.distribute strategy with {replicas} replicas. Build it outside "
                "`strategy.scope()` (the supervised learners support MirroredStrategy).")
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        if (isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
                or self.optimizer.loss_scale_factor is not None):
            # Gradient clipping and TRPO's step act on raw gradients; a loss scale would
            # silently change both.
            raise ValueError(
                f"{type(self).__name__} trains in float32 without loss scaling; got the "
                f"optimizer {type(self.optimizer).__name__} (loss_scale_factor="
                f"{self.optimizer.loss_scale_factor}). Build and compile it under the "
                "'float32' dtype policy (`keras.config.set_dtype_policy('float32')`).")

    def fit(self, *args, shuffle: bool = False, **kwargs):
        """As `keras.Model.fit`; task datasets are already random, so no shuffling."""
        return super().fit(*args, shuffle=shuffle, **kwargs)

    @property
    def metrics(self) -> list:
        return list(self._trackers.values())
