"""Read a MatConvNet DagNN network saved as a MATLAB `.mat` file, without MATLAB and without running code.

A DagNN is saved as its `saveobj` struct (`save(f, '-struct', 'net')`, or as one struct variable):

    layers  struct array: name, type ('dagnn.Conv', …), inputs, outputs, params (cells of names), block
    params  struct array: name, value (the array, MATLAB layout: a conv filter is H×W×Cin×Cout)
    vars    struct array: name, …;  meta: anything

MATLAB v5/v7 files are read with `scipy.io.loadmat`, v7.3 files (HDF5) with h5py: a numeric dataset
holds the MATLAB array with its axes reversed, a char array is uint16, a cell is a dataset of object
references, and a struct array is a group whose fields are datasets of references (a scalar struct
holds its fields directly). Neither reader unpickles or evaluates anything: MATLAB objects, function
handles and sparse arrays are refused.

NumPy, SciPy and h5py only: this module knows nothing of Keras or of Speech2Vid (`matconvnet_import` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keras_speech2vid.errors import WeightsError


@dataclass
class DagLayer:
    name: str
    type: str
    inputs: list[str]
    outputs: list[str]
    params: list[str]
    block: dict = field(default_factory=dict)


@dataclass
class DagNN:
    """The layers in file order and the parameter values by name."""

    path: Path
    layers: list[DagLayer]
    params: dict[str, np.ndarray]

    def layer(self, name: str) -> DagLayer | None:
        return next((layer for layer in self.layers if layer.name == name), None)


def read_dagnn(path) -> DagNN:
    """Read `path` (MATLAB v5, v7 or v7.3) as a DagNN.

    Raises:
      WeightsError: the file is missing or unreadable, is not a MATLAB file, or holds no DagNN
        (named: what is missing).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    import h5py

    try:
        top = _read_hdf5(path) if h5py.is_hdf5(path) else _read_v5(path)
    except WeightsError:
        raise
    except Exception as e:  # noqa: BLE001 - every parser failure means an unusable file
        raise WeightsError(f"{path}: not a readable MATLAB file ({type(e).__name__}: {e})") from None
    net = _find_net(path, top)
    try:
        params = {}
        for p in _struct_list(net["params"]):
            value = p.get("value")
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
                raise WeightsError(f"{path}: parameter {_text(p.get('name'))!r} has no numeric value")
            params[_text(p["name"])] = value.astype(np.float32)
        layers = [DagLayer(name=_text(entry["name"]), type=_text(entry["type"]), inputs=_names(entry.get("inputs")),
                           outputs=_names(entry.get("outputs")), params=_names(entry.get("params")),
                           block=entry.get("block") if isinstance(entry.get("block"), dict) else {})
                  for entry in _struct_list(net["layers"])]
    except (KeyError, TypeError) as e:
        raise WeightsError(f"{path}: not a DagNN network (layers or params lack the field {e})") from None
    return DagNN(path, layers, params)


def _find_net(path: Path, top: dict) -> dict:
    if "layers" in top and "params" in top:
        return top
    nets = [v for v in top.values() if isinstance(v, dict) and "layers" in v and "params" in v]
    if len(nets) == 1:
        return nets[0]
    if any(isinstance(v, list) and v and isinstance(v[0], dict) and "weights" in v[0] for v in top.values()) or \
            any(isinstance(v, dict) and "layers" in v for v in top.values()):
        raise WeightsError(f"{path}: a MatConvNet SimpleNN network, not a DagNN (no 'params' struct)")
    raise WeightsError(f"{path}: not a DagNN network (no 'layers' and 'params' structs; variables: "
                       f"{', '.join(sorted(top)) or 'none'})")


def _struct_list(value) -> list[dict]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    raise TypeError("'struct'")


def _text(value) -> str:
    if isinstance(value, str):
        return value
    raise TypeError("'name' (a string)")


def _names(value) -> list[str]:
    """A cell of strings (or one string, or an empty array) as a list."""
    if value is None or (isinstance(value, np.ndarray) and value.size == 0):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [_text(v) for v in value]
    raise TypeError("'inputs/outputs/params' (cells of strings)")


# --- MATLAB v5/v7 (scipy) --------------------------------------------------------------------------------

def _read_v5(path: Path) -> dict:
    try:
        import scipy.io
    except ImportError:
        raise WeightsError(f"{path}: reading a MATLAB v5/v7 file needs scipy "
                           f"(pip install keras_speech2vid[matconvnet])") from None

    try:
        raw = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=True, chars_as_strings=True,
                               mat_dtype=False)
    except NotImplementedError as e:  # a v7.3 file that h5py did not recognise
        raise WeightsError(f"{path}: unsupported MATLAB file ({e})") from None
    except ValueError as e:
        raise WeightsError(f"{path}: not a MATLAB file ({e})") from None
    return {k: _from_v5(path, v) for k, v in raw.items() if not k.startswith("__")}


def _from_v5(path: Path, value):
    if isinstance(value, np.ndarray):
        if value.dtype.names:  # a struct array: a record array
            items = [{n: _from_v5(path, rec[n]) for n in value.dtype.names} for rec in value.ravel(order="F")]
            return items[0] if value.size == 1 else items
        if value.dtype.kind in "US":
            return "".join(str(s) for s in value.ravel(order="F"))
        if value.dtype == object:  # a cell array
            return [_from_v5(path, v) for v in value.ravel(order="F")]
        if value.dtype.kind in "fiub":
            return value
    if isinstance(value, str):
        return value
    raise WeightsError(f"{path}: holds a MATLAB {type(value).__name__} value, which is not read (objects, "
                       f"function handles and sparse arrays are refused)")


# --- MATLAB v7.3 (HDF5) -------------------------------------------------------------------------------------

def _read_hdf5(path: Path) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        return {k: _from_hdf5(path, f, f[k]) for k in f if not k.startswith("#")}


def _from_hdf5(path: Path, f, node):
    import h5py

    cls = node.attrs.get("MATLAB_class", b"")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    if isinstance(node, h5py.Group):
        if cls not in ("struct", ""):
            raise WeightsError(f"{path}: {node.name} is a MATLAB {cls!r} object, which is not read")
        fields = [k for k in node if not k.startswith("#")]
        # a struct array: every field is a dataset of references without a MATLAB class (one per element)
        arrays = [k for k in fields if isinstance(node[k], h5py.Dataset) and node[k].dtype == h5py.ref_dtype
                  and "MATLAB_class" not in node[k].attrs]
        if fields and len(arrays) == len(fields):
            refs = {k: node[k][()].ravel() for k in fields}  # reversed axes: C order = MATLAB's order
            count = len(next(iter(refs.values())))
            return [{k: _from_hdf5(path, f, f[refs[k][i]]) for k in fields} for i in range(count)]
        return {k: _from_hdf5(path, f, node[k]) for k in fields}
    if node.attrs.get("MATLAB_empty", 0):
        return "" if cls == "char" else np.zeros((0,), np.float32)
    if cls == "cell":
        return [_from_hdf5(path, f, f[ref]) for ref in node[()].ravel()]
    data = node[()]
    if cls == "char":
        return "".join(chr(c) for c in np.asarray(data).ravel())
    if cls in ("function_handle", "sparse") or node.attrs.get("MATLAB_sparse") is not None or \
            not isinstance(data, np.ndarray) or data.dtype.kind not in "fiub":
        raise WeightsError(f"{path}: {node.name} is a MATLAB {cls or 'unknown'} value, which is not read")
    return np.asarray(data).T  # back to MATLAB's axis order
