"""Synthetic MatConvNet DagNN networks for the importer's tests: the v201 and v114 layer lists with random
parameters of the real shapes, writers for MATLAB v5/v7 (scipy) and v7.3 (HDF5, MATLAB's layout), and an
independent NumPy forward pass of a DagNN (float64) written from MatConvNet's layer definitions
(spec §2.0-2.5, §3), not from the importer.

Parameters are named as MatConvNet's `fromSimpleNN` names them (`<layer>f`, `<layer>b`; BatchNorm
`<layer>m`, `<layer>b`, `<layer>x`), so nothing depends on the names the authors chose. BatchNorm moments are
calibrated on the given inputs (their batch statistics, perturbed), so activations keep a useful scale
through the random network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
BN_EPS = 1e-5


def _ints(text):
    return None if text == "-" else [int(v) for v in text.split(",")]


def v201_layers() -> list[dict]:
    """v201's layers as listed in tests/data/v201_layers.tsv (the training-only trunk and losses included)."""
    layers = []
    for line in (DATA / "v201_layers.tsv").read_text().splitlines():
        if line.startswith("#"):
            continue
        name, kind, inputs, outputs, pad, stride, kernel = line.split("\t")
        layers.append({"name": name, "type": "dagnn." + kind, "inputs": inputs.split(","), "outputs": [outputs],
                       "pad": _ints(pad), "stride": _ints(stride), "kernel": _ints(kernel)})
    return layers


def v114_layers(width=64, depth=10) -> list[dict]:
    """v114 (spec §3): supr0..supr9 3x3 convs, pad 1, ReLU resr0..resr8; its output is the residual."""
    layers, src = [], "input_lip"
    for i in range(depth):
        cin, cout = (3 if i == 0 else width), (3 if i == depth - 1 else width)
        layers.append({"name": f"supr{i}", "type": "dagnn.Conv", "inputs": [src], "outputs": [f"sup{i}"],
                       "pad": [1, 1, 1, 1], "stride": [1, 1], "kernel": [3, 3, cin, cout]})
        src = f"sup{i}"
        if i < depth - 1:
            layers.append({"name": f"resr{i}", "type": "dagnn.ReLU", "inputs": [src], "outputs": [f"res{i}"]})
            src = f"res{i}"
    layers.append({"name": "loss_SR", "type": "dagnn.Loss", "inputs": [src, "label"], "outputs": ["objective"]})
    return layers


def add_parameters(layers, rng, channels_of, last_scale=1.0):
    """Give every Conv and BatchNorm layer its parameter names and random values (He-scaled filters).
    `channels_of` maps a BatchNorm layer to its channel count. Returns {param name: value}."""
    params = {}
    convs = [layer for layer in layers if layer["type"] == "dagnn.Conv"]
    for layer in layers:
        if layer["type"] == "dagnn.Conv":
            h, w, cin, cout = layer["kernel"]
            f = rng.normal(0.0, np.sqrt(2.0 / (h * w * cin)), (h, w, cin, cout))
            if layer is convs[-1]:
                f *= last_scale
            layer["params"] = [layer["name"] + "f", layer["name"] + "b"]
            params[layer["name"] + "f"] = f.astype(np.float32)
            params[layer["name"] + "b"] = rng.normal(0.0, 0.05, (1, cout)).astype(np.float32)
        elif layer["type"] == "dagnn.BatchNorm":
            c = channels_of[layer["name"]]
            layer["params"] = [layer["name"] + s for s in "mbx"]
            params[layer["name"] + "m"] = rng.uniform(0.5, 1.5, (c, 1)).astype(np.float32)
            params[layer["name"] + "b"] = rng.normal(0.0, 0.1, (c, 1)).astype(np.float32)
            params[layer["name"] + "x"] = np.stack([np.zeros(c), np.ones(c)], 1).astype(np.float32)  # calibrated later
        else:
            layer["params"] = []
    return params


def bn_channels(layers) -> dict[str, int]:
    """Each BatchNorm's channel count: that of the conv that writes its input."""
    out_of = {layer["outputs"][0]: layer for layer in layers}
    return {layer["name"]: out_of[layer["inputs"][0]]["kernel"][3] for layer in layers
            if layer["type"] == "dagnn.BatchNorm"}


# --- the NumPy forward pass ---------------------------------------------------------------------------------

