"""The `kilnworks` dispatcher: help lists every command; unknown commands fail with usage."""

from __future__ import annotations

import importlib.util

import pytest

from core.cli import COMMANDS, main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in out


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fire-everything"]) == 2
    assert "unknown command 'fire-everything'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_module_exists_with_main(name: str) -> None:
    module_name = COMMANDS[name][0]
    assert importlib.util.find_spec(module_name) is not None, f"{module_name} missing"
    module = importlib.import_module(module_name)
    assert callable(module.main)
