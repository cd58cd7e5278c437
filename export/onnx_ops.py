"""ONNX conversion of adaptation graphs: tf2onnx handlers for TensorFlow's gradient ops.

An ``adapt`` signature runs a few unrolled inner gradient steps and then predicts the query set,
so its graph holds the ops TensorFlow emits for gradients (``ReluGrad``, ``MaxPoolGrad``,
``Conv2DBackpropFilter``, ...) and, for closed-form heads, ``MatrixSolve``. tf2onnx 1.17 has no
handler for these (for ``(Sparse)SoftmaxCrossEntropyWithLogits`` it converts the loss output but
not the backprop output 1), and its Python API writes such graphs anyway: the file then fails when
onnxruntime loads it. This module:

- adds tf2onnx handlers for those ops (`register`; registered at ONNX opset 13, ``MaxPoolGrad``
  at 16, above tf2onnx's own versions, so they take precedence for opset >= 13/16);
- lists the ops of a frozen graph that nothing can convert (`unsupported_ops`);
- converts a `tf.function` with checks before and after (`convert_function`).

Importing it is cheap: TensorFlow, tf2onnx, onnx and onnxruntime are imported on first use.

Shapes: convert adaptation graphs with static input shapes (fixed ways x shots and query count).
With dynamic shapes TensorFlow emits ``BroadcastGradientArgs`` and ``DynamicStitch`` gradients
that no handler covers, and ``Conv2DBackpropFilter``, ``AvgPoolGrad`` and ``MatrixSolve`` need
static sizes here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Sequence

import numpy as np

DEFAULT_OPSET = 17

_LOCK = threading.Lock()
_REGISTERED = False

# Advice printed with every "cannot convert" error.
_WHAT_TO_DO = (
    "What to do: (1) export with static input shapes (fixed support and query sizes); dynamic "
    "shapes make TensorFlow emit gradient ops such as BroadcastGradientArgs and DynamicStitch; "
    "(2) replace the layer with one whose gradient uses forward ops only (tf.custom_gradient), "
    "or with layers whose ops are in export.onnx_ops.supported_ops(); (3) or add a tf2onnx "
    "handler for the op "
    "(@tf2onnx.handler.tf_op(...), as export/onnx_ops.py does) and register it before converting."
)


# ----------------------------------------------------------------------------- graph building
class _Builder:
    """Makes ONNX nodes (opset >= 13 forms) in a tf2onnx graph, on behalf of one TF node."""

    def __init__(self, ctx, node):
        from tf2onnx import utils

        self.ctx, self.node, self._utils = ctx, node, utils

    def _name(self, what):
        return self._utils.make_name(f"{self.node.name}/{what}")

    def fail(self, message):
        raise ValueError(f"{self.node.type} node {self.node.name!r}: {message}")

    # -- tensors
    def np_dtype(self, tensor):
        return self._utils.map_onnx_to_numpy_type(self.ctx.get_dtype(tensor))

    def shape(self, tensor):
        shape = self.ctx.get_shape(tensor)
        return None if shape is None else [int(d) for d in shape]

    def static_shape(self, tensor, what):
        shape = self.shape(tensor)
        if shape is None or any(d < 0 for d in shape):
            self.fail(f"needs a static shape for {what}; got {shape}. Export with static input "
                      "shapes (fixed support and query sizes).")
        return shape

    def rank(self, tensor, what="its input"):
        shape = self.shape(tensor)
        if shape is None:
            self.fail(f"needs a known rank for {what}.")
        return len(shape)

    def const(self, value, dtype):
        return self.ctx.make_const(self._name("const"), np.asarray(value, dtype=dtype)).output[0]

    def const_like(self, value, tensor):
        return self.const(value, self.np_dtype(tensor))

    def ints(self, values):
        return self.const(values, np.int64)

    def attr(self, name, default=None):
        value = self.node.get_attr_value(name, default)
        return value.decode() if isinstance(value, bytes) else value

    # -- ops
    def op(self, op_type, *inputs, **attr):
        return self.ctx.make_node(op_type, list(inputs), attr=attr,
                                  name=self._name(op_type)).output[0]

    def reduce_sum(self, x, axes, keepdims=0):
        return self.op("ReduceSum", x, self.ints(axes), keepdims=keepdims)

    def unsqueeze(self, x, axes):
        return self.op("Unsqueeze", x, self.ints(axes))

    def squeeze(self, x, axes):
        return self.op("Squeeze", x, self.ints(axes))

    def transpose(self, x, perm):
        return self.op("Transpose", x, perm=list(perm))

    def cast(self, x, onnx_dtype):
        if self.ctx.get_dtype(x) == onnx_dtype:
            return x
        return self.op("Cast", x, to=onnx_dtype)

    def to_int64(self, x):
        from onnx import TensorProto

        return self.cast(x, TensorProto.INT64)

    # -- replacing the TF node
    def finish(self, *results):
        """Replace the TF node: its outputs now come from ``results`` (one per output)."""
        node, ctx = self.node, self.ctx
        outputs, shapes, dtypes = list(node.output), node.output_shapes, node.output_dtypes
        if len(results) != len(outputs):
            self.fail(f"internal error: {len(results)} results for {len(outputs)} outputs")
        ctx.remove_node(node.name)
        for name, result, shape, dtype in zip(outputs, results, shapes, dtypes):
            ctx.make_node("Identity", [result], outputs=[name], name=self._name("out"),
                          shapes=[shape], dtypes=[dtype])


# ----------------------------------------------------------------------------- element-wise
class ReluGrad:
    """``gradients * (features > 0)``, as TensorFlow's kernel (a NaN gradient stays NaN)."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        dy, x = node.input
        mask = b.cast(b.op("Greater", x, b.const_like(0, x)), ctx.get_dtype(dy))
        b.finish(b.op("Mul", dy, mask))