def _conv(x, f, b, pad, stride):
    t, bo, l, r = pad
    x = np.pad(x, ((0, 0), (t, bo), (l, r), (0, 0)))
    kh, kw = f.shape[:2]
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride[0], ::stride[1]]
    # win: (N, Ho, Wo, Cin, kh, kw); cross-correlation with f (kh, kw, Cin, Cout)
    return np.tensordot(win, f.astype(np.float64), axes=([3, 4, 5], [2, 0, 1])) + b.reshape(-1)


def _pool(x, size, pad, stride):
    t, bo, l, r = pad  # MatConvNet clips the window to the image: padding never wins the max
    x = np.pad(x, ((0, 0), (t, bo), (l, r), (0, 0)), constant_values=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(x, tuple(size), axis=(1, 2))[:, ::stride[0], ::stride[1]]
    return win.max(axis=(4, 5))


def _upsamp2(x):
    """x2 bilinear, align corners: output i samples input position i (H-1)/(2H-1); 1 pixel is replicated."""
    for axis in (1, 2):
        n = x.shape[axis]
        if n == 1:
            x = np.repeat(x, 2, axis=axis)
            continue
        out = []
        for i in range(2 * n):
            pos = i * (n - 1) / (2 * n - 1)
            lo = min(int(np.floor(pos)), n - 2)
            frac = pos - lo
            out.append((1 - frac) * np.take(x, lo, axis=axis) + frac * np.take(x, lo + 1, axis=axis))
        x = np.stack(out, axis=axis)
    return x


def forward(layers, params, inputs: dict[str, np.ndarray], calibrate_rng=None) -> dict[str, np.ndarray]:
    """Run the DagNN layers in file order on `inputs` {var: (N, H, W, C)}; returns every variable.

    Layers whose inputs are absent (the training-only trunk without `input_lip`, the losses) are skipped.
    With `calibrate_rng`, each BatchNorm's moments are first set to its input's statistics (x 0.8-1.25;
    sigma at least 0.3 x the layer's overall std)."""
    v = {k: np.asarray(a, np.float64) for k, a in inputs.items()}
    for layer in layers:
        if not all(i in v for i in layer["inputs"]) or layer["type"] == "dagnn.Loss":
            continue
        x = [v[i] for i in layer["inputs"]]
        p = [params[n] for n in layer.get("params", [])]
        kind = layer["type"]
        if kind == "dagnn.Conv":
            y = _conv(x[0], p[0], p[1], layer["pad"], layer["stride"])
        elif kind == "dagnn.BatchNorm":
            if calibrate_rng is not None:
                mu, sd = x[0].mean(axis=(0, 1, 2)), np.sqrt(x[0].var(axis=(0, 1, 2)) + BN_EPS)
                sd = np.maximum(sd, 0.3 * x[0].std())  # few samples at 1x1 (fc6, fc7): no near-zero sigma
                c = mu.size
                p[2][:] = np.stack([mu + 0.1 * sd * calibrate_rng.normal(size=c),
                                    sd * calibrate_rng.uniform(0.8, 1.25, c)], 1)
            mu, sigma = p[2][:, 0], p[2][:, 1]
            y = p[0].reshape(-1) * (x[0] - mu) / sigma + p[1].reshape(-1)
        elif kind == "dagnn.ReLU":
            y = np.maximum(x[0], 0.0)
        elif kind == "dagnn.Pooling":
            y = _pool(x[0], layer["kernel"][:2], layer["pad"], layer["stride"])
        elif kind == "dagnn.Concat":
            y = np.concatenate(x, axis=-1)
        elif kind == "dagnn.UpSamp2":
            y = _upsamp2(x[0])
        elif kind == "dagnn.Sigmoid":
            y = 1.0 / (1.0 + np.exp(-x[0]))
        else:
            raise AssertionError(f"no reference for {kind}")
        v[layer["outputs"][0]] = y
    return v


# --- writers ---------------------------------------------------------------------------------------------------

def _block(layer) -> dict:
    if layer["type"] == "dagnn.Conv":
        return {"size": np.array(layer["kernel"], float)[None], "hasBias": np.array([[True]]),
                "pad": np.array(layer["pad"], float)[None], "stride": np.array(layer["stride"], float)[None],
                "dilate": np.array([[1.0, 1.0]]), "opts": []}
    if layer["type"] == "dagnn.Pooling":
        return {"method": "max", "poolSize": np.array(layer["kernel"][:2], float)[None],
                "pad": np.array(layer["pad"], float)[None], "stride": np.array(layer["stride"], float)[None],
                "opts": []}
    if layer["type"] == "dagnn.BatchNorm":
        return {"numChannels": np.array([[0.0]]), "epsilon": np.array([[BN_EPS]]), "opts": []}
    return {}


def write_v5(path, layers, params, wrap=False):
    """MATLAB v5 file as `save(path, '-struct', 'net')` writes it (or, with `wrap`, one variable `net`)."""
    import scipy.io

    def cell(items):
        out = np.empty((1, len(items)), dtype=object)
        for i, s in enumerate(items):
            out[0, i] = s
        return out

    def struct_array(rows, fields):
        arr = np.zeros((1, len(rows)), dtype=[(f, object) for f in fields])
        for i, row in enumerate(rows):
            for f in fields:
                arr[0, i][f] = row[f]
        return arr

    lay = struct_array([{"name": la["name"], "type": la["type"], "inputs": cell(la["inputs"]),
                         "outputs": cell(la["outputs"]), "params": cell(la.get("params", [])),
                         "block": _block(la) or np.zeros((0, 0))} for la in layers],
                       ["name", "type", "inputs", "outputs", "params", "block"])
    par = struct_array([{"name": n, "value": v, "learningRate": 1.0, "weightDecay": 1.0} for n, v in params.items()],
                       ["name", "value", "learningRate", "weightDecay"])
    var_names = sorted({o for la in layers for o in la["outputs"]})
    vars_ = struct_array([{"name": n, "precious": False} for n in var_names], ["name", "precious"])
    net = {"layers": lay, "params": par, "vars": vars_, "meta": {"normalization": {"imageSize": [112.0, 112.0]}}}
    scipy.io.savemat(path, {"net": net} if wrap else net)
    return Path(path)


def write_v73(path, layers, params):
    """MATLAB v7.3 (HDF5) file in MATLAB's layout: a 512-byte header block, struct arrays as groups of
    reference datasets into #refs#, arrays with their axes reversed, chars as uint16."""
    import h5py

    path = Path(path)
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        count = [0]

        def klass(node, name):
            node.attrs["MATLAB_class"] = np.bytes_(name)

        def put(value):
            """Write a value into #refs#, return its reference."""
            count[0] += 1
            name = f"r{count[0]}"
            return write(refs, name, value).ref

        def write(group, name, value):
            if isinstance(value, dict):
                g = group.create_group(name)
                klass(g, "struct")
                for k, item in value.items():
                    write(g, k, item)
                return g
            if isinstance(value, str):
                if not value:
                    d = group.create_dataset(name, data=np.array([0, 0], np.uint64))
                    d.attrs["MATLAB_empty"] = np.uint8(1)
                else:
                    d = group.create_dataset(name, data=np.array([[ord(c)] for c in value], np.uint16))
                klass(d, "char")
                return d
            if isinstance(value, list):  # a 1xN cell
                data = np.array([[put(item)] for item in value], dtype=h5py.ref_dtype).reshape(len(value), 1)
                if not value:
                    d = group.create_dataset(name, data=np.array([0, 0], np.uint64))
                    d.attrs["MATLAB_empty"] = np.uint8(1)
                else:
                    d = group.create_dataset(name, data=data)
                klass(d, "cell")
                return d
            arr = np.asarray(value)
            if arr.ndim < 2:
                arr = arr.reshape(1, -1)
            d = group.create_dataset(name, data=(arr.astype(np.uint8) if arr.dtype == bool else arr).T)
            klass(d, {"float32": "single", "float64": "double", "bool": "logical"}.get(arr.dtype.name, arr.dtype.name))
            return d

        def struct_array(name, rows):
            g = f.create_group(name)
            klass(g, "struct")
            for field in rows[0]:
                g.create_dataset(field, data=np.array([[put(r[field])] for r in rows], dtype=h5py.ref_dtype))
            return g

        struct_array("layers", [{"name": la["name"], "type": la["type"], "inputs": la["inputs"],
                                 "outputs": la["outputs"], "params": la.get("params", []),
                                 "block": _block(la) or np.zeros((0, 0))} for la in layers])
        struct_array("params", [{"name": n, "value": v, "learningRate": np.float64(1.0)} for n, v in params.items()])
        struct_array("vars", [{"name": n} for n in sorted({o for la in layers for o in la["outputs"]})])
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Dec  7 00:00:00 2026 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(128, b" "))
    return path
