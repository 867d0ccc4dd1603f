"""Export the generator and the deblurrer to ONNX with tf2onnx, and check them in onnxruntime.

Files: ``OUT/generator.onnx`` (inputs ``mfcc`` (B, 12, 35, 1), ``identity`` (B, 112, 112, C); output
``frame`` (B, 109, 109, 3)) and ``OUT/deblurrer.onnx`` (input ``image`` (B, 109, 109, 3); output
``deblurred`` (B, 109, 109, 3)), float32, dynamic batch, opset 17 by default. The MFCC front end stays
outside: compute the windows with `keras_speech2vid.audio.audio_windows` (its RFFT/complex-abs ops have no
tf2onnx conversion).

What tf2onnx 1.17 needs with Keras 3 / TF 2.21 / numpy 2 (measured here):

* `tf2onnx.convert.from_keras` does not work on these models: it feeds the inputs positionally in its own
  order, and the generator takes a dict, so Keras rejects the call ("Input 0 with name 'identity' ... found
  shape=(None, 12, 35)"). `tf2onnx.convert.from_function` on a `tf.function` with a named
  ``input_signature`` (batch None) converts both models; that is what `keras_to_onnx` does.
* The einsum-based `UpSamp2` converts to ONNX ``Einsum`` (opset >= 12), `SilenceMask`'s reduce-all /
  max-pool and the deblurrer's clipping ReLU convert as they are; no custom op handlers.
* No numpy-2 workaround was needed with tf2onnx 1.17.0 and numpy 2.x.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_speech2vid.errors import Speech2VidError
from keras_speech2vid.inference.int8_engine import onnx_session

DEFAULT_OPSET = 17
#: Largest |onnxruntime − Keras| accepted by `export_onnx`'s check.
ATOL = 1e-4


def _input_specs(model: keras.Model) -> list[tf.TensorSpec]:
    """Named float32 TensorSpecs with a dynamic batch, one per model input, in `model.inputs` order."""
    if isinstance(model.input, dict):
        items = list(model.input.items())
    else:
        items = [(t.name, t) for t in model.inputs]
    return [tf.TensorSpec((None, *t.shape[1:]), tf.float32, name=name) for name, t in items]


def keras_to_onnx(model: keras.Model, path, *, opset: int = DEFAULT_OPSET, output_name: str | None = None) -> Path:
    """Convert a Keras functional model to ONNX at `path` (written atomically); return the path.

    Inputs keep the names of the model's `keras.Input`s (dict keys for dict-input models); outputs keep
    the model's dict keys, or are called `output_name` for a single-tensor output.
    """
    specs = _input_specs(model)
    dict_input = isinstance(model.input, dict)

    def call(*args):
        inputs = {s.name: a for s, a in zip(specs, args)} if dict_input else args[0]
        outputs = model(inputs, training=False)
        if isinstance(outputs, dict):
            return dict(outputs)
        return {output_name or "output": outputs}

    return function_to_onnx(call, specs, path, what=model.name, opset=opset)


def function_to_onnx(call, specs: list[tf.TensorSpec], path, *, what: str, opset: int = DEFAULT_OPSET) -> Path:
    """Convert `call` (named float32 `specs` in, a dict of tensors out) to ONNX at `path`, atomically.

    A spec whose first dimension is None becomes the dynamic ``batch`` dimension of the file.
    """
    import tf2onnx

    path = Path(path)
    function = tf.function(call, input_signature=specs)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=opset)
    except Exception as e:  # noqa: BLE001 - tf2onnx raises many kinds; report one line
        raise Speech2VidError(f"{path}: ONNX conversion of {what} failed ({type(e).__name__}: "
                              f"{str(e).strip().splitlines()[-1] if str(e).strip() else ''})") from e
    dynamic = {s.name for s in specs if s.shape[0] is None}
    for value in proto.graph.input:
        if value.name in dynamic:
            value.type.tensor_type.shape.dim[0].dim_param = "batch"  # tf2onnx names it unk__NNN
    if dynamic:
        for value in proto.graph.output:
            value.type.tensor_type.shape.dim[0].dim_param = "batch"
    from keras_speech2vid.io import atomic_path

    with atomic_path(path, suffix=".tmp") as tmp:  # the one atomic writer: it also gives the usual file mode
        tmp.write_bytes(proto.SerializeToString())
    return path


def sample_inputs(model: keras.Model, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Test inputs for `model`, keyed by input name: images uniform in [0, 1]; MFCC windows with the
    spread of real ones (std ≈ 10) and a few silent (all-zero) columns, so `SilenceMask` is exercised."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for spec in _input_specs(model):
        shape = (batch, *spec.shape[1:])
        if spec.name == "mfcc":
            x = rng.normal(0.0, 10.0, shape).astype(np.float32)
            x[:, :, :3] = 0.0  # leading silence, as at the start of a padded clip
        else:
            x = rng.uniform(0.0, 1.0, shape).astype(np.float32)
        inputs[spec.name] = x
    return inputs


def max_abs_diff(model: keras.Model, path, batch_sizes=(1, 7), seed: int = 0) -> float:
    """Largest |onnxruntime − Keras| over random inputs at each batch size."""
    session = onnx_session(path)
    worst = 0.0
    for i, batch in enumerate(batch_sizes):
        inputs = sample_inputs(model, batch, seed + i)
        expected = model(inputs if isinstance(model.input, dict) else next(iter(inputs.values())), training=False)
        expected = next(iter(expected.values())) if isinstance(expected, dict) else expected
        (got,) = session.run(None, inputs)
        worst = max(worst, float(np.max(np.abs(got - keras.ops.convert_to_numpy(expected)))))
    return worst


def export_onnx(generator: keras.Model, out_dir, deblurrer: keras.Model | None = None, *,
                opset: int = DEFAULT_OPSET, validate: bool = True, batch_sizes=(1, 3),
                atol: float = ATOL) -> dict[str, dict]:
    """Write ``generator.onnx`` (and ``deblurrer.onnx``) into `out_dir`, checked in onnxruntime.

    Returns ``{"generator": {"path": Path, "max_abs_diff": float | None}, "deblurrer": {...}}``. With
    `validate`, each file is run at `batch_sizes` on random inputs and compared with Keras; a difference
    above `atol` raises `Speech2VidError` (and the file is left for inspection).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models = {"generator": (generator, "frame")}
    if deblurrer is not None:
        models["deblurrer"] = (deblurrer, "deblurred")
    results = {}
    for key, (model, output_name) in models.items():
        path = keras_to_onnx(model, out_dir / f"{key}.onnx", opset=opset, output_name=output_name)
        diff = max_abs_diff(model, path, batch_sizes) if validate else None
        if diff is not None and not diff <= atol:
            raise Speech2VidError(f"{path}: onnxruntime differs from Keras by {diff:.3g} (> {atol:g})")
        results[key] = {"path": path, "max_abs_diff": diff}
    return results
