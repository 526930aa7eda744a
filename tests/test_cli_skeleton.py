from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from colorcli import __version__
from colorcli.cli import app

runner = CliRunner()


def test_help_lists_commands() -> None:
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("build-bins", "rebalance", "train", "eval", "colorize"):
        assert cmd in res.output


def test_version() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output


def test_python_dash_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "colorcli", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout


def test_help_is_readable_at_80_columns() -> None:
    """typer's rich panels squeezed option help into ~20-character columns and showed <bool>
    on flags; the help is click's two-column layout now, --x / --no-x for flags."""
    for command in (["eval"], ["colorize"], ["train"], ["turing"], []):
        res = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
        assert res.exit_code == 0, res.output
        lines = res.output.splitlines()
        assert all(len(ln) <= 80 for ln in lines), command
        assert "<bool>" not in res.output and "╭" not in res.output
        assert "[/]" not in res.output and "[bold]" not in res.output  # markup removed
    res = runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "80"})
    assert "--baselines / --no-baselines" in res.output
    # option help gets the rest of the line: over 40 characters, not 20
    assert "Include the gray, random and ground-truth" in res.output
    res = runner.invoke(app, ["colorize", "--help"], env={"COLUMNS": "80"})
    assert "hf://owner/repo[@revision]/file" in res.output  # the escaped bracket, unescaped


def test_dir_shows_the_lazy_colorizer_without_importing_torch() -> None:
    code = (
        "import sys, colorcli; assert 'Colorizer' in dir(colorcli), dir(colorcli); "
        "assert set(colorcli.__all__) <= set(dir(colorcli)); assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_app_and_the_choices_import_no_torch() -> None:
    """Building the whole command tree (every command's options, the help) and importing the
    choices and the training config stay torch-free, so that ``colorcli --help`` is fast."""
    code = (
        "import sys, typer.main, colorcli.cli, colorcli.choices, colorcli.training.config; "
        "from colorcli.cli._common import plain_help; "
        "group = typer.main.get_command(colorcli.cli.app); plain_help(group); "
        "assert {'train', 'eval', 'colorize', 'turing'} <= set(group.commands), group.commands; "
        "heavy = {'torch', 'numpy'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unavailable_devices_are_the_same_usage_error() -> None:
    import pytest
    import torch

    from colorcli.device import check_half, pick_device
    from colorcli.errors import UsageError

    missing = []
    if not torch.cuda.is_available():
        missing += ["cuda", "cuda:0"]
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        missing.append("mps")
    missing += ["meta", "bogus"]
    for name in missing:
        with pytest.raises(UsageError, match="use auto, cpu, cuda, cuda:N or mps"):
            pick_device(name)
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(UsageError, match="--half"):
        check_half(torch.device("cpu"), True)
    check_half(torch.device("cpu"), None)  # the default (off off CUDA) is fine


def test_cli_device_and_half_errors_exit_2(tmp_path: Path) -> None:
    import numpy as np
    import torch
    from PIL import Image

    photo = tmp_path / "p.png"
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(photo)
    data = str(tmp_path)
    cases = [["train", data, "--out", f"{tmp_path}/t", "--device", "mps"]]
    if not torch.cuda.is_available():
        cases.append(["train", data, "--out", f"{tmp_path}/t", "--device", "cuda"])
    cases.append(["colorize", str(photo), "-o", f"{tmp_path}/c", "--device", "cpu", "--half"])
    for args in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), (args, res.output)


def test_colorize_help_states_the_shipped_models_own_size_and_temperature() -> None:
    """--help said "usually 256" and "usually 0.38" while the shipped model runs at 176 px and
    T 0.5: the help names the shipped file's actual values."""
    import pytest

    from colorcli.checkpoint import default_model_path, load_model

    if not default_model_path().is_file():
        pytest.skip("no shipped default model in this checkout")
    loaded = load_model("default", "cpu")
    res = runner.invoke(app, ["colorize", "--help"], env={"COLUMNS": "200"})
    text = " ".join(res.output.split())
    assert "usually" not in text
    assert f"{loaded.input_size} for the shipped default" in text
    assert f"{loaded.temperature:g} for the shipped default" in text
