"""protocols.matrix_file: cells parsed, and every bad file refused in one positioned line."""

from __future__ import annotations

import pytest

from coordinator.matrix_cli import validators
from protocols.matrix_file import MatrixFileError, parse_matrix

GOOD = """\
[defaults]
duration = "3s"
procs = 1

[[cell]]
name = "strict"
launch = "python3 server.py --port {port}"
duration = "15s"

[[cell]]
name = "remote"
target = "http://127.0.0.1:8080/"
slices = ["adv", "markov"]
body_path = "/echo"

[[cell]]
name = "refapp-lost-write"
refapp_defect = ["lost-write"]
seed = "0x2a"
"""


def _error(text: str) -> str:
    with pytest.raises(MatrixFileError) as info:
        parse_matrix(text, "m.toml", validators())
    message = str(info.value)
    assert "\n" not in message
    return message


def test_cells_in_file_order_with_defaults_and_their_run_flags():
    cells = parse_matrix(GOOD, "m.toml", validators())
    assert [c.name for c in cells] == ["strict", "remote", "refapp-lost-write"]
    assert [c.kind for c in cells] == ["launch", "target", "refapp"]
    assert cells[0].setting("duration") == "15s"  # the cell's own value wins
    assert cells[1].setting("duration") == "3s"
    assert cells[0].run_args() == ["--launch", "python3 server.py --port {port}",
                                   "--duration", "15s", "--procs", "1"]
    assert cells[1].run_args() == ["--target", "http://127.0.0.1:8080/", "--duration", "3s",
                                   "--procs", "1", "--slices", "adv,markov",
                                   "--body-path", "/echo"]
    assert cells[2].run_args()[-4:] == ["--seed", "0x2a", "--refapp-defect", "lost-write"]
    assert [c.line for c in cells] == [5, 10, 16]


@pytest.mark.parametrize(("text", "expected"), [
    ("[[cell]]\nname = 'a'\n[[cell\n", "m.toml:3: invalid TOML"),
    ("[[cell]]\nname = 'a'\n[[cell]]\nname = 'a'\n",
     "m.toml:4: cell[1].name: name 'a' is already the name of cell[0]"),
    ("[[cell]]\nname = 'a'\ntarget = 'http://127.0.0.1:1/'\nlaunch = 'x {port}'\n",
     "m.toml:4: cell[0].launch: give target or launch, not both"),
    ("[[cell]]\nname = 'a'\nduration = 'soon'\n",
     "m.toml:3: cell[0].duration: duration 'soon' is not a duration"),
    ("[[cell]]\nname = 'a'\ncolour = 'red'\n", "m.toml:3: cell[0].colour: unknown key"),
    ("[[cell]]\nname = ''\n", "m.toml:2: cell[0].name: '' must be 1-64"),
    ("[[cell]]\nname = '..'\n", "m.toml:2: cell[0].name: '..' must be 1-64"),
    ("[[cell]]\nduration = '1s'\n", "m.toml:1: cell[0]: name: missing"),
    ("title = 'x'\n", "m.toml:1: title: unknown key"),
    ("[defaults]\nduration = '1s'\n", "m.toml:1: no [[cell]] tables"),
    ("[defaults]\ntarget = 'http://x/'\n[[cell]]\nname = 'a'\n",
     "m.toml:2: defaults.target: target belongs in each [[cell]]"),
    ("[[cell]]\nname = 'a'\ntarget = 'ftp://x/'\n", "only http:// and https:// are supported"),
    ("[[cell]]\nname = 'a'\nlaunch = 'serve'\n", "must be a command containing {port}"),
    ("[[cell]]\nname = 'a'\nslices = ['adv', 'nope']\n",
     "m.toml:3: cell[0].slices[1]: unknown slice 'nope'"),
    ("[[cell]]\nname = 'a'\nrefapp_defect = ['no-such']\n", "unknown refapp defect"),
    ("[[cell]]\nname = 'a'\ntarget = 'http://127.0.0.1:1/'\nrefapp_defect = ['lost-write']\n",
     "m.toml:4: cell[0].refapp_defect: refapp_defect only applies to the built-in refapp"),
    ("[[cell]]\nname = 'a'\nlaunch_path = '/x'\n", "launch_path needs launch"),
    ("[[cell]]\nname = 'a'\nprocs = 0\n", "--procs must be at least 1"),
    ("[[cell]]\nname = 'a'\nprocs = true\n", "expected a string or number, got"),
    ("[[cell]]\nname = 'a'\nslices = 3\n", "expected a list of strings"),
    ("cell = 3\n", "m.toml:1: cell: expected [[cell]] tables"),
])
def test_bad_files_are_one_line_with_file_line_and_field(text, expected):
    assert expected in _error(text)


def test_without_validators_only_the_shape_is_checked():
    cells = parse_matrix("[[cell]]\nname = 'a'\nduration = 'soon'\n", "m.toml")
    assert cells[0].setting("duration") == "soon"


def test_run_args_pass_through_verbatim_after_the_cell_flags():
    cells = parse_matrix("[defaults]\nrun_args = ['--no-shrink']\n[[cell]]\nname = 'a'\n"
                         "[[cell]]\nname = 'b'\nrun_args = ['--request-timeout', ' 2s']\n",
                         "m.toml", validators())
    assert cells[0].run_args() == ["--no-shrink"]
    assert cells[1].run_args() == ["--request-timeout", " 2s"]  # a cell's own list wins
