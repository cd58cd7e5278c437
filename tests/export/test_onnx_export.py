"""ONNX export: predict and adapt graphs match TensorFlow in onnxruntime, and really adapt."""

import json

import keras
import numpy as np
import onnxruntime as ort
import pytest

import export
from export.parity import relative_error
from keras_meta.learners import ANIL, MAML, MetaSGD, ProtoNet, RidgeHead
from keras_meta.models import conv4, mlp
from keras_meta.rl.learners import RL2Policy, distributions
from keras_meta.tasks import EpisodeSpec, Omniglot, Sinusoid

SINE = EpisodeSpec((1,), support_size=5, query_size=10)
TOL = 1e-4


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(path, **inputs):
    s = session(path)
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(names, inputs)))


@pytest.fixture(scope="module")
def omniglot_episode():
    tasks = Omniglot(ways=5, shots=1, queries=3)
    ep = tasks.episodes("test", 1, seed=11)
    return tasks.spec, (ep.support_x[0], ep.support_y[0], ep.query_x[0]), ep


@pytest.mark.parametrize("cls", [MAML, MetaSGD, ANIL])
def test_sinusoid_predict_and_adapt_graphs_match_tensorflow(tmp_path, cls):
    learner = cls(mlp((1,), (40, 40), 1), loss="mse", eval_inner_steps=5)
    learner.compile(keras.optimizers.Adam(1e-3))
    ep = Sinusoid(shots=5, queries=10).episodes("test", 1, seed=5)
    sx, sy, qx = ep.support_x[0], ep.support_y[0], ep.query_x[0]
    result = export.export_learner(learner, tmp_path, "sine", spec=SINE, formats="onnx",
                                   examples=(sx, sy, qx))
    onnx_dir = result.path / "onnx"
    adapted = run(onnx_dir / "adapt.onnx", support_x=sx, support_y=sy, query_x=qx)
    expected = learner.adapt(sx, sy, steps=5)(qx).numpy()
    assert relative_error(adapted["predictions"], expected) <= TOL
    before = run(onnx_dir / "serving_default.onnx", x=qx)["predictions"]
    assert relative_error(before, learner.model(qx).numpy()) <= TOL
    # The adapt graph adapts: its answer moves far more than the tolerance.
    assert np.abs(adapted["predictions"] - before).max() > 1e3 * TOL * np.abs(before).max()
    # ... and it fits the task better than the unadapted model.
    qy = ep.query_y[0]
    assert np.mean((adapted["predictions"] - qy) ** 2) < np.mean((before - qy) ** 2)


