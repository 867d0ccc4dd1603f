import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = SHARED / "data"
# the real talking clips of tests/data: two GRID clips and a VoxCeleb2 crop
CLIPS = [DATA / "grid_bbaf2n_man_denim.mpg", DATA / "grid_lbbc2a_woman_pink_top.mpg",
         DATA / "vox2_00086_man_suit_red_bg.mp4"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir():
    return DATA


def shared_path(*parts) -> Path:
    """A path under ../shared, skipping the test when shared/ is not beside the project."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is only beside the development checkout)")
    return path

VAL = ["grid_lbbc2a_woman_pink_top"]  # the validation clip of `prepared`


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """The three fixture clips through stage (i) of `prepare` (one GRID clip as validation), plus two
    files that must be skipped. Stage (ii) has its own tests (test_sync_stage)."""
    from keras_speech2vid.data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("prepared")
    inputs = CLIPS + [DATA / "obama.jpg", DATA / "transcript.mp3"]
    manifest = prepare(inputs, out, PrepareConfig(val_fraction=0.0, sync=False), val_groups=VAL, progress=False)
    return out, manifest


@pytest.fixture(scope="session")
def fixture_arrays(prepared, tmp_path_factory):
    """`prepared` as array chunks of at most 0.5 MiB (several chunks; one track cut in pieces)."""
    from keras_speech2vid.data.arrays import export_arrays

    out = tmp_path_factory.mktemp("arrays")
    return out, export_arrays(prepared[0], out, max_chunk_mib=0.5, progress=False)


@pytest.fixture(scope="session")
def prepared_whisper(prepared, tmp_path_factory):
    """`prepared` with each video's Whisper features (`prepare --whisper`); returns (folder, files written)."""
    import shutil

    from keras_speech2vid.data.features import add_whisper_features

    out = tmp_path_factory.mktemp("features") / "data"
    shutil.copytree(prepared[0], out)
    return out, add_whisper_features(out, progress=False)
