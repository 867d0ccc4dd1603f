"""The authors' released Speech2Vid (MatConvNet DagNN `v201.mat`, deblurrer `v114.mat`) as our Keras models.

Each DagNN layer is checked against the released architecture (spec §2–3: type, wiring, kernel,
stride and pad) and its parameters are mapped by the layer's own parameter list, so parameter names
do not matter:

    conv{1..5}_audio, fc6_audio, fc7_audio, bn{1..7}_audio      → audio_conv{i}, audio_fc6/7, audio_bn{i}
    conv{1..7}_face (6, 7 act as fc), bn{1..7}_face             → face_conv{1..5}, face_fc6/7, face_bn{i}
    conv8, conv1_1 … conv5_3 (the decoder, no BatchNorm)        → dec_conv8, dec_conv1_1 … dec_conv5_3
    supr0 … supr9 (v114)                                        → deblur_conv0 … deblur_conv9

Conv filters are H×W×Cin×Cout cross-correlations, as Keras' kernels. BatchNorm moments are (μ, σ) with
σ = sqrt(var + ε): Keras gets moving_variance = σ² − ε with its own ε (a σ below sqrt(ε) is folded into
γ). The training-only perceptual trunk (`*_face_lip_*`) and the loss layers are skipped and listed
in the manifest.

Input convention: the original fed 0–255 face pixels, ours feed [0, 1], so face_conv1's filter is
multiplied by 255 (exact: the layer is linear before its bias). The MFCC input is the same raw MFCC,
silent frames included (MatConvNet's ReLU maps their NaN to 0, as `SilenceMask` does). The output
(sigmoid, [0, 1]) and the deblurrer (prediction + residual) need nothing; ours clips the sum to [0, 1].
The manifest records this as `input_convention`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from keras_speech2vid.config import get_config
from keras_speech2vid.dagnn import DagLayer, DagNN, read_dagnn
from keras_speech2vid.errors import WeightsError

FACE_SCALE = 255.0  # the original's pixel range; folded into face_conv1
_TRAINING_ONLY = re.compile(r"_face_lip_|^loss")


def _layer(name, kind, inputs, ours=None, kernel=None, stride=(1, 1), pad=(0, 0, 0, 0)):
    """One DagNN layer of the released net: its type, the layers it reads, our Keras layer (for layers
    with parameters) and for convs and pools the kernel (h, w), stride and pad (top, bottom, left, right)."""
    return {"name": name, "type": f"dagnn.{kind}", "inputs": inputs, "ours": ours, "kernel": kernel,
            "stride": tuple(stride), "pad": tuple(pad)}


def _encoder_layer(src, name, bn, relu, ours, bn_ours, kernel, stride=(1, 1), pad=(0, 0, 0, 0)):
    return [_layer(name, "Conv", [src], ours, kernel, stride, pad), _layer(bn, "BatchNorm", [name], bn_ours),
            _layer(relu, "ReLU", [bn])]


def generator_layers() -> list[dict]:
    """v201's inference layers in order (spec §2.1–2.3; the training-only trunk is not listed)."""
    out, a = [], lambda i: f"relu{i}_audio"
    one = (1, 1, 1, 1)
    for i, (src, kernel, pad) in enumerate([("input_audio", (3, 3), one), ("pool1_audio", (3, 3), one),
                                            ("pool2_audio", (3, 3), one), (a(3), (3, 3), one), (a(4), (3, 3), one)], 1):
        out += _encoder_layer(src, f"conv{i}_audio", f"bn{i}_audio", a(i), f"audio_conv{i}", f"audio_bn{i}", kernel,
                              pad=pad)
        if i == 1:
            out.append(_layer("pool1_audio", "Pooling", [a(1)], kernel=(1, 1)))
        if i == 2:
            out.append(_layer("pool2_audio", "Pooling", [a(2)], kernel=(3, 3), stride=(1, 2), pad=(1, 0, 0, 0)))
    out.append(_layer("pool5_audio", "Pooling", [a(5)], kernel=(3, 3), stride=(2, 2)))
    out += _encoder_layer("pool5_audio", "fc6_audio", "bn6_audio", a(6), "audio_fc6", "audio_bn6", (5, 8))
    out += _encoder_layer(a(6), "fc7_audio", "bn7_audio", a(7), "audio_fc7", "audio_bn7", (1, 1))

    f = lambda i: f"relu{i}_face"  # noqa: E731
    face = [("input_face", (7, 7), (2, 2), (0, 0, 0, 0), "face_conv1"),
            ("pool1_face", (5, 5), (2, 2), one, "face_conv2"),
            ("pool2_face", (3, 3), (1, 1), one, "face_conv3"),
            (f(3), (3, 3), (1, 1), one, "face_conv4"),
            (f(4), (3, 3), (1, 1), one, "face_conv5"),
            (f(5), (6, 6), (1, 1), (0, 0, 0, 0), "face_fc6"),
            (f(6), (1, 1), (1, 1), (0, 0, 0, 0), "face_fc7")]
    for i, (src, kernel, stride, pad, ours) in enumerate(face, 1):
        out += _encoder_layer(src, f"conv{i}_face", f"bn{i}_face", f(i), ours, f"face_bn{i}", kernel, stride, pad)
        if i == 1:
            out.append(_layer("pool1_face", "Pooling", [f(1)], kernel=(3, 3), stride=(2, 2)))
        if i == 2:
            out.append(_layer("pool2_face", "Pooling", [f(2)], kernel=(3, 3), stride=(2, 2), pad=(0, 1, 0, 1)))

    out.append(_layer("concat8", "Concat", [a(7), f(7)]))
    src = "concat8"
    late = (2, 1, 2, 1)
    # (name, kernel, pad, upsample first, skip joined after its ReLU)
    decoder = [("conv8", 1, (0, 0, 0, 0), False, None), ("conv1_1", 3, one, True, None),
               ("conv1_2", 3, one, True, None), ("conv1_3", 3, (0, 0, 0, 0), True, None),
               ("conv2", 3, one, "upsamp2", ("concatSkip2", f(2))), ("conv3_1", 3, one, "upsamp3_1", None),
               ("conv3_2", 5, (3, 3, 3, 3), False, ("concatSkip3", "pool1_face")),
               ("conv4", 3, late, "upsamp4", ("concatSkip4", f(1))), ("conv5_1", 3, late, "upsamp5_1", None),
               ("conv5_2", 3, late, False, None), ("conv5_3", 3, late, False, None)]
    for name, k, pad, up, skip in decoder:
        if up:
            up_name = up if isinstance(up, str) else f"upsamp{name[4:]}"
            out.append(_layer(up_name, "UpSamp2", [src]))
            src = up_name
        out.append(_layer(name, "Conv", [src], f"dec_{name}", (k, k), pad=pad))
        src = name
        if name != "conv5_3":
            relu = f"relu{name[4:]}"
            out.append(_layer(relu, "ReLU", [name]))
            src = relu
        if skip:
            out.append(_layer(skip[0], "Concat", [skip[1], src]))
            src = skip[0]
    out.append(_layer("sigmoid5_3", "Sigmoid", ["conv5_3"]))
    return out


