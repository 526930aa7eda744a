"""Build hook (all metadata is in pyproject.toml): a wheel or ``pip install .`` carries the shipped
default model. The file lives in the top-level ``weights/`` folder of the repository and nowhere
else; the build copies it into the package as ``colorcli/_weights/`` (found at run time with
``importlib.resources``, see ``colorcli.checkpoint.weights_dirs``). An editable install needs no
copy: it finds ``weights/`` in the checkout."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# The first that exists is shipped (safetensors before the .pt written before it), with its card.
DEFAULT_NAMES = ("colorcli-default.safetensors", "colorcli-default.pt")
CARD = "MODEL_CARD.md"
PACKAGED = Path("colorcli") / "_weights"


def shipped_weights() -> list[Path]:
    """The default model file, its ONNX twin (``colorcli-default.onnx``, for the torch-free
    ``--backend onnx``) when there is one, and its card."""
    found = [ROOT / "weights" / n for n in DEFAULT_NAMES if (ROOT / "weights" / n).is_file()]
    if not found:
        return []
    extras = [found[0].with_suffix(".onnx"), ROOT / "weights" / CARD]
    return found[:1] + [p for p in extras if p.is_file()]


class BuildPyWithWeights(build_py):
    """``build_py`` that also copies the shipped default into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / PACKAGED
        self.mkpath(str(dest))
        for src in shipped_weights():
            self.copy_file(str(src), str(dest / src.name))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs += [str(Path(self.build_lib) / PACKAGED / p.name) for p in shipped_weights()]
        return outputs


setup(cmdclass={"build_py": BuildPyWithWeights})
