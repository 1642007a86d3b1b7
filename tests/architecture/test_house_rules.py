"""The house rules of docs/ARCHITECTURE.md that import-linter cannot see: room sizes and SQL's home.

import-linter (run by ``make test``; contracts in ``.importlinter``) checks the layers, that core/ and
db/ never import Streamlit, and that nothing imports in a circle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("core", "db", "dashboard", "pages")
MAX_LINES = 80
# Declarative blocks may be long: the schema's DDL and the CLI's argparse registration.
DECLARATIVE = {("db/schema.py", "*"), ("core/cli.py", "*"), ("core/commands", "register")}
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", re.I)


def _sources(*tops: str):
    for top in tops:
        yield from sorted((ROOT / top).rglob("*.py"))


def _declarative(rel: str, name: str) -> bool:
    return any(
        (rel == where or rel.startswith(where + "/")) and what in ("*", name)
        for where, what in DECLARATIVE
    )


def long_functions(paths, root: Path = ROOT) -> list[str]:
    found = []
    for path in paths:
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_LINES and not _declarative(rel, node.name):
                    found.append(f"{rel}:{node.lineno} {node.name} ({length})")
    return found


def sql_strings(paths, root: Path = ROOT) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if SQL.search(node.value):
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.value[:60]!r}")
    return found


def test_no_function_is_longer_than_80_lines_outside_ddl_and_argparse():
    assert long_functions(_sources(*LAYERS)) == []


def test_sql_text_lives_only_in_db():
    assert sql_strings(_sources("core", "dashboard", "pages")) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("def f():\n" + "    x = 1\n" * 80, 1),
        ("def f():\n" + "    x = 1\n" * 79, 0),
    ],
    ids=["81 lines", "80 lines"],
)
def test_the_length_rule_counts_lines_as_a_reader_does(tmp_path, source, expected):
    path = tmp_path / "core" / "probe.py"
    path.parent.mkdir()
    path.write_text(source)
    assert len(long_functions([path], root=tmp_path)) == expected


def test_argparse_registration_may_be_long(tmp_path):
    path = tmp_path / "core" / "commands" / "probe.py"
    path.parent.mkdir(parents=True)
    path.write_text("def register(subparsers):\n" + "    x = 1\n" * 100)
    assert long_functions([path], root=tmp_path) == []


def test_the_sql_rule_finds_a_query_in_a_string(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text('QUERY = "SELECT label FROM cases WHERE case_id = ?"\n')
    assert len(sql_strings([path], root=tmp_path)) == 1


def loose_modules(top: Path) -> list[str]:
    """Modules lying at a package's top level beside its sub-packages, but its entry points."""
    allowed = {"__init__.py", "cli.py"}
    return sorted(p.name for p in top.glob("*.py") if p.name not in allowed)


def test_core_keeps_its_modules_in_rooms():
    assert loose_modules(ROOT / "core") == []


def test_the_loose_module_rule_sees_a_module_beside_the_packages(tmp_path):
    for name in ("__init__.py", "cli.py", "labels.py"):
        (tmp_path / name).write_text("")
    assert loose_modules(tmp_path) == ["labels.py"]
