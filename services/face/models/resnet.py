"""dlib's face ResNet (128-D descriptor) converted to an ONNX graph.

The .dat file stores no layer tags or topology, only each layer's version and details, so
the parser walks the network template of dlib's tools/python/src/face_recognition.cpp:

    loss_metric<fc_no_bias<128, avg_pool_everything<alevel0<...alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>

File order (dlib/dnn/core.h): the loss layer's version and details, then every wrapper
layer's version outermost first (tag and skip layers store nothing else), then the input
layer, then each layer's details innermost first, each followed by its training state
(three bools and three tensors, all ignored). Facts checked in
../shared/design/face-models.md: stride-2 convolutions pad 0, stride-1 ones k/2; a residual
add of unequal shapes zero-pads the smaller input at the end; the fc layer has no bias.

Each affine layer (batch norm frozen after training) is folded into the convolution it follows:
one node fewer per layer, and the descriptors still match dlib's within about 4e-7.

Graph: "chip" (N, 150, 150, 3) float32 raw RGB 0..255 -> "descriptor" (N, 128) float32,
not normalised (compare with Euclidean distance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from services.face.models.dlib_format import DlibReader, FormatError

CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
OPSET = 17


# --- the architecture, as dlib's template spells it ---------------------------------------


@dataclass(frozen=True)
class Conv:
    filters: int
    size: int
    stride: int

    @property
    def padding(self) -> int:
        return 0 if self.stride != 1 else self.size // 2  # dlib's con_ default


@dataclass(frozen=True)
class Affine:
    pass


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class MaxPool:
    size: int
    stride: int


@dataclass(frozen=True)
class AvgPool:
    size: int  # 0: the whole image (avg_pool_everything)
    stride: int


@dataclass(frozen=True)
class AddPrev:
    tag: int


@dataclass(frozen=True)
class Tag:
    tag: int


@dataclass(frozen=True)
class Skip:
    tag: int


@dataclass(frozen=True)
class Fc:
    outputs: int


Layer = Conv | Affine | Relu | MaxPool | AvgPool | AddPrev | Tag | Skip | Fc


def _block(filters: int, stride: int) -> list[Layer]:
    # BN<con<N,3,3,1,1, relu<BN<con<N,3,3,stride,stride, SUBNET>>>>>
    return [Affine(), Conv(filters, 3, 1), Relu(), Affine(), Conv(filters, 3, stride)]


def _ares(filters: int) -> list[Layer]:
    # relu<add_prev1<block<N,affine,1, tag1<SUBNET>>>>
    return [Relu(), AddPrev(1), *_block(filters, 1), Tag(1)]


def _ares_down(filters: int) -> list[Layer]:
    # relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<N,affine,2, tag1<SUBNET>>>>>>>
    return [Relu(), AddPrev(2), AvgPool(2, 2), Skip(1), Tag(2), *_block(filters, 2), Tag(1)]


def architecture() -> list[Layer]:
    """The layers under the loss, outermost (the fc layer) first."""
    return [
        Fc(DESCRIPTOR_SIZE),
        AvgPool(0, 1),
        *_ares_down(256),  # alevel0
        *_ares(256), *_ares(256), *_ares_down(256),  # alevel1
        *_ares(128), *_ares(128), *_ares_down(128),  # alevel2
        *_ares(64), *_ares(64), *_ares(64), *_ares_down(64),  # alevel3
        *_ares(32), *_ares(32), *_ares(32),  # alevel4
        MaxPool(3, 2),
        Relu(),
        Affine(),
        Conv(32, 7, 2),
    ]  # fmt: skip


# --- parsing -------------------------------------------------------------------------------

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class Parsed:
    """What the graph needs: the input means and the layers innermost first, with weights."""

    means: np.ndarray  # (3,) float32: R, G, B
    layers: list[tuple[Layer, Weights]]


def parse(dat: bytes) -> Parsed:
    reader = DlibReader(dat)
    reader.expect_int(1, "add_loss_layer version")
    _read_loss_metric(reader)
    layers = architecture()
    for layer in layers[:-1]:
        expected = 1 if isinstance(layer, Tag | Skip) else 2  # add_tag/skip_layer, add_layer
        reader.expect_int(expected, f"version of the {_name(layer)} layer")
    input_version = reader.int()  # the add_layer over the input layer: 3 adds one field
    if input_version not in (2, 3):
        raise FormatError(f"input add_layer version {input_version} at byte {reader.pos}")
    means = _read_input_layer(reader)

    parsed: list[tuple[Layer, Weights]] = []
    for depth, layer in enumerate(reversed(layers)):
        if isinstance(layer, Tag | Skip):
            parsed.append((layer, {}))  # their whole record was the version
            continue
        parsed.append((layer, _read_details(reader, layer)))
        _skip_training_state(reader, input_version if depth == 0 else None)
    reader.finish()
    return Parsed(means, parsed)


def _name(layer: Layer) -> str:
    return type(layer).__name__


def _read_loss_metric(reader: DlibReader) -> None:
    version = reader.string()
    if version == "loss_metric_2":
        reader.float(), reader.float()  # margin and distance threshold: training only
    elif version != "loss_metric_":
        raise FormatError(f"expected the loss_metric_ layer, found {version!r}")


def _read_input_layer(reader: DlibReader) -> np.ndarray:
    _expect_string(reader, ("input_rgb_image_sized",))
    means = np.array([reader.float() for _ in range(3)], dtype=np.float32)
    rows, cols = reader.uint(), reader.uint()
    if (rows, cols) != (CHIP_SIZE, CHIP_SIZE):
        raise FormatError(f"input is {rows}x{cols}, expected {CHIP_SIZE}x{CHIP_SIZE}")
    return means


def _skip_training_state(reader: DlibReader, input_version: int | None) -> None:
    """What add_layer saves after the details: three bools and three tensors (gradients and a
    cached output), plus the sample expansion factor in the input add_layer's version 3."""
    for _ in range(3):
        reader.bool()
    for _ in range(3):
        reader.tensor()
    if input_version == 3:
        reader.uint()


