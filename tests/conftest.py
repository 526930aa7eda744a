from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for the test (shared CI machines; also makes CPU results reproducible).
    Modules that train use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """ONNX twins exported by the auto backend go to a temporary cache, not the user's."""
    import os

    os.environ["COLORCLI_CACHE"] = str(tmp_path_factory.mktemp("colorcli-cache"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared photo sets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny eccv16 (Q = 313, width 1/16, seed 0) model file, one per test module."""
    import torch

    from colorcli.checkpoint import save_model
    from colorcli.color.bins import reference_bins
    from colorcli.models import create_model

    torch.manual_seed(0)
    model = create_model("eccv16", q=313, width=0.0625)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_model(
        path,
        model,
        arch="eccv16",
        arch_kwargs={"q": 313, "width": 0.0625},
        bins=reference_bins(),
        input_size=64,
    )
    return path
