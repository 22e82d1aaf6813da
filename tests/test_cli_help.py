"""`--help` everywhere: every command and every group prints its usage and exits 0; a group
without a subcommand is one `Error:` line and exit 1 (a session's walk found `thrum schedule
--help` exiting 1)."""

from __future__ import annotations

import pytest

from thrum_engine.cli.main import BY_PATH, commands, main

COMMANDS = commands()

GROUPS = sorted({" ".join(c.path.split()[:n]) for c in COMMANDS for n in range(1, len(c.path.split()))})
GROUPS = [g for g in GROUPS if g not in {c.path for c in COMMANDS}]


@pytest.mark.parametrize("group", GROUPS)
def test_a_group_help_lists_its_commands_and_exits_0(group, capsys):
    for flag in ("--help", "-h"):
        assert main([*group.split(), flag]) == 0
        out, err = capsys.readouterr()
        assert err == "" and out.startswith(f"usage: thrum {group} COMMAND")
        for c in COMMANDS:
            if c.path.startswith(group + " "):
                assert f"  {c.path} " in out, c.path


@pytest.mark.parametrize("group", GROUPS)
def test_a_group_without_a_subcommand_is_one_error_line(group, capsys):
    assert main(group.split()) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"Error: {group} needs a subcommand: ") and err.count("\n") == 1


@pytest.mark.parametrize("group", GROUPS)
def test_a_group_with_an_unknown_subcommand_names_it(group, capsys):
    """`thrum setup bogus` said "setup needs a subcommand" (walk C, C3)."""
    assert main([*group.split(), "bogus"]) == 1
    out, err = capsys.readouterr()
    assert (
        out == ""
        and err.startswith(f"Error: unknown {group} subcommand: bogus (use ")
        and err.count("\n") == 1
    )


def test_a_global_flag_alone_asks_for_a_command(capsys):
    assert main(["--json"]) == 1
    assert capsys.readouterr().err == "Error: --json needs a command (run `thrum --help`)\n"


def test_every_command_has_help_that_exits_0(capsys):
    for c in COMMANDS:
        assert main([*c.path.split(), "--help"]) == 0, c.path
        out, err = capsys.readouterr()
        assert err == "" and out.startswith(f"usage: thrum {c.path}"), c.path


def test_each_command_path_is_declared_once():
    """Help and lookup go by path: a second row with the same path would hide the first."""
    assert len(BY_PATH) == len(COMMANDS) and {c.path for c in COMMANDS} == set(BY_PATH)