def _expect_string(reader: DlibReader, allowed: tuple[str, ...]) -> str:
    at = reader.pos
    found = reader.string()
    if found not in allowed:
        raise FormatError(f"expected {' or '.join(allowed)} at byte {at}, found {found[:40]!r}")
    return found


def _expect_ints(reader: DlibReader, expected: tuple[int, ...], what: str) -> None:
    at = reader.pos
    found = tuple(reader.int() for _ in expected)
    if found != expected:
        raise FormatError(f"{what}: expected {expected}, found {found} at byte {at}")


def _read_alias(reader: DlibReader) -> tuple[int, ...]:
    """An alias tensor: the shape of a slice of the params tensor, no data."""
    reader.expect_int(1, "alias_tensor version")
    return tuple(reader.int() for _ in range(4))


def _read_details(reader: DlibReader, layer: Layer) -> Weights:
    if isinstance(layer, Conv):
        return _read_conv(reader, layer)
    if isinstance(layer, Affine):
        return _read_affine(reader)
    if isinstance(layer, Relu):
        if _expect_string(reader, ("relu_", "relu_2")) == "relu_2" and reader.bool():
            raise FormatError("a disabled relu layer: not the network dlib ships")
        return {}
    if isinstance(layer, MaxPool | AvgPool):
        kind = "max_pool_2" if isinstance(layer, MaxPool) else "avg_pool_2"
        _expect_string(reader, (kind,))
        geometry = (layer.size, layer.size, layer.stride, layer.stride, 0, 0)
        _expect_ints(reader, geometry, f"{kind} rows, cols, strides, paddings")
        return {}
    if isinstance(layer, AddPrev):
        _expect_string(reader, ("add_prev_",))
        return {}
    if isinstance(layer, Fc):
        return _read_fc(reader, layer)
    raise AssertionError(f"no details for {layer}")


def _read_conv(reader: DlibReader, layer: Conv) -> Weights:
    version = _expect_string(reader, ("con_4", "con_5", "con_6"))
    params = reader.tensor().ravel()
    geometry = (layer.filters, layer.size, layer.size, layer.stride, layer.stride)
    _expect_ints(reader, geometry, "con_ filters, rows, cols, strides")
    _expect_ints(reader, (layer.padding, layer.padding), "con_ paddings")
    filter_shape = _read_alias(reader)
    bias_shape = _read_alias(reader)
    for _ in range(4):
        reader.float()  # learning-rate and weight-decay multipliers: training only
    if version in ("con_5", "con_6") and not reader.bool():
        raise FormatError("a convolution without bias: not the network dlib ships")
    if version == "con_6" and reader.bool():
        raise FormatError("a convolution with fused relu: not the network dlib ships")
    out_channels, _, rows, cols = filter_shape
    if (out_channels, rows, cols) != (layer.filters, layer.size, layer.size):
        raise FormatError(f"con_ filters of shape {filter_shape} for {layer}")
    if bias_shape != (1, layer.filters, 1, 1):
        raise FormatError(f"con_ biases of shape {bias_shape} for {layer}")
    filters_size = int(np.prod(filter_shape))
    if params.size != filters_size + layer.filters:
        raise FormatError(f"con_ params hold {params.size} values, filters need {filters_size}")
    return {
        "filters": params[:filters_size].reshape(filter_shape),
        "biases": params[filters_size:],
    }