def deblurrer_layers(depth: int = 10) -> list[dict]:
    """v114's layers (spec §3): supr0 … supr9, 3×3 pad 1, ReLU (resr{i}) after all but the last."""
    out, src = [], "input"
    for i in range(depth):
        out.append(_layer(f"supr{i}", "Conv", [src], f"deblur_conv{i}", (3, 3), pad=(1, 1, 1, 1)))
        src = f"supr{i}"
        if i < depth - 1:
            out.append(_layer(f"resr{i}", "ReLU", [src]))
            src = f"resr{i}"
    return out


def _ints(value, n) -> tuple[int, ...] | None:
    """A block field as n ints (MATLAB gives a scalar for a square size), or None when absent."""
    if value is None or (isinstance(value, np.ndarray) and value.size == 0):
        return None
    v = np.asarray(value, dtype=np.float64).ravel()
    if v.size == 1:
        v = np.repeat(v, n)
    return tuple(int(x) for x in v[:n]) if v.size >= n else None


def _check_layers(net: DagNN, expected: list[dict], first_input: dict[str, str]) -> dict[str, str]:
    """Check each expected layer's type, wiring and geometry; return {our layer name: DagNN layer name}.

    `first_input` maps the table's input names ("input_audio", …) to how the file must name them."""
    where = net.path
    produced = dict(first_input)  # table name → the variable holding its output in the file
    mapping = {}
    for spec in expected:
        layer = net.layer(spec["name"])
        if layer is None:
            raise WeightsError(f"{where}: layer {spec['name']!r} missing (not the released Speech2Vid architecture)")
        if layer.type != spec["type"]:
            raise WeightsError(f"{where}: layer {layer.name!r} is a {layer.type}, expected {spec['type']}")
        wanted = [produced.get(i, i) for i in spec["inputs"]]
        if layer.inputs != wanted:
            raise WeightsError(f"{where}: layer {layer.name!r} reads {layer.inputs}, expected {wanted}")
        if len(layer.outputs) != 1:
            raise WeightsError(f"{where}: layer {layer.name!r} has {len(layer.outputs)} outputs, expected 1")
        produced[spec["name"]] = layer.outputs[0]
        if spec["type"] in ("dagnn.Conv", "dagnn.Pooling"):
            size_field = "size" if spec["type"] == "dagnn.Conv" else "poolSize"
            found = {"kernel": _ints(layer.block.get(size_field), 2), "stride": _ints(layer.block.get("stride"), 2),
                     "pad": _ints(layer.block.get("pad"), 4)}
            for key, value in found.items():
                if value is not None and value != tuple(spec[key]):
                    raise WeightsError(f"{where}: layer {layer.name!r} has {key} {list(value)}, "
                                       f"expected {list(spec[key])}")
            method = layer.block.get("method")
            if spec["type"] == "dagnn.Pooling" and method not in (None, "max"):
                raise WeightsError(f"{where}: layer {layer.name!r} pools by {method!r}, expected max")
        if spec["ours"]:
            mapping[spec["ours"]] = layer.name
    known = {s["name"] for s in expected}
    for layer in net.layers:
        if layer.name not in known and layer.params and not _TRAINING_ONLY.search(layer.name):
            raise WeightsError(f"{where}: unexpected layer {layer.name!r} ({layer.type}) with parameters: "
                               f"not the released Speech2Vid architecture")
    return mapping


