"""Fixtures of the serving tests: exported models on disk and running servers.

`write_export` is the one place that writes artifacts: it runs the export package
(`export.export_signatures`) over `FewShotNet`'s functions, which are also the in-memory reference
the served outputs are compared with.
"""

from __future__ import annotations

import os
import shutil
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

WAYS, DIM, EMBED = 3, 4, 8
SUPPORT, QUERIES = 6, 4  # the static sizes of the ONNX `adapt` graph
MODEL = "fewshot"


@pytest.fixture(autouse=True)
def _seed():
    """Overrides tests/conftest.py's: these tests keep Keras state for the whole session (the
    reference models) and need no per-test `clear_session` (0.3 s each)."""
    yield


class FewShotNet:
    """A tiny metric learner: an encoder, a linear head, and prototype-based adaptation.

    `serving_default(x)`: logits and probabilities of the head; `embed(x)`: the encoder;
    `adapt(support_x, support_y, query_x)`: logits (negative squared distances to the class
    means of the support embeddings) and probabilities for the queries. Forward ops only, so
    tf2onnx converts every signature.
    """

    def __init__(self, seed: int, x_shape=(DIM,), conv: bool = False):
        keras.utils.set_random_seed(seed)
        self.x_shape = tuple(x_shape)
        inputs = keras.Input(self.x_shape, name="x")
        if conv:  # the Conv-4 embedding of Prototypical Networks (64 channels)
            hidden = inputs
            for _ in range(4):
                hidden = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(hidden)
                hidden = keras.layers.MaxPooling2D()(hidden)
            embedding = keras.layers.Flatten()(hidden)
        else:
            hidden = keras.layers.Dense(16, activation="relu")(inputs)
            embedding = keras.layers.Dense(EMBED)(hidden)
        self.encoder = keras.Model(inputs, embedding)
        self.head = keras.layers.Dense(WAYS)
        self.head.build((None, self.encoder.output.shape[-1]))
        self.model = keras.Sequential([self.encoder, self.head])

    def input_signatures(self, support=None, queries=None):
        """Per signature, the input specs (static S and Q where given, as for ONNX)."""
        x = tf.TensorSpec([None, *self.x_shape], tf.float32, name="x")
        return {
            "serving_default": [x],
            "embed": [x],
            "adapt": [tf.TensorSpec([support, *self.x_shape], tf.float32, name="support_x"),
                      tf.TensorSpec([support], tf.int32, name="support_y"),
                      tf.TensorSpec([queries, *self.x_shape], tf.float32, name="query_x")],
        }

    def serving_default(self, x):
        logits = self.head(self.encoder(x))
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    def embed(self, x):
        return {"embedding": self.encoder(x)}

    def adapt(self, support_x, support_y, query_x):
        one_hot = tf.one_hot(support_y, WAYS, dtype=tf.float32)
        prototypes = tf.matmul(one_hot, self.encoder(support_x), transpose_a=True)
        prototypes /= tf.reduce_sum(one_hot, axis=0)[:, None]
        queries = self.encoder(query_x)
        logits = -tf.reduce_sum((queries[:, None, :] - prototypes[None]) ** 2, axis=-1)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    def reference(self, signature: str, **inputs) -> dict[str, np.ndarray]:
        """The in-memory outputs the served model must reproduce."""
        tensors = {k: tf.constant(v) for k, v in inputs.items()}
        return {k: v.numpy() for k, v in getattr(self, signature)(**tensors).items()}


