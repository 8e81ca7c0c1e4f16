"""MTCNN's P-Net, R-Net and O-Net as ONNX graphs built from the Keras weights.

Every graph takes RAW pixel values (0..255, float32, NCHW, RGB) and normalises them itself with
(x − 127.5) / 128, so callers never have to remember the constant. Outputs, all float32:

- P-Net  "image" (N,3,H,W) -> "regression" (N,4,H',W'), "probability" (N,2,H',W')
- R-Net  "image" (N,3,24,24) -> "regression" (N,4), "probability" (N,2)
- O-Net  "image" (N,3,48,48) -> "regression" (N,4), "landmarks" (N,10), "probability" (N,2)

"probability" is the softmax of [not face, face]; "landmarks" are x1..x5 then y1..y5 as
fractions of the box. Layer order and shapes are those of mtcnn 1.0.0's Keras models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from services.face.models.mtcnn_weights import read_net_weights

OPSET = 13
IR_VERSION = 8  # old enough for any onnxruntime we support, new enough for opset 13


class _GraphBuilder:
    """Collects nodes and weights; each layer method returns the name of its output."""

    def __init__(self, weights: Sequence[np.ndarray], name: str):
        self._weights = list(weights)
        self._next_weight = 0
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _take(self, shape: tuple[int, ...]) -> np.ndarray:
        if self._next_weight >= len(self._weights):
            raise ValueError(f"{self.name}: ran out of weights at #{self._next_weight}")
        array = np.asarray(self._weights[self._next_weight], dtype=np.float32)
        if array.shape != shape:
            raise ValueError(
                f"{self.name}: weight #{self._next_weight} has shape {array.shape}, "
                f"expected {shape}"
            )
        self._next_weight += 1
        return array

    def _constant(self, array: np.ndarray) -> str:
        name = f"w{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def _node(self, op: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        self._count += 1
        output = output or f"{op.lower()}{self._count}"
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def normalise(self, x: str) -> str:
        shifted = self._node("Sub", [x, self._constant(np.array(127.5, np.float32))])
        return self._node("Mul", [shifted, self._constant(np.array(1 / 128, np.float32))])

    def conv(self, x: str, c_in: int, c_out: int, k: int, output: str | None = None) -> str:
        kernel = self._take((k, k, c_in, c_out)).transpose(3, 2, 0, 1)  # HWIO -> OIHW
        bias = self._take((c_out,))
        inputs = [x, self._constant(kernel), self._constant(bias)]
        return self._node("Conv", inputs, output, kernel_shape=[k, k])

    def prelu_channels(self, x: str, channels: int) -> str:
        alpha = self._take((1, 1, channels)).reshape(channels, 1, 1)  # (1,1,C) -> (C,1,1)
        return self._node("PRelu", [x, self._constant(alpha)])

    def prelu_features(self, x: str, features: int) -> str:
        return self._node("PRelu", [x, self._constant(self._take((features,)))])

    def max_pool(self, x: str, k: int, same: bool) -> str:
        # Keras "same" pads at the end only: ONNX SAME_UPPER.
        pad = {"auto_pad": "SAME_UPPER"} if same else {}
        return self._node("MaxPool", [x], kernel_shape=[k, k], strides=[2, 2], **pad)

    def flatten_keras_order(self, x: str) -> str:
        # Keras flattens (N,W,H,C) after Permute((2,1,3)); from NCHW that is perm [0,3,2,1].
        return self._node("Flatten", [self._node("Transpose", [x], perm=[0, 3, 2, 1])])

    def dense(self, x: str, n_in: int, n_out: int, output: str | None = None) -> str:
        kernel, bias = self._take((n_in, n_out)), self._take((n_out,))
        inputs = [x, self._constant(kernel), self._constant(bias)]
        return self._node("Gemm", inputs, output)

    def softmax(self, x: str, output: str) -> str:
        return self._node("Softmax", [x], output, axis=1)

    def model(self, input_shape: list, outputs: dict[str, list]) -> onnx.ModelProto:
        if self._next_weight != len(self._weights):
            raise ValueError(
                f"{self.name}: {len(self._weights) - self._next_weight} weights unused"
            )
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in outputs.items()],
            self.initializers,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lockmesh"
        )
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model


def build_pnet(weights: Sequence[np.ndarray]) -> onnx.ModelProto:
    """P-Net, fully convolutional: any H, W of at least 12."""
    g = _GraphBuilder(weights, "pnet")
    x = g.normalise("image")
    x = g.max_pool(g.prelu_channels(g.conv(x, 3, 10, 3), 10), 2, same=True)
    x = g.prelu_channels(g.conv(x, 10, 16, 3), 16)
    x = g.prelu_channels(g.conv(x, 16, 32, 3), 32)
    g.conv(x, 32, 4, 1, "regression")
    g.softmax(g.conv(x, 32, 2, 1), "probability")
    return g.model(
        ["N", 3, "H", "W"],
        {"regression": ["N", 4, "h", "w"], "probability": ["N", 2, "h", "w"]},
    )


def build_rnet(weights: Sequence[np.ndarray]) -> onnx.ModelProto:
    """R-Net on 24x24 crops."""
    g = _GraphBuilder(weights, "rnet")
    x = g.normalise("image")
    x = g.max_pool(g.prelu_channels(g.conv(x, 3, 28, 3), 28), 3, same=True)
    x = g.max_pool(g.prelu_channels(g.conv(x, 28, 48, 3), 48), 3, same=False)
    x = g.prelu_channels(g.conv(x, 48, 64, 2), 64)
    x = g.prelu_features(g.dense(g.flatten_keras_order(x), 576, 128), 128)
    g.dense(x, 128, 4, "regression")
    g.softmax(g.dense(x, 128, 2), "probability")
    return g.model(["N", 3, 24, 24], {"regression": ["N", 4], "probability": ["N", 2]})


def build_onet(weights: Sequence[np.ndarray]) -> onnx.ModelProto:
    """O-Net on 48x48 crops, with the five landmarks."""
    g = _GraphBuilder(weights, "onet")
    x = g.normalise("image")
    x = g.max_pool(g.prelu_channels(g.conv(x, 3, 32, 3), 32), 3, same=True)
    x = g.max_pool(g.prelu_channels(g.conv(x, 32, 64, 3), 64), 3, same=False)
    x = g.max_pool(g.prelu_channels(g.conv(x, 64, 64, 3), 64), 2, same=True)
    x = g.prelu_channels(g.conv(x, 64, 128, 2), 128)
    x = g.prelu_features(g.dense(g.flatten_keras_order(x), 1152, 256), 256)
    g.dense(x, 256, 4, "regression")
    g.dense(x, 256, 10, "landmarks")
    g.softmax(g.dense(x, 256, 2), "probability")
    return g.model(
        ["N", 3, 48, 48],
        {"regression": ["N", 4], "landmarks": ["N", 10], "probability": ["N", 2]},
    )


BUILDERS = {"pnet": build_pnet, "rnet": build_rnet, "onet": build_onet}


def build_from_package() -> dict[str, bytes]:
    """The three serialised graphs, converted from the installed mtcnn package's weights."""
    return {
        net: build(read_net_weights(net)).SerializeToString() for net, build in BUILDERS.items()
    }
