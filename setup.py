"""The build step that puts the bundled weights in the wheel (the metadata is in setup.cfg).

The weights stay in the repository's top-level `weights/` folder (DESIGN.md); a wheel or a plain
`pip install .` gets the files that `weights/manifest.json` lists, as the package data folder
`keras_speech2vid/bundled_weights/`, which `keras_speech2vid.weights` finds when no checkout is beside it.
"""

import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def bundled_files(folder: Path) -> list[str]:
    """manifest.json and every file it lists (the models' files and their extra row blocks)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    files = ["manifest.json"]
    for entry in manifest["models"].values():
        files.append(entry["file"])
        files += [extra["file"] for extra in entry.get("more_files", [])]
    return files


class BuildWithWeights(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads weights/ in the checkout
        source = HERE / "weights"
        target = Path(self.build_lib) / "keras_speech2vid" / "bundled_weights"
        target.mkdir(parents=True, exist_ok=True)
        for name in bundled_files(source):
            shutil.copyfile(source / name, target / name)


setup(cmdclass={"build_py": BuildWithWeights})