def example_inputs(seed: int = 0, x_shape=(DIM,)) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)

    def x(n):
        return rng.normal(size=(n, *x_shape)).astype(np.float32)

    return {
        "serving_default": {"x": x(5)},
        "embed": {"x": x(5)},
        "adapt": {"support_x": x(SUPPORT),
                  "support_y": np.repeat(np.arange(WAYS, dtype=np.int32), SUPPORT // WAYS),
                  "query_x": x(QUERIES)},
    }


# ============================================================================================
# THE EXPORT WRITER: the export package's general mechanism, over FewShotNet's functions.
# ============================================================================================
def write_export(net: FewShotNet, version_dir: str, *, onnx: bool = True,
                 warmup: bool = True) -> None:
    """Writes one version folder of `net` with `export.export_signatures`.

    SavedModel with `serving_default`, `embed` and `adapt` (dynamic batch, S and Q), ONNX files
    (`adapt` with static S and Q) with `onnx/signatures.json`, warm-up requests and
    `assets.extra/keras_meta.json`, checked against `net` and renamed into place by the export.
    """
    import export
    from export.signatures import Signature

    model_dir, version = os.path.split(os.path.abspath(version_dir))
    base, name = os.path.split(model_dir)
    dynamic, static = net.input_signatures(), net.input_signatures(SUPPORT, QUERIES)
    signatures = [Signature(sig, getattr(net, sig), {s.name: s for s in dynamic[sig]},
                            {s.name: s for s in static[sig]}, classes=WAYS)
                  for sig in dynamic]
    export.export_signatures(signatures, [net.model], base, name, version=int(version),
                             formats="savedmodel,onnx" if onnx else "savedmodel",
                             models_config=False, metadata={"learner": "FewShotNet"})
    if not warmup:
        os.remove(os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests"))


def write_models_config(base: str) -> str:
    """`models.config`: `fewshot` with every version and labels, `latest` with the default
    policy (the newest version) over the same folder."""
    path = os.path.join(base, "models.config")
    with open(path, "w") as f:
        f.write(f"""model_config_list {{
  config {{
    name: "{MODEL}"
    base_path: "{MODEL}"
    model_platform: "tensorflow"
    model_version_policy {{ all {{}} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}
  config {{
    name: "latest"
    base_path: "{MODEL}"
    model_platform: "tensorflow"
  }}
}}
""")
    return path
# ============================================================================================


class Exports:
    """The session's exported versions: `<root>/<MODEL>/<version>/` and their references."""

    def __init__(self, root: str, nets: dict[int, FewShotNet]):
        self.root = root
        self.nets = nets

    def version_dir(self, version: int) -> str:
        return os.path.join(self.root, MODEL, str(version))

    def copy_version(self, version: int, dest_base: str, as_version: int | None = None) -> str:
        """Copies a version folder into another base path, atomically (temp name, rename)."""
        target = os.path.join(dest_base, str(as_version or version))
        tmp = os.path.join(dest_base, f".incomplete-{as_version or version}-copy")
        shutil.copytree(self.version_dir(version), tmp)
        os.rename(tmp, target)
        return target


@pytest.fixture(scope="session")
def exports(tmp_path_factory) -> Exports:
    root = str(tmp_path_factory.mktemp("exports"))
    os.makedirs(os.path.join(root, MODEL))
    nets = {1: FewShotNet(seed=1), 2: FewShotNet(seed=2)}
    for version, net in nets.items():
        write_export(net, os.path.join(root, MODEL, str(version)))
    write_models_config(root)
    return Exports(root, nets)


class RunningServer:
    """A `ModelServer` on loopback with OS-chosen ports, serving in this process."""

    def __init__(self, server):
        self.server = server
        self.rest = f"http://127.0.0.1:{server.rest_port}"
        self.grpc = f"127.0.0.1:{server.grpc_port}"
        self._channel = None

    def stubs(self):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        if self._channel is None:
            self._channel = grpc.insecure_channel(self.grpc)
        return (prediction_service_pb2_grpc.PredictionServiceStub(self._channel),
                model_service_pb2_grpc.ModelServiceStub(self._channel))

    def close(self):
        if self._channel is not None:
            self._channel.close()
        self.server.stop()


def start_server(models, **options) -> RunningServer:
    from serving import ModelServer, ServerOptions

    defaults = {"grpc_port": 0, "rest_port": 0, "poll_seconds": 0.2, "grpc_max_threads": 8,
                "metrics_path": "/monitoring/prometheus/metrics"}
    server = ModelServer(ServerOptions(models=models, **{**defaults, **options}))
    server.start()
    return RunningServer(server)


@pytest.fixture(scope="session")
def tf_server(exports):
    from serving import read_config_file

    running = start_server(read_config_file(os.path.join(exports.root, "models.config")))
    yield running
    running.close()


@pytest.fixture(scope="session")
def onnx_server(exports):
    from serving import read_config_file

    running = start_server(read_config_file(os.path.join(exports.root, "models.config")),
                           backend="onnx")
    yield running
    running.close()


@pytest.fixture(params=["tf", "onnx"])
def server(request):
    return request.getfixturevalue(f"{request.param}_server")


def run_in_threads(fn, count: int):
    errors = []

    def target():
        try:
            fn()
        except Exception as e:  # surfaced by the caller
            errors.append(e)

    threads = [threading.Thread(target=target) for _ in range(count)]
    for t in threads:
        t.start()
    return threads, errors
