"""SavedModel export: TF Serving's layout, signatures, warm-up file, checks and failures."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

import export
from export import layout
from keras_meta.learners import ANIL, MAML, MetaSGD, ProtoNet, RidgeHead
from keras_meta.models import conv4, mlp
from keras_meta.tasks import EpisodeSpec, Omniglot, Sinusoid

SINE = EpisodeSpec((1,), support_size=5, query_size=10)
FIVE_WAY = EpisodeSpec((28, 28, 1), support_size=5, query_size=15, num_classes=5)


def sinusoid_maml(cls=MAML, **kwargs):
    learner = cls(mlp((1,), (32, 32), 1), loss="mse", eval_inner_steps=3, **kwargs)
    learner.compile(keras.optimizers.Adam(1e-3))
    return learner


def sine_episode(seed=0):
    ep = Sinusoid(shots=5, queries=10).episodes("test", 1, seed=seed)
    return ep.support_x[0], ep.support_y[0], ep.query_x[0], ep.query_y[0]


def load_signatures(path):
    return tf.saved_model.load(str(path)).signatures


def run_session_loader(path, signature, inputs):
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.load(session, ["serve"], str(path))
        sig = meta.signature_def[signature]
        return session.run({k: t.name for k, t in sig.outputs.items()},
                           {sig.inputs[k].name: v for k, v in inputs.items()})


def test_maml_export_serves_predict_and_adapt_like_the_learner(tmp_path):
    learner = sinusoid_maml()
    sx, sy, qx, _ = sine_episode()
    result = export.export_learner(learner, tmp_path, "sine", spec=SINE, formats="savedmodel",
                                   examples=(sx, sy, qx))
    assert result.version == 1 and result.path == tmp_path / "sine" / "1"
    assert (result.path / "saved_model.pb").exists()
    assert result.parity.worst <= 1e-4
    assert {k.split("/")[0] for k in result.parity.errors} == {"savedmodel(tf2)",
                                                                 "savedmodel(session)"}

    signatures = load_signatures(result.path)
    assert set(signatures) == {"serving_default", "adapt"}
    predicted = signatures["serving_default"](x=tf.constant(qx))["predictions"].numpy()
    np.testing.assert_allclose(predicted, learner.model(qx).numpy(), rtol=1e-5, atol=1e-6)

    # A support set and queries of sizes other than the declared ones work too (dynamic).
    adapted = signatures["adapt"](support_x=tf.constant(sx[:4]), support_y=tf.constant(sy[:4]),
                                  query_x=tf.constant(qx[:7]))["predictions"].numpy()
    expected = learner.adapt(sx[:4], sy[:4], steps=3)(qx[:7]).numpy()
    np.testing.assert_allclose(adapted, expected, rtol=1e-4, atol=1e-5)
    # Adaptation really happens inside the graph.
    assert np.max(np.abs(adapted - predicted[:7])) > 1e-2

    # TF Serving's own loader answers the same.
    session = run_session_loader(result.path, "adapt",
                                 {"support_x": sx, "support_y": sy, "query_x": qx})
    np.testing.assert_allclose(session["predictions"], learner.adapt(sx, sy)(qx).numpy(),
                               rtol=1e-4, atol=1e-5)


def test_protonet_exports_adapt_and_embed_and_an_enrolled_classifier(tmp_path):
    tasks = Omniglot(ways=5, shots=1, queries=15)
    ep = tasks.episodes("test", 1, seed=3)
    sx, sy, qx = ep.support_x[0], ep.support_y[0], ep.query_x[0]
    learner = ProtoNet(conv4(ways=0, filters=8))
    learner.compile("adam")
    result = export.export_learner(learner, tmp_path, "proto", spec=tasks.spec,
                                   formats=["savedmodel"], examples=(sx, sy, qx),
                                   support=(sx, sy))
    signatures = load_signatures(result.path)
    assert set(signatures) == {"serving_default", "adapt", "embed"}
    logits = learner(ep.inputs(), training=False)[0].numpy()
    out = signatures["adapt"](support_x=tf.constant(sx), support_y=tf.constant(sy),
                              query_x=tf.constant(qx))
    np.testing.assert_allclose(out["logits"].numpy(), logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, rtol=1e-5)
    # serving_default classifies among the enrolled support classes, as the adapt signature.
    enrolled = signatures["serving_default"](x=tf.constant(qx))["logits"].numpy()
    np.testing.assert_allclose(enrolled, logits, rtol=1e-4, atol=1e-4)
    embedding = signatures["embed"](x=tf.constant(qx))["embedding"].numpy()
    assert embedding.shape == (len(qx), learner.embed(qx, False)[0].shape[-1])
    info = json.loads((result.path / "assets.extra" / "keras_meta.json").read_text())
    assert info["learner"] == "ProtoNet" and info["ways"] == 5 and info["bn_policy"] == "running"
    assert info["serving_default"] == "adapted to the given support set"


@pytest.mark.parametrize("cls", [MetaSGD, ANIL])
def test_learners_with_own_meta_parameters_export(tmp_path, cls):
    learner = sinusoid_maml(cls)
    sx, sy, qx, _ = sine_episode(1)
    result = export.export_learner(learner, tmp_path, "m", spec=SINE, formats="savedmodel",
                                   examples=(sx, sy, qx))
    out = load_signatures(result.path)["adapt"](
        support_x=tf.constant(sx), support_y=tf.constant(sy), query_x=tf.constant(qx))
    np.testing.assert_allclose(out["predictions"].numpy(), learner.adapt(sx, sy)(qx).numpy(),
                               rtol=1e-4, atol=1e-5)


def test_ridge_head_adapt_signature_matches_the_learner(tmp_path):
    tasks = Omniglot(ways=5, shots=1, queries=15)
    ep = tasks.episodes("test", 1, seed=4)
    learner = RidgeHead(conv4(ways=0, filters=8))
    learner.compile("adam")
    result = export.export_learner(learner, tmp_path, "ridge", spec=tasks.spec,
                                   formats="savedmodel")
    out = load_signatures(result.path)["adapt"](
        support_x=tf.constant(ep.support_x[0]), support_y=tf.constant(ep.support_y[0]),
        query_x=tf.constant(ep.query_x[0]))
    np.testing.assert_allclose(out["logits"].numpy(),
                               learner(ep.inputs(), training=False)[0].numpy(),
                               rtol=1e-4, atol=1e-4)


def test_warmup_file_holds_one_request_per_signature(tmp_path):
    result = export.export_learner(sinusoid_maml(), tmp_path, "sine", spec=SINE,
                                   formats="savedmodel")
    records = list(tf.data.TFRecordDataset(
        str(result.path / "assets.extra" / "tf_serving_warmup_requests")).as_numpy_iterator())
    requests = [prediction_log_pb2.PredictionLog.FromString(r).predict_log.request
                for r in records]
    assert [r.model_spec.signature_name for r in requests] == ["serving_default", "adapt"]
    assert all(r.model_spec.name == "sine" for r in requests)
    assert set(requests[1].inputs) == {"support_x", "support_y", "query_x"}
    assert tf.make_ndarray(requests[1].inputs["support_x"]).shape == (5, 1)


def test_versions_are_never_overwritten_unless_asked(tmp_path):
    learner = sinusoid_maml()
    first = export.export_learner(learner, tmp_path, "sine", spec=SINE, formats="savedmodel")
    second = export.export_learner(learner, tmp_path, "sine", spec=SINE, formats="savedmodel")
    assert (first.version, second.version) == (1, 2)
    stamp = (first.path / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="--overwrite"):
        export.export_learner(learner, tmp_path, "sine", spec=SINE, formats="savedmodel",
                              version=1)
    assert (first.path / "saved_model.pb").stat().st_mtime_ns == stamp
    again = export.export_learner(learner, tmp_path, "sine", spec=SINE, formats="savedmodel",
                                  version=1, overwrite=True)
    assert again.path == first.path and (again.path / "saved_model.pb").exists()
    assert layout.versions(tmp_path / "sine") == [1, 2]
    assert [p.name for p in (tmp_path / "sine").iterdir() if p.name.startswith(".")] == []


def test_a_failed_check_publishes_nothing(tmp_path, monkeypatch):
    import export.savedmodel

    def broken(*args, **kwargs):
        raise export.ExportCheckError("simulated: the session loader cannot load it")

    monkeypatch.setattr(export.savedmodel, "check_savedmodel", broken)
    with pytest.raises(export.ExportCheckError, match="simulated"):
        export.export_learner(sinusoid_maml(), tmp_path, "sine", spec=SINE,
                              formats="savedmodel")
    assert list((tmp_path / "sine").iterdir()) == []
    assert not (tmp_path / "models.config").exists()


def test_models_config_lists_models_and_keeps_their_settings(tmp_path):
    learner = sinusoid_maml()
    export.export_learner(learner, tmp_path, "a", spec=SINE, formats="savedmodel")
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((tmp_path / "models.config").read_text(), config)
    entry = config.model_config_list.config[0]
    entry.version_labels["stable"] = 1
    (tmp_path / "models.config").write_text(text_format.MessageToString(config))
    export.export_learner(learner, tmp_path, "b", spec=SINE, formats="savedmodel")
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((tmp_path / "models.config").read_text(), config)
    entries = {c.name: c for c in config.model_config_list.config}
    assert set(entries) == {"a", "b"}
    assert entries["a"].version_labels["stable"] == 1
    assert entries["b"].base_path == str((tmp_path / "b").resolve())
    assert entries["b"].model_platform == "tensorflow"


def test_litert_predict_graph_matches(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    learner = sinusoid_maml()
    sx, sy, qx, _ = sine_episode(2)
    result = export.export_learner(learner, tmp_path, "sine", spec=SINE,
                                   formats="savedmodel,tflite", examples=(sx, sy, qx))
    assert (result.path / "litert" / "serving_default.tflite").exists()
    assert not (result.path / "litert" / "adapt.tflite").exists()
    runner = Interpreter(model_path=str(result.path / "litert" / "serving_default.tflite")
                         ).get_signature_runner("serving_default")
    out = runner(x=qx.astype(np.float32))["predictions"]
    np.testing.assert_allclose(out, learner.model(qx).numpy(), rtol=1e-4, atol=1e-5)
    assert result.parity.errors["litert/serving_default/predictions"] <= 1e-4


def test_adapted_keras_model_exports_with_serving_default(tmp_path):
    learner = sinusoid_maml()
    sx, sy, qx, _ = sine_episode(3)
    adapted = learner.adapt(sx, sy)
    result = export.export_model(adapted, tmp_path, "adapted", task="regression",
                                 formats="savedmodel", examples=qx)
    out = load_signatures(result.path)["serving_default"](x=tf.constant(qx))["predictions"]
    np.testing.assert_allclose(out.numpy(), adapted(qx).numpy(), rtol=1e-5, atol=1e-6)


def test_bad_arguments_are_named(tmp_path):
    learner = sinusoid_maml()
    with pytest.raises(ValueError, match="Unknown export format 'pb'"):
        export.export_learner(learner, tmp_path, "m", spec=SINE, formats="savedmodel,pb")
    with pytest.raises(ValueError, match="`name` must be a model name"):
        export.export_learner(learner, tmp_path, "../m", spec=SINE)
    with pytest.raises(ValueError, match="num_classes"):
        export.export_learner(ProtoNet(conv4(ways=0, filters=4)), tmp_path, "p", spec=SINE)
    with pytest.raises(ValueError, match="EpisodeSpec"):
        export.export_learner(learner, tmp_path, "m", spec=(1, 5, 10))
    with pytest.raises(ValueError, match="`version` must be a positive integer"):
        export.export_learner(learner, tmp_path, "m", spec=SINE, version=0)
    with pytest.raises(ValueError, match="support_x"):
        export.export_learner(learner, tmp_path, "m", spec=SINE,
                              examples=(np.zeros((5, 2)), np.zeros((5, 1)), np.zeros((10, 1))))
    assert not (tmp_path / "m").exists() or layout.versions(tmp_path / "m") == []


def test_diverging_inner_loop_is_refused(tmp_path):
    linear = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    learner = MAML(linear, update_rule=1e10, loss="mse", eval_inner_steps=10)
    with pytest.raises(ValueError, match="diverges"):
        export.export_learner(learner, tmp_path, "m", spec=SINE, formats="savedmodel")