def skipped_layers(net: DagNN, expected: list[dict]) -> list[str]:
    known = {s["name"] for s in expected}
    return [layer.name for layer in net.layers if layer.name not in known]


def _param(net: DagNN, layer: DagLayer, index: int, shape: tuple[int, ...], what: str) -> np.ndarray:
    if index >= len(layer.params):
        raise WeightsError(f"{net.path}: layer {layer.name!r} has no {what} parameter")
    name = layer.params[index]
    if name not in net.params:
        raise WeightsError(f"{net.path}: parameter {name!r} of layer {layer.name!r} missing")
    value = net.params[name]
    flat = tuple(d for d in value.shape if d != 1)
    if value.size != int(np.prod(shape)) or (len(shape) > 1 and flat != tuple(d for d in shape if d != 1)):
        raise WeightsError(f"{net.path}: parameter {name!r} of layer {layer.name!r} has shape "
                           f"{'x'.join(map(str, value.shape))}, expected {'x'.join(map(str, shape))}")
    return value.reshape(shape)  # MATLAB drops trailing 1s (fc7's 1x1x512x256, a 1xC bias)


def _conv_weights(net, layer, kernel_shape) -> list[np.ndarray]:
    kernel = _param(net, layer, 0, kernel_shape, "filter")
    has_bias = layer.block.get("hasBias")
    if len(layer.params) < 2 or (has_bias is not None and not np.asarray(has_bias).any()):
        return [kernel, np.zeros(kernel_shape[-1], np.float32)]
    return [kernel, _param(net, layer, 1, (kernel_shape[-1],), "bias")]


def _bn_weights(net, layer, channels, keras_epsilon) -> list[np.ndarray]:
    gamma = _param(net, layer, 0, (channels,), "multiplier")
    beta = _param(net, layer, 1, (channels,), "bias")
    moments = _param(net, layer, 2, (channels, 2), "moments")
    mean, sigma = moments[:, 0], moments[:, 1]
    if (sigma <= 0).any():
        raise WeightsError(f"{net.path}: BatchNorm {layer.name!r} has a moment sigma <= 0")
    variance = np.maximum(sigma.astype(np.float64) ** 2 - keras_epsilon, 0.0)
    gamma = gamma * np.sqrt(variance + keras_epsilon) / sigma  # 1 unless sigma < sqrt(epsilon)
    return [gamma.astype(np.float32), beta, mean, variance.astype(np.float32)]


