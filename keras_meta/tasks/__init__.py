"""Tasks and episodes: what a meta-learner adapts to."""

from keras_meta.tasks.distribution import SPLITS, TaskDistribution
from keras_meta.tasks.episode import Episode, EpisodeSpec, episode_dataset, validate_episode
from keras_meta.tasks.image_classes import ImageClassTasks
from keras_meta.tasks.image_folder import ImageFolder
from keras_meta.tasks.omniglot import Omniglot
from keras_meta.tasks.sinusoid import Sinusoid

__all__ = ["SPLITS", "Episode", "EpisodeSpec", "ImageClassTasks", "ImageFolder", "Omniglot",
           "Sinusoid", "TaskDistribution", "episode_dataset", "validate_episode"]
