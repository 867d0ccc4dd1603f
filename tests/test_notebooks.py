"""The Colab notebooks use only real commands and the public API, with arguments that parse."""

import ast
import inspect
import json
import re
import shlex
from pathlib import Path

import pytest

import keras_speech2vid
from keras_speech2vid.cli import build_parser

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "colab").glob("*.ipynb"))


def code_cells(path):
    nb = json.loads(path.read_text())
    assert nb["nbformat"] == 4
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"speech2vid_demo.ipynb", "speech2vid_train.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cli_calls_parse(path):
    calls = [ln[len("!speech2vid "):] for cell in code_cells(path) for ln in cell.splitlines()
             if ln.startswith("!speech2vid ")]
    assert calls
    for call in calls:
        argv = shlex.split(re.sub(r"\{\w+\}", "X", call))
        build_parser().parse_args(argv)  # SystemExit on an unknown command or option


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_python_cells_use_the_public_api(path):
    for cell in code_cells(path):
        python = "\n".join(ln for ln in cell.splitlines() if not ln.lstrip().startswith(("!", "%")))
        tree = ast.parse(python)  # a syntax error fails here
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "keras_speech2vid":
                for alias in node.names:
                    assert alias.name in keras_speech2vid.__all__, alias.name
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                    "generate_video", "generate", "redub"):
                method = getattr(keras_speech2vid.Speech2Vid, node.func.attr)
                inspect.signature(method).bind(None, *[None] * len(node.args),
                                               **{k.arg: None for k in node.keywords})