def _read_affine(reader: DlibReader) -> Weights:
    version = _expect_string(reader, ("affine_", "affine_2"))
    params = reader.tensor().ravel()
    gamma_shape, beta_shape = _read_alias(reader), _read_alias(reader)
    mode = reader.int()
    if version == "affine_2" and reader.bool():
        raise FormatError("a disabled affine layer: not the network dlib ships")
    if mode != 0:  # CONV_MODE: one gamma and beta per channel
        raise FormatError(f"affine_ in mode {mode}, expected per-channel (0)")
    channels = gamma_shape[1]
    if gamma_shape != (1, channels, 1, 1) or beta_shape != gamma_shape:
        raise FormatError(f"affine_ gamma {gamma_shape} and beta {beta_shape}")
    if params.size != 2 * channels:
        raise FormatError(f"affine_ params hold {params.size} values for {channels} channels")
    return {"gamma": params[:channels], "beta": params[channels:]}


def _read_fc(reader: DlibReader, layer: Fc) -> Weights:
    version = _expect_string(reader, ("fc_2", "fc_3"))
    outputs, inputs = reader.uint(), reader.uint()
    params = reader.tensor()
    weight_shape = _read_alias(reader)
    _read_alias(reader)  # the biases' shape: unused without a bias
    bias_mode = reader.int()
    for _ in range(4):
        reader.float()  # learning-rate and weight-decay multipliers: training only
    if version == "fc_3":
        reader.bool()  # use_bias: moot, the bias mode already says there is none
    if outputs != layer.outputs:
        raise FormatError(f"fc_ with {outputs} outputs, expected {layer.outputs}")
    if bias_mode != 1:  # FC_NO_BIAS
        raise FormatError(f"fc_ bias mode {bias_mode}, expected no bias (1)")
    if weight_shape != (inputs, outputs, 1, 1) or params.size != inputs * outputs:
        raise FormatError(f"fc_ weights {weight_shape} in params of {params.size} values")
    return {"weights": params.reshape(inputs, outputs)}


# --- the graph -------------------------------------------------------------------------------


def build_resnet(dat: bytes) -> onnx.ModelProto:
    """The ONNX model of the ResNet in `dat` (the .dat file's bytes); FormatError if it is not
    exactly the network dlib ships."""
    parsed = parse(dat)
    graph = _GraphBuilder()
    current = graph.preprocess(parsed.means)
    tags: dict[int, _Value] = {}
    conv: tuple[Conv, Weights] | None = None  # every conv feeds an affine: emitted with it
    for layer, weights in parsed.layers:
        if isinstance(layer, Conv):
            conv = (layer, weights)
        elif isinstance(layer, Affine):
            if conv is None:
                raise AssertionError("the architecture puts every affine right after a conv")
            # dlib's affine is batch norm frozen after training: fold it into the conv's weights
            current = graph.conv(current, *conv, weights["gamma"], weights["beta"])
            conv = None
        elif isinstance(layer, Relu):
            current = graph.relu(current)
        elif isinstance(layer, MaxPool | AvgPool):
            current = graph.pool(current, layer)
        elif isinstance(layer, Tag):
            tags[layer.tag] = current
        elif isinstance(layer, Skip):
            current = tags[layer.tag]
        elif isinstance(layer, AddPrev):
            current = graph.add_padded(current, tags[layer.tag])
        elif isinstance(layer, Fc):
            current = graph.fc(current, weights["weights"])
    return graph.model(current)