def test_omniglot_maml_adapt_graph_matches_tensorflow_on_real_episodes(tmp_path,
                                                                      omniglot_episode):
    spec, examples, ep = omniglot_episode
    learner = MAML(conv4(ways=5, filters=16), update_rule=0.4, eval_inner_steps=2,
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    result = export.export_learner(learner, tmp_path, "maml", spec=spec,
                                   formats="savedmodel,onnx", examples=examples)
    assert result.parity.worst <= TOL  # predict and adapt graphs, on the real episode
    sx, sy, qx = examples
    logits = run(result.path / "onnx" / "adapt.onnx", support_x=sx, support_y=sy,
                 query_x=qx)["logits"]
    tf_logits = learner(ep.inputs(), training=False)[0].numpy()
    assert relative_error(logits, tf_logits) <= TOL
    unadapted = learner(ep.inputs(), training=False, steps=0)[0].numpy()
    assert np.abs(tf_logits - unadapted).max() > 1e3 * TOL * np.abs(tf_logits).max()
    # The declared static shapes are what the ONNX adapt graph takes.
    table = json.loads((result.path / "onnx" / "signatures.json").read_text())
    adapt = table["signatures"]["adapt"]
    assert adapt["inputs"]["support_x"]["shape"] == [5, 28, 28, 1]
    assert adapt["inputs"]["support_y"]["dtype"] == "DT_INT32"
    assert adapt["outputs"]["logits"]["shape"][-1] == 5
    assert table["signatures"]["serving_default"]["inputs"]["x"]["shape"] == [-1, 28, 28, 1]


@pytest.mark.parametrize("cls", [ProtoNet, RidgeHead])
def test_metric_learner_graphs_match_tensorflow(tmp_path, omniglot_episode, cls):
    spec, examples, ep = omniglot_episode
    learner = cls(conv4(ways=0, filters=16))
    learner.compile("adam")
    result = export.export_learner(learner, tmp_path, "m", spec=spec, formats="onnx",
                                   examples=examples)
    sx, sy, qx = examples
    logits = run(result.path / "onnx" / "adapt.onnx", support_x=sx, support_y=sy,
                 query_x=qx)["logits"]
    assert relative_error(logits, learner(ep.inputs(), training=False)[0].numpy()) <= TOL
    embedding = run(result.path / "onnx" / "embed.onnx", x=qx)["embedding"]
    assert relative_error(embedding, learner.embed(qx, False)[0].numpy()) <= TOL


def test_int8_variants_are_smaller_and_close(tmp_path, omniglot_episode):
    spec, examples, ep = omniglot_episode
    learner = ProtoNet(conv4(ways=0, filters=32))
    learner.compile("adam")
    calibration = list(Omniglot(ways=5, shots=1, queries=3).episodes("train", 4,
                                                                       seed=1).query_x)
    result = export.export_learner(learner, tmp_path, "q", spec=spec, formats="onnx",
                                   examples=examples, quantization=("dynamic", "static"),
                                   calibration=calibration)
    for mode in ("dynamic", "static"):
        info = result.quantized[f"embed.int8-{mode}.onnx"]
        assert info["size_ratio"] < 0.5
        assert info["relative_error"] < 0.1
        out = run(result.path / "onnx" / f"embed.int8-{mode}.onnx", x=examples[2])
        assert out["embedding"].shape == (len(examples[2]), 32)
    with pytest.raises(ValueError, match="calibration"):
        export.export_learner(learner, tmp_path, "q2", spec=spec, formats="onnx",
                              quantization=("static",))


def test_rl2_policy_step_matches_in_onnx(tmp_path):
    policy = RL2Policy(1, 5, distributions.Categorical(5), hidden_units=16)
    result = export.export_policy(policy, tmp_path, "rl2", formats="savedmodel,onnx")
    assert result.parity.errors["onnx/serving_default/next_state"] <= TOL
    rng = np.random.default_rng(0)
    inputs = {"observation": np.zeros((4, 1), np.float32),
              "prev_action": np.eye(5, dtype=np.float32)[[0, 1, 2, 3]],
              "prev_reward": rng.standard_normal((4, 1)).astype(np.float32),
              "done": np.zeros((4, 1), np.float32),
              "state": rng.standard_normal((4, 16)).astype(np.float32)}
    out = run(result.path / "onnx" / "serving_default.onnx", **inputs)
    logits, state = policy.step(*(inputs[k] for k in ("observation", "prev_action",
                                                      "prev_reward", "done", "state")))
    assert relative_error(out["logits"], logits.numpy()) <= TOL
    assert relative_error(out["next_state"], state.numpy()) <= TOL


def test_unsupported_layer_fails_at_export_naming_op_and_layer(tmp_path):
    import keras

    net = keras.Sequential([keras.Input((8, 8, 2)),
                            keras.layers.DepthwiseConv2D(3, name="depthwise"),
                            keras.layers.Flatten(), keras.layers.Dense(3)])
    learner = MAML(net, update_rule=0.1,
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    spec = EpisodeSpec((8, 8, 2), support_size=3, query_size=3, num_classes=3)
    with pytest.raises(ValueError, match="DepthwiseConv2dNativeBackpropFilter.*depthwise"):
        export.export_learner(learner, tmp_path, "dw", spec=spec, formats="savedmodel,onnx")
    assert [p.name for p in (tmp_path / "dw").iterdir()] == []
