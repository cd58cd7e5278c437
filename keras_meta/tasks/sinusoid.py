"""Sinusoid regression, exactly as in the MAML paper (Finn et al., 2017, section 5.1)."""

from __future__ import annotations

import math

import tensorflow as tf

from keras_meta.tasks.distribution import TaskDistribution
from keras_meta.tasks.episode import Episode, EpisodeSpec


class Sinusoid(TaskDistribution):
    """Tasks ``y = A sin(x - phase)``, ``A ~ U[0.1, 5]``, ``phase ~ U[0, pi]``, ``x ~ U[-5, 5]``.

    Each episode has ``shots`` support and ``queries`` query points of the same task (the
    MAML protocol uses ``queries = shots``, K = 5, 10 or 20).

    Example:

    >>> tasks = Sinusoid(shots=5)
    >>> batch = tasks.episodes("train", 2)
    >>> batch.support_x.shape, batch.query_y.shape
    ((2, 5, 1), (2, 5, 1))

    References:
        Finn, Abbeel, Levine. Model-Agnostic Meta-Learning for Fast Adaptation of Deep
        Networks. ICML 2017.
    """

    name = "sinusoid"

    def __init__(
        self,
        shots: int = 10,
        queries: int | None = None,
        amplitude_range: tuple[float, float] = (0.1, 5.0),
        phase_range: tuple[float, float] = (0.0, math.pi),
        x_range: tuple[float, float] = (-5.0, 5.0),
    ):
        queries = shots if queries is None else queries
        for name, (lo, hi) in (("amplitude_range", amplitude_range), ("phase_range", phase_range),
                               ("x_range", x_range)):
            if not lo < hi:
                raise ValueError(f"`{name}` must be (low, high) with low < high. "
                                 f"Received: {name}={(lo, hi)}")
        self.shots, self.queries = shots, queries
        self.amplitude_range = tuple(map(float, amplitude_range))
        self.phase_range = tuple(map(float, phase_range))
        self.x_range = tuple(map(float, x_range))
        self.spec = EpisodeSpec(x_shape=(1,), support_size=shots, query_size=queries, y_shape=(1,))

    def sample_episode(self, split: str, seed: tf.Tensor) -> Episode:
        return self._sample(tf.reshape(seed, [1, 2]), tasks=None)

    def sample_meta_batch(self, split: str, seeds: tf.Tensor) -> Episode:
        # Vectorised: one draw for the whole meta-batch, keyed by its first episode's seed.
        return self._sample(seeds[:1], tasks=tf.shape(seeds)[0])

    def _sample(self, seed, tasks):
        seed = tf.reshape(seed, [2])
        n = 1 if tasks is None else tasks
        points = self.shots + self.queries
        s_amp, s_phase, s_x = tf.unstack(
            tf.random.experimental.stateless_split(seed, num=3), axis=0)
        amp = tf.random.stateless_uniform([n, 1, 1], s_amp, *self.amplitude_range)
        phase = tf.random.stateless_uniform([n, 1, 1], s_phase, *self.phase_range)
        x = tf.random.stateless_uniform([n, points, 1], s_x, *self.x_range)
        y = amp * tf.sin(x - phase)
        ep = Episode(x[:, : self.shots], y[:, : self.shots], x[:, self.shots :], y[:, self.shots :])
        if tasks is None:
            ep = Episode(*(t[0] for t in ep))
        return ep

    def get_config(self) -> dict:
        return {"shots": self.shots, "queries": self.queries,
                "amplitude_range": list(self.amplitude_range),
                "phase_range": list(self.phase_range), "x_range": list(self.x_range)}
