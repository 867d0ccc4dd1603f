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


def parameters(path) -> dict:
    """The notebook's defaults: the assignments of its cell tagged "parameters"."""
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    values = {}
    exec("".join(cell["source"]), {}, values)  # literal assignments of our own notebook
    return values


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"speech2vid_demo.ipynb", "speech2vid_train.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cli_calls_parse(path):
    calls = [ln[len("!speech2vid "):] for cell in code_cells(path) for ln in cell.splitlines()
             if ln.startswith("!speech2vid ")]
    assert calls
    values = parameters(path)
    for call in calls:
        argv = shlex.split(re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), "X")), call))
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


# -- executed, as on Colab but on small inputs (nbclient and a local kernel)

def _demo_parameters(work):
    import shutil

    from tests.conftest import DATA

    for name in ("obama.jpg", "tmp.wav", "vox2_00086_man_suit_red_bg.mp4"):
        shutil.copy(DATA / name, work / name)
    return {"FACES": ["obama.jpg"], "SPEECH": "tmp.wav", "VIDEO": "vox2_00086_man_suit_red_bg.mp4"}


def _train_parameters(work):
    import shutil

    from tests.conftest import CLIPS

    (work / "videos").mkdir()
    for clip in CLIPS:
        shutil.copy(clip, work / "videos" / clip.name)
    return {"VIDEOS": "videos", "RUN": "runs", "PRESET": "tiny", "BATCH": 4, "STEPS": 2, "EPOCHS": 1,
            "DEBLUR_EPOCHS": 1, "MAX_SECONDS": 2}


def _check_demo(work):
    from keras_speech2vid import io

    for name in ("demo.mp4", "out.mp4", "dubbed.mp4"):
        info = io.probe(work / name)
        assert info.has_video and info.has_audio, name


def _check_train(work):
    assert (work / "runs" / "generator" / "generator.keras").is_file()
    assert (work / "runs" / "eval" / "report.json").is_file()
    assert (work / "runs" / "export" / "speech2vid" / "1" / "saved_model.pb").is_file()


EXECUTED = {"speech2vid_demo.ipynb": (_demo_parameters, _check_demo),
            "speech2vid_train.ipynb": (_train_parameters, _check_train)}


@pytest.mark.parametrize("name", [pytest.param("speech2vid_demo.ipynb"),
                                  pytest.param("speech2vid_train.ipynb", marks=pytest.mark.slow)])
def test_notebook_executes_on_small_inputs(name, tmp_path):
    pytest.importorskip("nbclient")
    from tests.helpers import execute_notebook

    make_parameters, check = EXECUTED[name]
    execute_notebook(Path(__file__).resolve().parents[1] / "colab" / name, make_parameters(tmp_path), tmp_path)
    check(tmp_path)


def test_a_failing_command_fails_the_executed_notebook(tmp_path):
    pytest.importorskip("nbclient")
    import nbclient
    import nbformat

    from tests.helpers import execute_notebook

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("!speech2vid generate --face none.jpg "
                                                                   "--audio none.wav --outfile o.mp4")])
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="failed"):
        execute_notebook(path, {}, tmp_path)


def test_every_notebook_is_executed():
    assert set(EXECUTED) == {p.name for p in NOTEBOOKS}
