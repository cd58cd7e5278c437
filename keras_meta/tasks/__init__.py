"""Tasks and episodes: what a meta-learner adapts to."""

from keras_meta.tasks.distribution import SPLITS, TaskDistribution
from keras_meta.tasks.episode import Episode, EpisodeSpec, validate_episode
from keras_meta.tasks.sinusoid import Sinusoid

__all__ = ["SPLITS", "Episode", "EpisodeSpec", "Sinusoid", "TaskDistribution",
           "validate_episode"]
