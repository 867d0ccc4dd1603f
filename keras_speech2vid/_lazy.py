"""Names a package offers but imports on first use (so that importing it starts neither TF nor Keras)."""

import importlib


def lazy_getattr(package: str, table: dict[str, str], namespace: dict):
    """A module `__getattr__` for `package`: name → the module in `table` that defines it, cached in `namespace`."""

    def __getattr__(name):
        if name in table:
            value = getattr(importlib.import_module(table[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
