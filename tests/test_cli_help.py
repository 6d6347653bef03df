"""Help text in click's conventions: upper-case arguments in the usage line, flags without a type."""

import re

import pytest


@pytest.mark.parametrize("command,usage", [
    (["generate"], "Usage: livegesture generate [OPTIONS] SPEECH"),
    (["stream-file"], "Usage: livegesture stream-file [OPTIONS] SPEECH"),
    (["synth"], "Usage: livegesture synth [OPTIONS] OUT"),
    (["serve"], "Usage: livegesture serve [OPTIONS]"),
    (["train", "all"], "Usage: livegesture train all [OPTIONS]"),
    ([], "Usage: livegesture [OPTIONS] COMMAND [ARGS]..."),
])
def test_usage_line_and_flags(cli, command, usage):
    code, out, _ = cli(*command, "--help")
    assert code == 0
    assert out.splitlines()[0] == usage
    assert "{" not in out.splitlines()[0]
    assert not re.search(r"--[a-z-]+\s+<bool>", out), out  # a flag takes no value
    assert re.search(r"^\s+--help\s+Show this message", out, re.M), out


def test_flags_and_valued_options_read_apart(cli):
    _, out, _ = cli("generate", "--help")
    assert re.search(r"^\s+--root-in-place\s+drop", out, re.M)  # a flag: no type
    assert re.search(r"^\s+--seed <int>", out, re.M)             # takes a value: its type