def _assign(net: DagNN, layers: dict, mapping: dict[str, str], face_scale_layer: str | None = None) -> None:
    """Set each of our layers ({name: layer}) from its DagNN layer."""
    import keras

    for ours, theirs in mapping.items():
        target, layer = layers[ours], net.layer(theirs)
        if isinstance(target, keras.layers.BatchNormalization):
            values = _bn_weights(net, layer, target.gamma.shape[0], target.epsilon)
        else:
            values = _conv_weights(net, layer, tuple(target.kernel.shape))
            if ours == face_scale_layer:
                values[0] = values[0] * np.float32(FACE_SCALE)
        target.set_weights(values)


def _layers_by_name(model) -> dict:
    """Every layer of a model and of the models nested in it (the generator nests three), by name."""
    import keras

    found, stack = {}, [model]
    while stack:
        for layer in stack.pop().layers:
            found[layer.name] = layer
            if isinstance(layer, keras.Model):
                stack.append(layer)
    return found


def import_generator(path):
    """The Keras generator of a DagNN v201 file (5 identity images, or 1 when conv1_face reads 3 channels).

    Returns (model, its ModelConfig, the names of the file's layers that were skipped)."""
    from keras_speech2vid.models.generator import build_generator

    net = read_dagnn(path)
    conv1 = net.layer("conv1_face")
    if conv1 is None:
        raise WeightsError(f"{net.path}: layer 'conv1_face' missing (not a Speech2Vid generator)")
    if not conv1.params or conv1.params[0] not in net.params:
        raise WeightsError(f"{net.path}: layer 'conv1_face' has no filter parameter")
    channels = net.params[conv1.params[0]].shape[2] if net.params[conv1.params[0]].ndim == 4 else 0
    if channels not in (3, 15):
        raise WeightsError(f"{net.path}: conv1_face reads {channels} channels, expected 15 (5 faces) or 3 (1 face)")
    expected = generator_layers()
    mapping = _check_layers(net, expected, {"input_audio": "input_audio", "input_face": "input_face"})
    if net.layer("sigmoid5_3").outputs != ["prediction"]:
        raise WeightsError(f"{net.path}: layer 'sigmoid5_3' does not write 'prediction'")
    config = get_config("paper" if channels == 15 else "paper_1img")
    model = build_generator(config)
    _assign(net, _layers_by_name(model), mapping, face_scale_layer="face_conv1")
    return model, config, skipped_layers(net, expected)


def import_deblurrer(path):
    """The Keras deblurrer of a DagNN v114 file. Returns (model, its ModelConfig, skipped layer names)."""
    from keras_speech2vid.models.deblurrer import build_deblurrer

    net = read_dagnn(path)
    first = net.layer("supr0")
    if first is None:
        raise WeightsError(f"{net.path}: layer 'supr0' missing (not a Speech2Vid deblurrer)")
    expected = deblurrer_layers()
    mapping = _check_layers(net, expected, {"input": first.inputs[0] if first.inputs else "input"})
    config = get_config("paper")
    model = build_deblurrer(config)
    _assign(net, _layers_by_name(model), mapping)
    return model, config, skipped_layers(net, expected)


def import_matconvnet(generator_path, deblurrer_path, out_dir):
    """Write a weights folder from the authors' v201 (and v114) files; returns its manifest path.

    Arrays are stored as float32 (the files' precision), so the folder gives the original's outputs.
    """
    from keras_speech2vid.io import sha256
    from keras_speech2vid.weights import save_weights_dir

    generator, config, gen_skipped = import_generator(generator_path)
    models = {"generator": ("generator", generator, config)}
    details = {"generator": {"source": Path(generator_path).name, "source_sha256": sha256(generator_path),
                             "skipped_layers": gen_skipped}}
    if deblurrer_path is not None:
        deblurrer, deblurrer_config, deb_skipped = import_deblurrer(deblurrer_path)
        models["deblurrer"] = ("deblurrer", deblurrer, deblurrer_config)
        details["deblurrer"] = {"source": Path(deblurrer_path).name, "source_sha256": sha256(deblurrer_path),
                                "skipped_layers": deb_skipped}
    convention = ("faces in [0, 1]: face_conv1's filter is the original's x 255 (it fed 0-255 pixels); MFCC raw, "
                  "as the original; output in [0, 1]")
    return save_weights_dir(out_dir, models, extra={"imported_from": "MatConvNet DagNN (Chung et al., BMVC 2017)",
                                                    "input_convention": convention},
                            details=details, full_precision=True)
