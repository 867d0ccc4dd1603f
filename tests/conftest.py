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