class Relu6Grad:
    """``gradients * ((features > 0) & (features < 6))``."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        dy, x = node.input
        inside = b.op("And", b.op("Greater", x, b.const_like(0, x)),
                      b.op("Less", x, b.const_like(6, x)))
        b.finish(b.op("Mul", dy, b.cast(inside, ctx.get_dtype(dy))))


class LeakyReluGrad:
    """``features > 0 ? gradients : alpha * gradients``."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        dy, x = node.input
        alpha = float(b.attr("alpha", 0.2))
        scaled = b.op("Mul", dy, b.const_like(alpha, dy))
        b.finish(b.op("Where", b.op("Greater", x, b.const_like(0, x)), dy, scaled))


class EluGrad:
    """``outputs < 0 ? gradients * (outputs + 1) : gradients``."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        dy, y = node.input
        negative = b.op("Mul", b.op("Add", y, b.const_like(1, y)), dy)
        b.finish(b.op("Where", b.op("Less", y, b.const_like(0, y)), negative, dy))


class SeluGrad:
    """``outputs < 0 ? gradients * (outputs + scale * alpha) : gradients * scale``."""

    _SCALE = 1.0507009873554804934193349852946
    _SCALE_ALPHA = 1.7580993408473768599402175208123

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        dy, y = node.input
        negative = b.op("Mul", dy, b.op("Add", y, b.const_like(cls._SCALE_ALPHA, y)))
        positive = b.op("Mul", dy, b.const_like(cls._SCALE, dy))
        b.finish(b.op("Where", b.op("Less", y, b.const_like(0, y)), negative, positive))


class SoftplusGrad:
    """``gradients / (exp(-features) + 1)``."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        dy, x = node.input
        b.finish(b.op("Div", dy, b.op("Add", b.op("Exp", b.op("Neg", x)), b.const_like(1, x))))


class SoftsignGrad:
    """``gradients / (1 + |features|)^2``."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        dy, x = node.input
        denominator = b.op("Add", b.op("Abs", x), b.const_like(1, x))
        b.finish(b.op("Div", dy, b.op("Mul", denominator, denominator)))


class SigmoidGrad:
    """``SigmoidGrad(y, dy) = dy * y * (1 - y)``."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        y, dy = node.input
        one_minus = b.op("Sub", b.const_like(1, y), y)
        b.finish(b.op("Mul", b.op("Mul", dy, y), one_minus))


class TanhGrad:
    """``TanhGrad(y, dy) = dy * (1 - y * y)``."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        y, dy = node.input
        b.finish(b.op("Mul", dy, b.op("Sub", b.const_like(1, y), b.op("Mul", y, y))))


class RsqrtGrad:
    """``RsqrtGrad(y, dy) = -0.5 * dy * y^3`` (batch norm: ``rsqrt(variance + eps)``)."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        y, dy = node.input
        value = b.op("Mul", b.op("Mul", dy, y), b.op("Mul", y, y))
        b.finish(b.op("Mul", value, b.const_like(-0.5, y)))


class SqrtGrad:
    """``SqrtGrad(y, dy) = 0.5 * dy / y``."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        y, dy = node.input
        b.finish(b.op("Div", b.op("Mul", dy, b.const_like(0.5, dy)), y))


class ReciprocalGrad:
    """``ReciprocalGrad(y, dy) = -dy * y * y`` (also ``InvGrad``)."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        y, dy = node.input
        b.finish(b.op("Mul", b.op("Mul", b.op("Neg", dy), y), y))


