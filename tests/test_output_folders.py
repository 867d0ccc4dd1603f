"""Issue 21.5: every folder output (`--out`, `--outdir`) is checked before any work: a file in its place, a name
too long or a folder that cannot be written is one line naming the path, exit 2, and nothing is written."""

import os

import pytest

from keras_speech2vid.cli import main
from tests.conftest import DATA

COMMANDS = {
    "prepare": ["prepare", str(DATA / "grid_bbaf2n_man_denim.mpg"), "--out", "{out}"],
    "export": ["export", "--out", "{out}"],
    "align": ["align", str(DATA / "obama.jpg"), "--outdir", "{out}"],
    "evaluate": ["evaluate", "--clips", str(DATA / "grid_bbaf2n_man_denim.mpg"), "--outdir", "{out}"],
    "export-arrays": ["export-arrays", "{data}", "--out", "{out}"],
    "train": ["train", "--data", "{data}", "--out", "{out}", "--preset", "tiny"],
    "train-syncnet": ["train-syncnet", "--data", "{data}", "--out", "{out}"],
    "pack-weights": ["pack-weights", "{data}", "--out", "{out}"],
}


def run(command, out, tmp_path, capsys):
    argv = [a.format(out=out, data=tmp_path) for a in COMMANDS[command]]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written
    return code, err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_file_where_the_folder_goes(command, tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("an input that must survive")
    code, err = run(command, blocker, tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and f"{blocker}: is a file, not a folder" in err, err
    assert blocker.read_text() == "an input that must survive"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_name_too_long(command, tmp_path, capsys):
    code, err = run(command, tmp_path / ("n" * 250), tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "name too long (250 bytes" in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_folder_that_cannot_be_written(command, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, err = run(command, locked / "out", tmp_path, capsys)
    finally:
        locked.chmod(0o755)
    assert code == 2 and len(err.splitlines()) == 1 and f"{locked} is not writable" in err, err
