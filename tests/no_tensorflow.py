"""Run the `speech2vid` CLI in a process that cannot import TensorFlow, as on the GPU machine.

    python -m tests.no_tensorflow train --backend jax ...

`block()` installs the import hook; `backend_step` uses it too.
"""

import sys


class NoTensorFlow:
    """An import hook that refuses TensorFlow, as on a machine without it (sys.modules stays clean)."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError(f"No module named {name!r} (blocked: this process must not need TensorFlow)")
        return None


def block() -> None:
    if not any(isinstance(hook, NoTensorFlow) for hook in sys.meta_path):
        sys.meta_path.insert(0, NoTensorFlow())


if __name__ == "__main__":
    block()
    from keras_speech2vid.cli import main

    code = main(sys.argv[1:])
    assert "tensorflow" not in sys.modules, "TensorFlow was imported"
    sys.exit(code)
