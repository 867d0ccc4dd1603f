#!/usr/bin/env bash
# Download the wheels the GPU machine lacks (Keras and two of its needs; it has JAX, NumPy, OpenCV, h5py,
# rich, absl-py, ml-dtypes) into .whl/, ignored by git, for `carry` (see weights/README.md). Run here.
set -euo pipefail
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
keras=$(python3 -c "import importlib.metadata as m; print(m.version('keras'))")
for wheel in "keras==$keras" namex optree; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$wheel"
done
ls -la .whl
