"""ONNX conversion of adaptation graphs: each gradient-op handler alone, then real learners.

Every check compares onnxruntime with TensorFlow on the same inputs: the largest absolute
difference divided by the largest absolute TF value must stay within ``RTOL``.
"""

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
from tf2onnx import tf_loader

from export import onnx_ops
from keras_meta.learners import MAML, MetaSGD, ProtoNet, RidgeHead
from keras_meta.models import conv4, mlp

RTOL = 1e-4
REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- helpers
def specs_of(inputs, shapes=None):
    shapes = shapes or {}
    return [tf.TensorSpec(shapes.get(k, v.shape), tf.as_dtype(v.dtype), name=k)
            for k, v in inputs.items()]


def run_onnx(model, inputs):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


def relative_error(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


def frozen_op_types(function, specs):
    concrete = function.get_concrete_function(*specs)
    graph_def = tf_loader.from_function(
        concrete, [t.name for t in concrete.inputs if t.dtype != tf.resource],
        [t.name for t in concrete.outputs])
    return graph_def, {node.op for node in graph_def.node}


def check_op(fn, inputs, op, shapes=None):
    """Convert ``fn`` (positional inputs -> dict), check ``op`` reached the converter, compare."""
    specs = specs_of(inputs, shapes)
    function = tf.function(fn, input_signature=specs, autograph=False)
    assert op in frozen_op_types(function, specs)[1]
    model = onnx_ops.convert_function(function, specs)
    got = run_onnx(model, inputs)
    want = {k: v.numpy() for k, v in function(*inputs.values()).items()}
    assert sorted(got) == sorted(want)
    errors = {k: relative_error(got[k], want[k]) for k in want}
    assert max(errors.values()) <= RTOL, errors
    return errors


def f32(a):
    return np.asarray(a, np.float32)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ----------------------------------------------------------------------------- element-wise
S = (4, 6)
ELEMENTWISE = {
    # op: (fn(a, b), (a, b) from a generator)
    "ReluGrad": (lambda a, b: tf.raw_ops.ReluGrad(gradients=a, features=b),
                 lambda r: (r.standard_normal(S), r.standard_normal(S))),
    "Relu6Grad": (lambda a, b: tf.raw_ops.Relu6Grad(gradients=a, features=b),
                  lambda r: (r.standard_normal(S), r.uniform(-3, 9, S))),
    "LeakyReluGrad": (lambda a, b: tf.raw_ops.LeakyReluGrad(gradients=a, features=b, alpha=0.3),
                      lambda r: (r.standard_normal(S), r.standard_normal(S))),
    "EluGrad": (lambda a, b: tf.raw_ops.EluGrad(gradients=a, outputs=b),
                lambda r: (r.standard_normal(S), np.expm1(np.minimum(r.standard_normal(S), 0))
                           + np.maximum(r.standard_normal(S), 0))),
    "SeluGrad": (lambda a, b: tf.raw_ops.SeluGrad(gradients=a, outputs=b),
                 lambda r: (r.standard_normal(S), r.uniform(-1.7, 3, S))),
    "SoftplusGrad": (lambda a, b: tf.raw_ops.SoftplusGrad(gradients=a, features=b),
                     lambda r: (r.standard_normal(S), 3 * r.standard_normal(S))),
    "SoftsignGrad": (lambda a, b: tf.raw_ops.SoftsignGrad(gradients=a, features=b),
                     lambda r: (r.standard_normal(S), 3 * r.standard_normal(S))),
    "SigmoidGrad": (lambda a, b: tf.raw_ops.SigmoidGrad(y=a, dy=b),
                    lambda r: (sigmoid(3 * r.standard_normal(S)), r.standard_normal(S))),
    "TanhGrad": (lambda a, b: tf.raw_ops.TanhGrad(y=a, dy=b),
                 lambda r: (np.tanh(2 * r.standard_normal(S)), r.standard_normal(S))),
    "RsqrtGrad": (lambda a, b: tf.raw_ops.RsqrtGrad(y=a, dy=b),
                  lambda r: (1 / np.sqrt(r.uniform(0.05, 4, S)), r.standard_normal(S))),
    "SqrtGrad": (lambda a, b: tf.raw_ops.SqrtGrad(y=a, dy=b),
                 lambda r: (np.sqrt(r.uniform(0.05, 4, S)), r.standard_normal(S))),
    "ReciprocalGrad": (lambda a, b: tf.raw_ops.ReciprocalGrad(y=a, dy=b),
                       lambda r: (1 / r.uniform(0.2, 4, S), r.standard_normal(S))),
}


@pytest.mark.parametrize("op", sorted(ELEMENTWISE))
def test_elementwise_gradient_ops_match_tf(op):
    fn, make = ELEMENTWISE[op]
    a, b = make(np.random.default_rng(0))
    check_op(lambda a, b: {"out": fn(a, b)}, {"a": f32(a), "b": f32(b)}, op)


@pytest.mark.parametrize("shape,data_format", [((3, 5), "NHWC"), ((2, 4, 4, 3), "NHWC"),
                                               ((2, 3, 4, 4), "NCHW")])
def test_bias_add_grad_matches_tf(shape, data_format):
    dy = f32(np.random.default_rng(0).standard_normal(shape))
    check_op(lambda dy: {"db": tf.raw_ops.BiasAddGrad(out_backprop=dy, data_format=data_format)},
             {"dy": dy}, "BiasAddGrad")


def test_shape_n_matches_tf():
    # Dynamic dims keep grappler from folding the shapes into constants.
    r = np.random.default_rng(0)
    inputs = {"a": f32(r.standard_normal((3, 4))), "b": f32(r.standard_normal((2, 4, 5)))}
    errors = check_op(
        lambda a, b: dict(zip(["sa", "sb"], tf.raw_ops.ShapeN(input=[a, b], out_type=tf.int32))),
        inputs, "ShapeN", shapes={"a": [None, 4], "b": [None, None, 5]})
    assert errors == {"sa": 0.0, "sb": 0.0}


# ----------------------------------------------------------------------------- losses
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
def test_sparse_softmax_cross_entropy_both_outputs_match_tf(label_dtype):
    r = np.random.default_rng(0)
    inputs = {"logits": f32(4 * r.standard_normal((7, 5))),
              "labels": r.integers(0, 5, 7).astype(label_dtype)}

    def fn(logits, labels):
        loss, backprop = tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(features=logits,
                                                                        labels=labels)
        return {"loss": loss, "backprop": backprop}

    check_op(fn, inputs, "SparseSoftmaxCrossEntropyWithLogits")


def test_softmax_cross_entropy_both_outputs_match_tf():
    r = np.random.default_rng(0)
    labels = r.uniform(0, 1, (7, 5))
    inputs = {"logits": f32(4 * r.standard_normal((7, 5))),
              "labels": f32(labels / labels.sum(-1, keepdims=True))}

    def fn(logits, labels):
        loss, backprop = tf.raw_ops.SoftmaxCrossEntropyWithLogits(features=logits, labels=labels)
        return {"loss": loss, "backprop": backprop}

    check_op(fn, inputs, "SoftmaxCrossEntropyWithLogits")


# ----------------------------------------------------------------------------- pooling, conv
POOLS = [(2, 2, "VALID"), (2, 2, "SAME"), (3, 2, "SAME"), (3, 1, "VALID")]


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("ksize,stride,padding", POOLS)
def test_max_pool_grad_matches_tf(ksize, stride, padding, ties):
    r = np.random.default_rng(0)
    # 7x7 leaves a partial window; integer values tie inside windows (as a ReLU's zeros or a
    # binary image's flat regions do), where the gradient must go to the same position as TF's.
    x = f32(np.round(r.uniform(0, 3, (2, 7, 7, 3))) if ties else r.standard_normal((2, 7, 7, 3)))
    y = tf.nn.max_pool2d(x, ksize, stride, padding).numpy()
    g = f32(r.standard_normal(y.shape))

    def fn(x, y, g):
        return {"dx": tf.raw_ops.MaxPoolGrad(orig_input=x, orig_output=y, grad=g,
                                             ksize=[1, ksize, ksize, 1],
                                             strides=[1, stride, stride, 1], padding=padding)}

    check_op(fn, {"x": x, "y": y, "g": g}, "MaxPoolGrad")


@pytest.mark.parametrize("ksize,stride,padding", POOLS)
def test_avg_pool_grad_matches_tf(ksize, stride, padding):
    shape = (2, 7, 7, 3)
    y_shape = tf.nn.avg_pool2d(np.zeros(shape, np.float32), ksize, stride, padding).shape
    g = f32(np.random.default_rng(0).standard_normal(y_shape))

    def fn(g):
        return {"dx": tf.raw_ops.AvgPoolGrad(orig_input_shape=shape, grad=g,
                                             ksize=[1, ksize, ksize, 1],
                                             strides=[1, stride, stride, 1], padding=padding)}

    check_op(fn, {"g": g}, "AvgPoolGrad")


@pytest.mark.parametrize("stride,dilation,padding", [
    (1, 1, "SAME"), (2, 1, "SAME"), (2, 1, "VALID"), (3, 1, "VALID"), (1, 2, "SAME"),
    (2, 1, "EXPLICIT"),
])
def test_conv2d_backprop_filter_matches_tf(stride, dilation, padding):
    r = np.random.default_rng(0)
    x = f32(r.standard_normal((2, 9, 9, 3)))
    explicit = [0, 0, 1, 2, 2, 0, 0, 0] if padding == "EXPLICIT" else []
    pad_arg = [[0, 0], [1, 2], [2, 0], [0, 0]] if padding == "EXPLICIT" else padding
    out_shape = tf.nn.conv2d(x, np.zeros((3, 3, 3, 4), np.float32), stride, pad_arg,
                             dilations=dilation).shape
    dy = f32(r.standard_normal(out_shape))

    def fn(x, dy):
        return {"dw": tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=[3, 3, 3, 4], out_backprop=dy, strides=[1, stride, stride, 1],
            padding=padding, explicit_paddings=explicit, dilations=[1, dilation, dilation, 1])}

    check_op(fn, {"x": x, "dy": dy}, "Conv2DBackpropFilter")


