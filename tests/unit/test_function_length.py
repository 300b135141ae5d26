"""Functions stay short enough to read: none over 80 lines under `services/` and `shared/`, and each
service's `create_app` only wires, in 60 lines at most."""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 80
MAX_CREATE_APP_LINES = 60

# Offenders allowed for now (none left): an entry that is no longer too long fails the test until it is
# removed, so the lists only shrink.
TOO_LONG: set[str] = set()
CREATE_APP_TOO_LONG: set[str] = set()


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """Every function and method, nested ones included, with its qualified name and its length in lines
    (decorators excluded, docstring included)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, (node.end_lineno or node.lineno) - node.lineno + 1
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def lengths(source: str, path: str) -> dict[str, int]:
    return {f"{path}::{name}": lines for name, lines in functions(ast.parse(source))}


def measured() -> dict[str, int]:
    found: dict[str, int] = {}
    for top in ("services", "shared"):
        for path in sorted((ROOT / top).rglob("*.py")):
            found |= lengths(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    return found


def test_no_function_is_over_80_lines_but_those_listed_and_the_list_is_current() -> None:
    long = {name: lines for name, lines in measured().items() if lines > MAX_LINES}
    assert {n: lines for n, lines in long.items() if n not in TOO_LONG} == {}
    assert TOO_LONG - set(long) == set(), "shortened: remove from TOO_LONG"


def test_each_create_app_only_wires_in_60_lines_but_those_listed_and_the_list_is_current() -> None:
    apps = {name: lines for name, lines in measured().items() if name.endswith("::create_app")}
    assert len(apps) == 5
    long = {name: lines for name, lines in apps.items() if lines > MAX_CREATE_APP_LINES}
    assert {n: lines for n, lines in long.items() if n not in CREATE_APP_TOO_LONG} == {}
    assert CREATE_APP_TOO_LONG - set(long) == set(), "thinned: remove from CREATE_APP_TOO_LONG"


def test_the_measure_counts_nested_functions_and_methods() -> None:
    body = "\n".join(f"        x = {i}" for i in range(80))
    source = f"class A:\n    def method(self):\n        def inner():\n            pass\n{body}\n"
    assert lengths(source, "m.py") == {"m.py::A.method": 83, "m.py::A.method.inner": 2}
