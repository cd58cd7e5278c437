"""Meta-learners: Keras models trained with `fit` that adapt to new tasks."""

from keras_meta.learners.anil import ANIL
from keras_meta.learners.base import MetaLearner
from keras_meta.learners.maml import MAML, FirstOrderMAML
from keras_meta.learners.meta_sgd import MetaSGD
from keras_meta.learners.metric import MetricLearner
from keras_meta.learners.protonet import ProtoNet
from keras_meta.learners.r2d2 import RidgeHead
from keras_meta.learners.reptile import Reptile

__all__ = ["ANIL", "FirstOrderMAML", "MAML", "MetaLearner", "MetaSGD", "MetricLearner", "ProtoNet",
           "Reptile", "RidgeHead"]