@dataclass(frozen=True)
class _Value:
    name: str
    shape: tuple[int, int, int]  # channels, rows, cols (the batch is dynamic)


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def _fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def _constant(self, stem: str, array: np.ndarray) -> str:
        name = self._fresh(stem)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def _node(
        self, op: str, inputs: list[str], stem: str, output: str = "", **attributes: Any
    ) -> str:
        """attributes: ints, floats or lists of them, as onnx.helper.make_attribute takes."""
        output = output or self._fresh(stem)
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def preprocess(self, means: np.ndarray) -> _Value:
        """Raw NHWC pixels to dlib's input tensor: (pixel - mean) / 256, planar RGB."""
        centred = self._node("Sub", ["chip", self._constant("means", means)], "centred")
        scale = np.array(1 / 256, dtype=np.float32)  # a power of two: exact, as dlib's divide
        scaled = self._node("Mul", [centred, self._constant("scale", scale)], "scaled")
        planar = self._node("Transpose", [scaled], "planar", perm=[0, 3, 1, 2])
        return _Value(planar, (3, CHIP_SIZE, CHIP_SIZE))

    def conv(
        self,
        x: _Value,
        layer: Conv,
        weights: Weights,
        gamma: np.ndarray,
        beta: np.ndarray,
    ) -> _Value:
        """The convolution followed by its per-channel affine (gamma * x + beta)."""
        filters, biases = weights["filters"], weights["biases"]
        channels, rows, cols = x.shape
        if filters.shape[1] != channels:
            raise FormatError(f"{layer} filters take {filters.shape[1]} channels, get {channels}")
        if gamma.size != layer.filters:
            raise FormatError(f"affine of {gamma.size} channels after {layer}")
        filters = filters * gamma[:, None, None, None]
        biases = biases * gamma + beta
        pad = layer.padding
        out = self._node(
            "Conv",
            [x.name, self._constant("filters", filters), self._constant("biases", biases)],
            "conv",
            kernel_shape=[layer.size, layer.size],
            strides=[layer.stride, layer.stride],
            pads=[pad] * 4,
        )
        shrink = lambda n: (n + 2 * pad - layer.size) // layer.stride + 1  # noqa: E731
        return _Value(out, (layer.filters, shrink(rows), shrink(cols)))

    def relu(self, x: _Value) -> _Value:
        return _Value(self._node("Relu", [x.name], "relu"), x.shape)

    def pool(self, x: _Value, layer: MaxPool | AvgPool) -> _Value:
        channels, rows, cols = x.shape
        if isinstance(layer, AvgPool) and layer.size == 0:
            return _Value(self._node("GlobalAveragePool", [x.name], "mean"), (channels, 1, 1))
        op = "MaxPool" if isinstance(layer, MaxPool) else "AveragePool"
        out = self._node(
            op,
            [x.name],
            "pool",
            kernel_shape=[layer.size, layer.size],
            strides=[layer.stride, layer.stride],
        )
        shrink = lambda n: (n - layer.size) // layer.stride + 1  # noqa: E731
        return _Value(out, (channels, shrink(rows), shrink(cols)))

    def add_padded(self, a: _Value, b: _Value) -> _Value:
        """dlib's add_prev: the larger shape in each dimension, the smaller input zero-padded
        at the end of its channels, rows and columns."""
        channels, rows, cols = (max(m, n) for m, n in zip(a.shape, b.shape, strict=True))
        shape = (channels, rows, cols)
        return _Value(self._node("Add", [self._pad(a, shape), self._pad(b, shape)], "sum"), shape)

    def _pad(self, x: _Value, shape: tuple[int, ...]) -> str:
        if x.shape == shape:
            return x.name
        ends = [0] + [want - have for want, have in zip(shape, x.shape, strict=True)]
        pads = np.array([0, 0, 0, 0, *ends], dtype=np.int64)  # all starts, then all ends
        return self._node("Pad", [x.name, self._constant("pads", pads)], "padded")

    def fc(self, x: _Value, weights: np.ndarray) -> _Value:
        inputs = int(np.prod(x.shape))
        if weights.shape[0] != inputs:
            raise FormatError(f"fc_ expects {weights.shape[0]} inputs, gets {inputs}")
        flat = self._node("Flatten", [x.name], "flat", axis=1)
        # the fc layer is the last one under the loss: its output is the graph's
        out = self._node("MatMul", [flat, self._constant("fc", weights)], "", output="descriptor")
        return _Value(out, (weights.shape[1], 1, 1))

    def model(self, output: _Value) -> onnx.ModelProto:
        if output.name != "descriptor":
            raise AssertionError("the graph must end in the fc layer")
        chip = helper.make_tensor_value_info(
            "chip", TensorProto.FLOAT, ["N", CHIP_SIZE, CHIP_SIZE, 3]
        )
        descriptor = helper.make_tensor_value_info(
            "descriptor", TensorProto.FLOAT, ["N", output.shape[0]]
        )
        graph = helper.make_graph(
            self.nodes, "dlib_face_resnet", [chip], [descriptor], self.initializers
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.producer_name = "lockmesh"
        model.doc_string = "dlib_face_recognition_resnet_model_v1 converted by lockmesh"
        onnx.checker.check_model(model)
        return model
