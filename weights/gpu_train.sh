#!/usr/bin/env bash
# Train the generator on a GPU machine that has JAX but no TensorFlow and no Keras (see weights/README.md,
# "Training on the GPU machine"). Run from the repository root there:
#
#   bash weights/gpu_train.sh ARRAYS_DIR RUN_DIR OUT_DIR [speech2vid train options...]
#
# ARRAYS_DIR: chunks from `speech2vid export-arrays`; RUN_DIR: the run (resumes from its checkpoint);
# OUT_DIR: where the weights folder goes, in files under 14 MiB (the machine returns files under 16 MiB).
# Wheels in .whl/ (from weights/gpu_wheels.sh) are installed first; $PYTHON picks the interpreter.
set -euo pipefail
arrays=$1 run=$2 out=$3
shift 3
python=${PYTHON:-python3}
if compgen -G ".whl/*.whl" > /dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
"$python" -c "import jax; print('devices:', jax.devices())"
"$python" -m keras_speech2vid.cli train --backend jax --data "$arrays" --out "$run" "$@"
"$python" -m keras_speech2vid.cli pack-weights "$run" --out "$out/weights" --max-file-mib 14
cp "$run/log.csv" "$run/run.json" "$out/"
