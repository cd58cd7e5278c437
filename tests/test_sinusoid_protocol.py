"""A short version of the MAML paper's sinusoid experiment (the full one is a benchmark)."""

import keras

import keras_meta
from keras_meta import models


def meta_train(inner_steps, meta_steps=3000):
    keras.utils.set_random_seed(0)
    learner = keras_meta.learners.MAML(models.mlp((1,), (40, 40), 1), loss="mse",
                                       update_rule=0.01, inner_steps=inner_steps,
                                       eval_inner_steps=10)
    learner.compile(keras.optimizers.Adam(1e-3, epsilon=1e-7), jit_compile=True,
                    steps_per_execution=100)
    learner.fit(keras_meta.tasks.Sinusoid(shots=10).dataset("train", 25),
                steps_per_epoch=meta_steps, verbose=0)
    return learner


def test_maml_adapts_far_better_than_a_model_pretrained_on_all_tasks():
    test_tasks = keras_meta.tasks.Sinusoid(shots=5)
    maml = keras_meta.evaluate(meta_train(inner_steps=1), test_tasks, steps=[0, 1, 10],
                               verbose=0)
    pretrained = keras_meta.evaluate(meta_train(inner_steps=0), test_tasks, steps=[0, 1, 10],
                                     verbose=0)
    assert maml.protocol["episodes"] == 600 and maml.protocol["split"] == "test"
    before, after = maml.mean("mse", 0), maml.mean("mse", 10)
    # Adaptation helps, by far more than the confidence intervals.
    assert after + maml.ci95("mse", 10) < 0.5 * (before - maml.ci95("mse", 0))
    assert maml.mean("mse", 1) < before
    # ...and MAML's initialisation adapts much better than pretraining on all tasks.
    assert after + maml.ci95("mse", 10) < pretrained.mean("mse", 10) - pretrained.ci95("mse", 10)
    assert pretrained.mean("mse", 10) > 1.5