# ----------------------------------------------------------------------------- MatrixSolve
def ridge_system(r, n, features, rhs=5):
    x = 0.3 * r.standard_normal((n, features))
    return f32(x @ x.T + np.eye(n)), f32(r.standard_normal((n, rhs)))


@pytest.mark.parametrize("n", [5, 100])
def test_matrix_solve_ridge_system_matches_tf(n):
    a, b = ridge_system(np.random.default_rng(0), n, n // 2 + 3)
    check_op(lambda a, b: {"x": tf.linalg.solve(a, b)}, {"a": a, "b": b}, "MatrixSolve")


@pytest.mark.parametrize("adjoint", [False, True])
def test_matrix_solve_pivots_batches_and_adjoint(adjoint):
    r = np.random.default_rng(0)
    a = f32(r.standard_normal((3, 6, 6)))
    a[:, 0, 0] = 0.0  # without row exchanges the first pivot would be zero
    b = f32(r.standard_normal((3, 6, 2)))
    check_op(lambda a, b: {"x": tf.raw_ops.MatrixSolve(matrix=a, rhs=b, adjoint=adjoint)},
             {"a": a, "b": b}, "MatrixSolve")


def test_matrix_solve_with_a_dynamic_size_fails_clearly():
    specs = [tf.TensorSpec([None, None], tf.float32, name="a"),
             tf.TensorSpec([None, 2], tf.float32, name="b")]
    function = tf.function(lambda a, b: {"x": tf.linalg.solve(a, b)}, input_signature=specs,
                           autograph=False)
    with pytest.raises(ValueError, match=r"MatrixSolve.*must be static"):
        onnx_ops.convert_function(function, specs)


# ----------------------------------------------------------------------------- learners
def episode(r, x_shape, support, queries, ways=None):
    sx = f32(r.uniform(0, 1, (support, *x_shape)))
    qx = f32(r.uniform(0, 1, (queries, *x_shape)))
    if ways:
        sy = np.arange(support, dtype=np.int32) % ways
    else:
        sx, qx = f32(r.uniform(-5, 5, sx.shape)), f32(r.uniform(-5, 5, qx.shape))
        sy = f32(2 * np.sin(sx + 1))
    return {"support_x": sx, "support_y": sy, "query_x": qx}


def adapt_function(learner, specs, key, steps):
    @tf.function(input_signature=specs)
    def adapt(support_x, support_y, query_x):
        state = learner.adapt_task(support_x, support_y, steps=steps, training=False)
        return {key: learner.predict_task(state, query_x, training=False)}

    return adapt


def check_learner(learner, inputs, key, steps, output_path=None):
    """Convert the adapt graph; returns (parity error, TF outputs)."""
    specs = specs_of(inputs)
    function = adapt_function(learner, specs, key, steps)
    model = onnx_ops.convert_function(function, specs, output_path)
    assert [v.name for v in model.graph.input] == ["support_x", "support_y", "query_x"]
    assert [v.name for v in model.graph.output] == [key]
    want = function(*inputs.values())[key].numpy()
    error = relative_error(run_onnx(model, inputs)[key], want)
    assert error <= RTOL
    return error, want


def test_maml_conv4_adaptation_converts_and_matches_tf():
    learner = MAML(conv4((28, 28, 1), ways=5, filters=8), update_rule=0.4, inner_steps=2,
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs = episode(np.random.default_rng(0), (28, 28, 1), 5, 15, ways=5)
    _, adapted = check_learner(learner, inputs, "logits", steps=2)
    unadapted = adapt_function(learner, specs_of(inputs), "logits", 0)(*inputs.values())
    # The inner steps moved the logits far beyond the tolerance: the gradients were converted.
    assert relative_error(unadapted["logits"], adapted) > 100 * RTOL


def test_maml_sinusoid_adaptation_converts_and_matches_tf(tmp_path):
    learner = MAML(mlp((1,), (40, 40), 1), inner_steps=2, loss="mse")
    inputs = episode(np.random.default_rng(0), (1,), 5, 10)
    path = tmp_path / "adapt.onnx"
    _, adapted = check_learner(learner, inputs, "predictions", steps=2, output_path=path)
    unadapted = adapt_function(learner, specs_of(inputs), "predictions", 0)(*inputs.values())
    assert relative_error(unadapted["predictions"], adapted) > 100 * RTOL
    saved = onnx.load(str(path))
    assert [v.name for v in saved.graph.output] == ["predictions"]


def test_meta_sgd_adaptation_converts_and_matches_tf():
    # Learned per-element step sizes: `w - lr * MatMul(...)` with lr of shape [1, 8] for the
    # first kernel, which tf2onnx's Gemm rewriter would fuse into an invalid list-valued alpha.
    learner = MetaSGD(mlp((1,), (8,), 1), inner_steps=1, loss="mse")
    inputs = episode(np.random.default_rng(0), (1,), 5, 10)
    check_learner(learner, inputs, "predictions", steps=1)


def test_scalar_gemm_scales_still_fuse():
    r = np.random.default_rng(0)
    inputs = {"a": f32(r.standard_normal((3, 4))), "b": f32(r.standard_normal((4, 2))),
              "c": f32(r.standard_normal((3, 2)))}
    specs = specs_of(inputs)
    function = tf.function(lambda a, b, c: {"y": 0.5 * tf.matmul(a, b) + c},
                           input_signature=specs, autograph=False)
    model = onnx_ops.convert_function(function, specs)
    assert [n.op_type for n in model.graph.node] == ["Gemm"]
    assert relative_error(run_onnx(model, inputs)["y"], function(*inputs.values())["y"]) <= RTOL


@pytest.mark.parametrize("cls", [RidgeHead, ProtoNet])
def test_metric_learner_adaptation_converts_and_matches_tf(cls):
    # Both adapt with `ways = reduce_max(support_y) + 1`, a dynamic one-hot depth: it converts.
    learner = cls(conv4(ways=0, filters=8))
    inputs = episode(np.random.default_rng(0), (28, 28, 1), 5, 15, ways=5)
    check_learner(learner, inputs, "logits", steps=0)


# ----------------------------------------------------------------------------- refusals
def test_unsupported_op_is_named_with_its_layer_before_conversion():
    # Depthwise convolutions' filter gradient (DepthwiseConv2dNativeBackpropFilter) has no
    # handler in tf2onnx or here.
    model = keras.Sequential([keras.Input((6, 6, 2)),
                              keras.layers.DepthwiseConv2D(3, name="depthwise"),
                              keras.layers.Flatten(), keras.layers.Dense(1, name="out")])
    learner = MAML(model, update_rule=0.1, loss="mse")
    r = np.random.default_rng(0)
    inputs = {"support_x": f32(r.standard_normal((4, 6, 6, 2))),
              "support_y": f32(r.standard_normal((4, 1))),
              "query_x": f32(r.standard_normal((3, 6, 6, 2)))}
    specs = specs_of(inputs)
    function = adapt_function(learner, specs, "predictions", 1)
    graph_def, ops = frozen_op_types(function, specs)
    assert {"BiasAddGrad", "DepthwiseConv2dNativeBackpropFilter"} <= ops
    assert onnx_ops.unsupported_ops(graph_def) == ["DepthwiseConv2dNativeBackpropFilter"]
    with pytest.raises(ValueError, match=r"(?s)DepthwiseConv2dNativeBackpropFilter.*"
                                         r"from depthwise.*What to do"):
        onnx_ops.convert_function(function, specs)


def test_dynamic_shapes_are_refused_with_advice():
    learner = MAML(mlp((1,), (8,), 1), loss="mse")
    specs = [tf.TensorSpec([None, 1], tf.float32, name=n)
             for n in ("support_x", "support_y", "query_x")]
    with pytest.raises(ValueError, match=r"(?s)BroadcastGradientArgs.*static input shapes"):
        onnx_ops.convert_function(adapt_function(learner, specs, "predictions", 1), specs)


def test_output_named_like_an_input_is_refused():
    specs = [tf.TensorSpec([2, 3], tf.float32, name="state")]
    function = tf.function(lambda state: {"state": 2.0 * state}, input_signature=specs,
                           autograph=False)
    with pytest.raises(ValueError, match=r"\['state'\] have the name of an input"):
        onnx_ops.convert_function(function, specs)


def test_max_pool_grad_needs_opset_16():
    specs = [tf.TensorSpec([1, 4, 4, 1], tf.float32, name=n) for n in ("x", "y")]
    function = tf.function(
        lambda x, g: {"dx": tf.raw_ops.MaxPoolGrad(
            orig_input=x, orig_output=tf.nn.max_pool2d(x, 2, 2, "VALID"), grad=g[:, :2, :2],
            ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")},
        input_signature=specs, autograph=False)
    graph_def, _ = frozen_op_types(function, specs)
    assert onnx_ops.unsupported_ops(graph_def, opset=15) == ["MaxPoolGrad"]
    assert onnx_ops.unsupported_ops(graph_def, opset=16) == []


# ----------------------------------------------------------------------------- registration
def test_register_is_idempotent_and_overrides_tf2onnx():
    from tf2onnx.handler import tf_op

    onnx_ops.register()
    before = [dict(m) for m in tf_op.get_opsets()[""]]
    onnx_ops.register()
    assert [dict(m) for m in tf_op.get_opsets()[""]] == before
    assert set(onnx_ops.HANDLED_OPS) <= onnx_ops.supported_ops()
    mapping = tf_op.create_mapping(onnx_ops.DEFAULT_OPSET, [])
    for op in ("SparseSoftmaxCrossEntropyWithLogits", "SoftmaxCrossEntropyWithLogits"):
        assert mapping[op][0].__self__ is getattr(onnx_ops, op)


def test_importing_is_cheap():
    code = ("import sys, export.onnx_ops; "
            "heavy = {'tensorflow', 'tf2onnx', 'onnx', 'onnxruntime'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