# ----------------------------------------------------------------------------- reductions, shapes
class BiasAddGrad:
    """The sum of ``out_backprop`` over every axis but the channel axis."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        dy = node.input[0]
        rank = b.rank(dy)
        channel = 1 if b.attr("data_format", "NHWC").startswith("NC") and rank > 2 else rank - 1
        b.finish(b.reduce_sum(dy, [a for a in range(rank) if a != channel]))


class ShapeN:
    """One ``Shape`` per input, cast to ``out_type``."""

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        b.finish(*(b.cast(b.op("Shape", x), ctx.get_dtype(out))
                   for x, out in zip(node.input, node.output)))


# ----------------------------------------------------------------------------- losses
class SparseSoftmaxCrossEntropyWithLogits:
    """Both outputs: ``loss = -log_softmax(z)[label]``, ``backprop = softmax(z) - onehot``.

    tf2onnx's own handler emits the loss only; the gradient of a cross-entropy uses output 1.
    Labels must be in ``[0, classes)`` (TensorFlow returns NaN rows for others; onnxruntime
    fails).
    """

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        logits, labels = node.input
        if b.rank(logits, "the logits") != 2 or b.rank(labels, "the labels") != 1:
            b.fail("expects logits [batch, classes] and labels [batch].")
        index = b.unsqueeze(b.to_int64(labels), [-1])
        log_probabilities = b.op("LogSoftmax", logits, axis=-1)
        picked = b.op("GatherElements", log_probabilities, index, axis=-1)
        loss = b.op("Neg", b.squeeze(picked, [-1]))
        zeros = b.op("ConstantOfShape", b.op("Shape", logits),
                     value=_scalar_tensor(0, b.np_dtype(logits)))
        ones = b.op("Expand", b.const_like(1, logits), b.op("Shape", index))
        onehot = b.op("ScatterElements", zeros, index, ones, axis=-1)
        backprop = b.op("Sub", b.op("Softmax", logits, axis=-1), onehot)
        b.finish(loss, backprop)


class SoftmaxCrossEntropyWithLogits:
    """Both outputs: ``loss = -sum(labels * log_softmax(z))``, ``backprop = softmax(z) - labels``.
    """

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        logits, labels = node.input
        rank = max(b.rank(logits, "the logits"), b.rank(labels, "the labels"))
        log_probabilities = b.op("LogSoftmax", logits, axis=-1)
        loss = b.op("Neg", b.reduce_sum(b.op("Mul", labels, log_probabilities), [rank - 1]))
        backprop = b.op("Sub", b.op("Softmax", logits, axis=-1), labels)
        b.finish(loss, backprop)


def _scalar_tensor(value, dtype):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray([value], dtype=dtype), "value")


# ----------------------------------------------------------------------------- pooling, conv
def _spatial_attrs(b, names=("ksize", "strides")):
    """``(channels_first, [h, w] per attribute)`` of a 2-D NHWC/NCHW pooling or conv node."""
    data_format = b.attr("data_format", "NHWC")
    if data_format not in ("NHWC", "NCHW"):
        b.fail(f"data_format {data_format!r} is not supported (NHWC or NCHW).")
    channels_first = data_format == "NCHW"
    values = []
    for name in names:
        value = list(b.attr(name, [1, 1, 1, 1]))
        if len(value) != 4:
            b.fail(f"expects 4 values in {name}; got {value}.")
        outer, spatial = ((value[0], value[1]), value[2:]) if channels_first else (
            (value[0], value[3]), value[1:3])
        if outer != (1, 1):
            b.fail(f"{name} over the batch or channel axis is not supported: {value}.")
        values.append([int(v) for v in spatial])
    return channels_first, values


def _same_pads(size, out, kernel, stride, dilation=1):
    """TensorFlow's SAME padding ``(begin, end)`` for one spatial axis."""
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class MaxPoolGrad:
    """Route each output gradient to the arg-max of its window.

    ONNX ``MaxPool`` with its ``Indices`` output (flat positions in the NCHW input), then
    ``ScatterElements(zeros, indices, grad, reduction="add")`` (opset 16) on the flat input.
    Ties go to the first maximum in the window, as TensorFlow's CPU kernel.
    """

    @classmethod
    def version_16(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        x, _, grad = node.input
        channels_first, (ksize, strides) = _spatial_attrs(b)
        padding = b.attr("padding", "VALID")
        if padding not in ("SAME", "VALID"):
            b.fail(f"padding {padding!r} is not supported (SAME or VALID).")
        if b.rank(x, "the input") != 4:
            b.fail("expects a 4-D input.")
        if not channels_first:
            x, grad = b.transpose(x, [0, 3, 1, 2]), b.transpose(grad, [0, 3, 1, 2])
        pool = ctx.make_node(
            "MaxPool", [x], attr={"kernel_shape": ksize, "strides": strides,
                                  "auto_pad": "SAME_UPPER" if padding == "SAME" else "VALID"},
            output_count=2, name=b._name("MaxPool"))
        indices = b.op("Reshape", pool.output[1], b.ints([-1]))
        flat_grad = b.op("Reshape", grad, b.ints([-1]))
        flat_x = b.op("Reshape", x, b.ints([-1]))
        zeros = b.op("ConstantOfShape", b.op("Shape", flat_x),
                     value=_scalar_tensor(0, b.np_dtype(grad)))
        scattered = b.op("ScatterElements", zeros, indices, flat_grad, axis=0, reduction="add")
        dx = b.op("Reshape", scattered, b.op("Shape", x))
        b.finish(dx if channels_first else b.transpose(dx, [0, 2, 3, 1]))


class AvgPoolGrad:
    """Spread each output gradient evenly over its window (divided by the number of input
    cells the window covers, padding excluded, as TensorFlow).

    Average pooling is separable, so the gradient is ``Mh @ grad @ Mw^T`` per image and channel,
    with small constant matrices built from the static shapes.
    """

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        sizes, grad = node.input
        channels_first, (ksize, strides) = _spatial_attrs(b)
        padding = b.attr("padding", "VALID")
        if padding not in ("SAME", "VALID"):
            b.fail(f"padding {padding!r} is not supported (SAME or VALID).")
        input_shape = _const_values(ctx, sizes) or b.shape(node.output[0])
        if not input_shape or len(input_shape) != 4:
            b.fail("needs the input shape (orig_input_shape) as a constant.")
        grad_shape = b.static_shape(grad, "the gradient")
        spatial = slice(2, 4) if channels_first else slice(1, 3)
        (h, w), (ho, wo) = input_shape[spatial], grad_shape[spatial]
        if min(h, w) < 0:
            b.fail(f"needs static spatial sizes; got {input_shape}.")
        dtype = b.np_dtype(grad)
        rows = b.const(_avg_pool_matrix(h, ho, ksize[0], strides[0], padding), dtype)
        cols = b.const(_avg_pool_matrix(w, wo, ksize[1], strides[1], padding).T, dtype)
        if not channels_first:
            grad = b.transpose(grad, [0, 3, 1, 2])
        dx = b.op("MatMul", b.op("MatMul", rows, grad), cols)
        b.finish(dx if channels_first else b.transpose(dx, [0, 2, 3, 1]))


def _avg_pool_matrix(size, out, kernel, stride, padding):
    """``[size, out]``: input cell ``r`` gets ``1 / count`` of output ``i`` along one axis."""
    begin = _same_pads(size, out, kernel, stride)[0] if padding == "SAME" else 0
    matrix = np.zeros((size, out), np.float64)
    for i in range(out):
        first = i * stride - begin
        rows = [r for r in range(first, first + kernel) if 0 <= r < size]
        matrix[rows, i] = 1.0 / len(rows)
    return matrix


def _const_values(ctx, tensor):
    producer = ctx.get_node_by_output(tensor)
    if producer is not None and producer.is_const():
        return [int(v) for v in producer.get_tensor_value(as_list=True)]
    return None


class Conv2DBackpropFilter:
    """The filter gradient as one ONNX ``Conv``.

    ``dW[a, b, i, o] = sum_{n, y, x} input[n, y*s + a*d - pad, ..., i] * dy[n, y, x, o]`` is a
    convolution of the input (its channels as the batch, its batch as the channels) with the
    output gradient as the kernel, dilated by the stride and strided by the dilation. The result
    ``[Cin, Cout, kh', kw']`` is cropped to the filter size and transposed to ``[kh, kw, Cin,
    Cout]``. Needs static spatial sizes; grouped convolutions are not supported.
    """

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        x, sizes, dy = node.input
        channels_first, (strides, dilations) = _spatial_attrs(b, ("strides", "dilations"))
        padding = b.attr("padding", "VALID")
        x_shape = b.static_shape(x, "the input")
        dy_shape = b.static_shape(dy, "the output gradient")
        filter_shape = _const_values(ctx, sizes) or b.shape(node.output[0])
        if not filter_shape or len(filter_shape) != 4 or min(filter_shape) < 0:
            b.fail("needs the filter size (filter_sizes) as a constant.")
        kh, kw, cin, _ = filter_shape
        spatial = slice(2, 4) if channels_first else slice(1, 3)
        channels = x_shape[1] if channels_first else x_shape[3]
        if channels != cin:
            b.fail(f"grouped convolutions are not supported (input has {channels} channels, "
                   f"the filter {cin}).")
        (h, w), (ho, wo) = x_shape[spatial], dy_shape[spatial]
        if padding == "VALID":
            pads = [0, 0, 0, 0]
        elif padding == "SAME":
            top, bottom = _same_pads(h, ho, kh, strides[0], dilations[0])
            left, right = _same_pads(w, wo, kw, strides[1], dilations[1])
            pads = [top, left, bottom, right]
        elif padding == "EXPLICIT":
            explicit = list(b.attr("explicit_paddings", []))
            if len(explicit) != 8:
                b.fail(f"expects 8 explicit_paddings; got {explicit}.")
            first = 4 if channels_first else 2
            (top, bottom), (left, right) = explicit[first:first + 2], explicit[first + 2:first + 4]
            pads = [top, left, bottom, right]
        else:
            b.fail(f"padding {padding!r} is not supported.")
        perm = [1, 0, 2, 3] if channels_first else [3, 0, 1, 2]
        conv = b.op("Conv", b.transpose(x, perm), b.transpose(dy, perm), kernel_shape=[ho, wo],
                    strides=list(dilations), dilations=list(strides), pads=[int(p) for p in pads])
        out_h = (h + pads[0] + pads[2] - (ho - 1) * strides[0] - 1) // dilations[0] + 1
        out_w = (w + pads[1] + pads[3] - (wo - 1) * strides[1] - 1) // dilations[1] + 1
        if out_h < kh or out_w < kw:
            b.fail(f"inconsistent shapes: input {x_shape}, gradient {dy_shape}, filter "
                   f"{filter_shape}, padding {padding}.")
        if (out_h, out_w) != (kh, kw):
            conv = b.op("Slice", conv, b.ints([0, 0]), b.ints([kh, kw]), b.ints([2, 3]))
        b.finish(b.transpose(conv, [2, 3, 0, 1]))


# ----------------------------------------------------------------------------- linear algebra
MAX_SOLVE_SIZE = 256


class MatrixSolve:
    """``X`` with ``A X = B`` (``A^T X = B`` with ``adjoint``), unrolled for a static size.

    ONNX has no solve op. This is Gaussian elimination with partial pivoting (an LU
    factorisation applied to ``B`` as it goes) followed by back substitution, unrolled over the
    ``n`` columns, batched over any leading axes. Partial pivoting rather than Cholesky because
    ``MatrixSolve`` is a general op: the handler cannot know that a matrix is symmetric positive
    definite (R2-D2's ``X X^T + lambda I`` is, but any ``tf.linalg.solve`` goes through here),
    and it is the factorisation TensorFlow's own kernel uses (Eigen's PartialPivLU), so the
    rounding stays close to TensorFlow's. The 2n^3/3 flops against Cholesky's n^3/3 do not
    matter at these sizes. A singular matrix gives inf/NaN (TensorFlow raises an error).

    The matrix size must be static and at most `MAX_SOLVE_SIZE` (the graph grows as about
    ``25 n`` nodes); the number of right-hand sides may be dynamic.
    """

    @classmethod
    def version_13(cls, ctx, node, **kwargs):
        b = _Builder(ctx, node)
        a, rhs = node.input
        shape = b.shape(a)
        if shape is None or len(shape) < 2 or shape[-1] < 0 or shape[-2] < 0:
            b.fail(f"the matrix size must be static to unroll the solve; got shape {shape}. "
                   "Export with static input shapes (fixed support size).")
        n = shape[-1]
        if n > MAX_SOLVE_SIZE:
            b.fail(f"matrix size {n} is above MAX_SOLVE_SIZE={MAX_SOLVE_SIZE} (the unrolled "
                   "solve grows with the size).")
        rank = len(shape)
        if b.rank(rhs, "the right-hand side") != rank:
            b.fail("the matrix and the right-hand side must have the same rank.")
        if b.attr("adjoint", 0):
            a = b.transpose(a, list(range(rank - 2)) + [rank - 1, rank - 2])
        b.finish(_solve(b, a, rhs, n))


def _solve(b, a, rhs, n):
    # Work on the augmented matrix [A | B]: one row swap and one update per step for both.
    m = b.op("Concat", a, rhs, axis=-1)
    dtype = b.np_dtype(a)
    rows = np.arange(n)
    row_index, shape = b.ints(rows), b.op("Shape", m)
    for k in range(n - 1):
        # Pivot: the largest |M[r, k]| for r >= k, swapped into row k.
        k_scalar, k_list = b.ints(k), b.ints([k])
        penalty = b.const(np.where(rows >= k, 0, -np.inf), dtype)
        candidates = b.op("Add", b.op("Abs", b.op("Gather", m, k_scalar, axis=-1)), penalty)
        pivot_row = b.op("ArgMax", candidates, axis=-1, keepdims=1)
        swapped = b.op("Where", b.op("Equal", row_index, pivot_row), k_scalar, row_index)
        permutation = b.op("Where", b.const(rows == k, np.bool_), pivot_row, swapped)
        permutation = b.op("Expand", b.unsqueeze(permutation, [-1]), shape)
        m = b.op("GatherElements", m, permutation, axis=-2)
        # Eliminate column k below row k.
        pivot_row = b.op("Gather", m, k_list, axis=-2)
        pivot = b.op("Gather", pivot_row, k_list, axis=-1)
        below = b.op("Mul", b.op("Gather", m, k_list, axis=-1), b.const((rows > k)[:, None], dtype))
        m = b.op("Sub", m, b.op("Mul", b.op("Div", below, pivot), pivot_row))
    # Back substitution on the upper triangle, last row first.
    solved = None
    for k in reversed(range(n)):
        row = b.op("Gather", m, b.ints([k]), axis=-2)
        value = b.op("Slice", row, b.ints([n]), b.ints([np.iinfo(np.int64).max]), b.ints([-1]))
        if solved is not None:
            upper = b.op("Slice", row, b.ints([k + 1]), b.ints([n]), b.ints([-1]))
            value = b.op("Sub", value, b.op("MatMul", upper, solved))
        x = b.op("Div", value, b.op("Gather", row, b.ints([k]), axis=-1))
        solved = x if solved is None else b.op("Concat", x, solved, axis=-2)
    return solved


# ----------------------------------------------------------------------------- registry
_HANDLERS = (
    ("ReluGrad", ReluGrad), ("Relu6Grad", Relu6Grad), ("LeakyReluGrad", LeakyReluGrad),
    ("EluGrad", EluGrad), ("SeluGrad", SeluGrad), ("SoftplusGrad", SoftplusGrad),
    ("SoftsignGrad", SoftsignGrad), ("SigmoidGrad", SigmoidGrad), ("TanhGrad", TanhGrad),
    ("RsqrtGrad", RsqrtGrad), ("SqrtGrad", SqrtGrad),
    (["ReciprocalGrad", "InvGrad"], ReciprocalGrad), ("BiasAddGrad", BiasAddGrad),
    ("ShapeN", ShapeN),
    ("SparseSoftmaxCrossEntropyWithLogits", SparseSoftmaxCrossEntropyWithLogits),
    ("SoftmaxCrossEntropyWithLogits", SoftmaxCrossEntropyWithLogits),
    ("MaxPoolGrad", MaxPoolGrad), ("AvgPoolGrad", AvgPoolGrad),
    ("Conv2DBackpropFilter", Conv2DBackpropFilter), ("MatrixSolve", MatrixSolve),
)

HANDLED_OPS = tuple(sorted(name for names, _ in _HANDLERS
                           for name in (names if isinstance(names, list) else [names])))


def register() -> None:
    """Register this module's handlers with tf2onnx and guard its Gemm rewriter (see
    `_guard_gemm_rewriter`); once, later calls do nothing."""
    global _REGISTERED
    with _LOCK:
        if _REGISTERED:
            return
        import tf2onnx.tfonnx  # noqa: F401  (registers tf2onnx's own handlers first)
        from tf2onnx.handler import tf_op

        for names, handler in _HANDLERS:
            tf_op(names)(handler)
        _guard_gemm_rewriter()
        _REGISTERED = True


def _guard_gemm_rewriter():
    """Keep tf2onnx's Gemm rewriter to scalar ``alpha``/``beta``.

    tf2onnx 1.17 fuses ``MatMul * c + d`` into ``Gemm(alpha=c)`` whenever the constant ``c``
    has one row, so a per-element scale of shape ``[1, n]`` (Meta-SGD's learned step sizes for
    a ``Dense`` kernel with one input) becomes a list-valued ``alpha``: an invalid model that
    ``onnx.checker`` rejects. Only single-element constants are fused now (as a float); the
    others stay ``Mul`` and ``Add``.
    """
    from tf2onnx.rewriter import gemm_rewriter

    original = gemm_rewriter.get_gemm_attr
    if getattr(original, "_keras_meta_guard", False):
        return

    def get_gemm_attr(match):
        scales = {}
        for arg in ("alpha", "beta"):
            op = match.get_op(arg)
            if op is not None:
                value = np.asarray(op.get_tensor_value(as_list=False))
                if value.size != 1 or value.ndim > 2:
                    return {}, False
                scales[arg] = float(value.reshape(()))
        attr, valid = original(match)
        attr.update(scales)
        return attr, valid

    get_gemm_attr._keras_meta_guard = True
    gemm_rewriter.get_gemm_attr = get_gemm_attr


def supported_ops(opset: int = DEFAULT_OPSET) -> frozenset[str]:
    """TF op types that tf2onnx (with this module's handlers) converts at ONNX ``opset``."""
    register()
    from tf2onnx import constants
    from tf2onnx.handler import tf_op

    ops = set()
    for version, handlers in enumerate(tf_op.get_opsets().get(constants.ONNX_DOMAIN, [])):
        if version <= opset:
            ops.update(handlers)
    return frozenset(ops)


def _graph_nodes(graph_def):
    yield from graph_def.node
    for function in graph_def.library.function:
        yield from function.node_def


def _unsupported_nodes(graph_def, opset):
    supported = supported_ops(opset)
    found: dict[str, list[str]] = {}
    for node in _graph_nodes(graph_def):
        if node.op not in supported:
            found.setdefault(node.op, []).append(node.name)
    return dict(sorted(found.items()))


def unsupported_ops(graph_def, opset: int = DEFAULT_OPSET) -> list[str]:
    """The op types in a frozen (function-inlined) ``GraphDef`` that cannot be converted to ONNX
    at ``opset``, neither by tf2onnx nor by this module's handlers; sorted, without repeats."""
    return list(_unsupported_nodes(graph_def, opset))


_SCOPE_NOISE = {"gradient_tape", "gradients", "StatefulPartitionedCall", "PartitionedCall"}


def _layer_scopes(node_names: Sequence[str]) -> list[str]:
    """The name scopes (usually Keras layer names, TensorFlow may append ``_N``) of nodes."""
    scopes = []
    for name in node_names:
        parts = [p for p in name.split("/")[:-1] if p not in _SCOPE_NOISE
                 and not re.fullmatch(r"(StatefulPartitionedCall|PartitionedCall)(_\d+)?", p)]
        scope = parts[0] if parts else "(top level)"
        if scope not in scopes:
            scopes.append(scope)
    return scopes


def describe_unsupported(found: dict[str, list[str]]) -> str:
    lines = []
    for op, names in found.items():
        scopes = ", ".join(_layer_scopes(names)[:8])
        lines.append(f"  {op} ({len(names)} node(s), from {scopes}; e.g. {names[0]!r})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- conversion
class _FixedConcrete:
    """Gives tf2onnx's ``from_function`` an already-traced concrete function."""

    def __init__(self, concrete):
        self._concrete = concrete

    def get_concrete_function(self, *args, **kwargs):
        return self._concrete


class _ErrorRecords(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record):
        message = record.getMessage().split("\n")[0]
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message += f": {type(error).__name__}: {error}"
        self.messages.append(message)


def _concrete_function(function, input_signature):
    if hasattr(function, "get_concrete_function"):
        if input_signature is None:
            return function.get_concrete_function()
        return function.get_concrete_function(*input_signature)
    if hasattr(function, "structured_input_signature"):
        return function
    raise TypeError("Expected a tf.function or a ConcreteFunction. Received: "
                    f"{type(function).__name__}")


def _rename(graph, old: str, new: str) -> None:
    """Rename value ``old`` to ``new`` everywhere in an ONNX graph (not in subgraphs)."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new


_CATCH_ERRORS = "TF2ONNX_CATCH_ERRORS"
_CONVERT_LOCK = threading.Lock()


@contextlib.contextmanager
def _optimizer_without_copies(enabled):
    """Set TF2ONNX_CATCH_ERRORS for the duration (when ``enabled`` and the user has not set it).

    tf2onnx 1.17 deep-copies the whole graph before each optimizer pass, so that a failing pass
    can be skipped; that is most of the conversion time of an adaptation graph (2-3x). It skips
    the copies when TF2ONNX_CATCH_ERRORS is set, to any value (convert.py compares the
    variable's name, not its value, with "TRUE").
    """
    if not enabled or _CATCH_ERRORS in os.environ:
        yield
        return
    os.environ[_CATCH_ERRORS] = "FALSE"
    try:
        yield
    finally:
        os.environ.pop(_CATCH_ERRORS, None)


def _from_function(concrete, signature, opset, name):
    """``tf2onnx.convert.from_function``, failing when a handler logged an error.

    The first attempt runs the optimizer without its safety copies; if that attempt raises, the
    conversion runs again tf2onnx's default way (an optimizer pass that fails is then skipped).
    """
    from tf2onnx import convert

    logger = logging.getLogger("tf2onnx")
    with _CONVERT_LOCK:  # tf2onnx keeps its op mapping in globals
        for fast in (True, False):
            errors = _ErrorRecords()
            logger.addHandler(errors)
            try:
                with _optimizer_without_copies(fast):
                    model, _ = convert.from_function(_FixedConcrete(concrete),
                                                     input_signature=signature, opset=opset)
                break
            except Exception:
                if not fast:
                    raise
            finally:
                logger.removeHandler(errors)
    if errors.messages:
        raise ValueError(f"tf2onnx failed to convert {name}:\n  " + "\n  ".join(errors.messages)
                         + f"\n{_WHAT_TO_DO}")
    return model


def _check_name_clash(concrete, name) -> None:
    """ONNX names every value once: an output key cannot also be an input's name."""
    import tensorflow as tf

    inputs = {s.name for s in tf.nest.flatten(concrete.structured_input_signature)
              if isinstance(s, tf.TensorSpec) and s.name}
    outputs = concrete.structured_outputs
    clash = sorted(inputs & set(outputs)) if isinstance(outputs, dict) else []
    if clash:
        raise ValueError(
            f"Cannot convert {name} to ONNX: output(s) {clash} have the name of an input, and an "
            "ONNX graph names each value once (tf2onnx fails with \"graph input ... not exist\"). "
            "Give the output another key (e.g. 'next_state' for a recurrent state).")


def _set_names(graph, concrete) -> None:
    """Name the ONNX inputs as the TensorSpecs and the outputs as the returned dict's keys."""
    import tensorflow as tf

    specs = [s for s in tf.nest.flatten(concrete.structured_input_signature)
             if isinstance(s, tf.TensorSpec)]
    inputs = [v for v in graph.input if v.name not in {i.name for i in graph.initializer}]
    if len(inputs) != len(specs):
        raise ValueError(f"The ONNX graph has {len(inputs)} inputs; the signature has "
                         f"{len(specs)}.")
    for value, spec in zip(list(inputs), specs):
        if spec.name and value.name != spec.name:
            _rename(graph, value.name, spec.name)
    structured = concrete.structured_outputs
    if not isinstance(structured, dict):
        return
    keys = {}
    for key, tensor in structured.items():
        if not isinstance(key, str) or not hasattr(tensor, "name"):
            return
        keys[tensor.name] = key
    for value in list(graph.output):
        key = keys.get(value.name)
        if key is not None and key != value.name:
            _rename(graph, value.name, key)
    names = sorted(v.name for v in graph.output)
    if names != sorted(keys.values()):
        raise ValueError(f"The ONNX outputs {names} do not match the returned keys "
                         f"{sorted(keys.values())}.")


def convert_function(function, input_signature=None, output_path=None,
                     opset: int = DEFAULT_OPSET):
    """Convert a `tf.function` (or a ConcreteFunction) to ONNX, with checks.

    Registers the handlers, freezes the function and refuses (``ValueError``, naming the ops
    and the name scopes they come from) when the graph holds ops nothing can convert; converts
    with ``tf2onnx.convert.from_function`` (failing if a handler reported an error), renames the
    ONNX inputs to the ``TensorSpec`` names and the outputs to the keys of the returned dict,
    checks the model with ``onnx.checker`` and by creating an onnxruntime session, and writes
    it to ``output_path`` if given.

    Args:
        function: a `tf.function` (with ``input_signature`` given here or at its definition) or
            a ConcreteFunction. Return a dict to get named outputs.
        input_signature: ``tf.TensorSpec``s, named (``support_x``, ...); static shapes for
            adaptation graphs.
        output_path: where to write the ``.onnx`` file (``None``: do not write).
        opset: the ONNX opset (>= 16 for ``MaxPoolGrad``).

    Returns:
        The ``onnx.ModelProto``.
    """
    register()
    import onnx
    import onnxruntime
    import tensorflow as tf
    from tf2onnx import tf_loader

    concrete = _concrete_function(function, input_signature)
    name = concrete.name.decode() if isinstance(concrete.name, bytes) else str(concrete.name)
    _check_name_clash(concrete, name)
    input_names = [t.name for t in concrete.inputs if t.dtype != tf.resource]
    output_names = [t.name for t in concrete.outputs if t.dtype != tf.resource]
    frozen = tf_loader.from_function(concrete, input_names, output_names)
    found = _unsupported_nodes(frozen, opset)
    if found:
        raise ValueError(
            f"Cannot convert {name} to ONNX (opset {opset}): its graph holds TensorFlow "
            f"ops that neither tf2onnx nor export.onnx_ops convert:\n{describe_unsupported(found)}"
            f"\n{_WHAT_TO_DO}")

    signature = list(input_signature) if input_signature is not None else [
        s for s in tf.nest.flatten(concrete.structured_input_signature)
        if isinstance(s, tf.TensorSpec)]
    model = _from_function(concrete, signature, opset, name)
    _set_names(model.graph, concrete)

    onnx.checker.check_model(model)
    try:
        onnxruntime.InferenceSession(model.SerializeToString(),
                                     providers=["CPUExecutionProvider"])
    except Exception as error:
        raise ValueError(f"The ONNX model converted from {name} does not load in "
                         f"onnxruntime: {error}") from error
    if output_path is not None:
        onnx.save(model, str(output_path))
    return model
