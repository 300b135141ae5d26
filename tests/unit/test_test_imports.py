"""No test module imports another: what tests share lives in builders and helpers, so that running,
moving or deleting one test file never changes another."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_test_modules(source: str, package: str) -> list[str]:
    """The `test_*` modules a module imports, `package` being the dotted package it lives in."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            modules = [base] if is_test_module(base) else [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [m for m in modules if is_test_module(m)]
    return sorted(set(found))


def is_test_module(dotted: str) -> bool:
    return any(part.startswith("test_") for part in dotted.split("."))


def test_no_test_module_imports_another() -> None:
    offenders = {}
    for path in sorted(TESTS.rglob("test_*.py")):
        package = ".".join(path.relative_to(TESTS.parent).parent.parts)
        if imported := imported_test_modules(path.read_text(), package):
            offenders[str(path.relative_to(TESTS.parent))] = imported
    assert offenders == {}


def test_every_form_of_import_of_a_test_module_is_caught() -> None:
    assert imported_test_modules("from tests.unit.test_x import f", "tests.unit") == ["tests.unit.test_x"]
    assert imported_test_modules("import tests.unit.test_x as t", "tests.unit") == ["tests.unit.test_x"]
    assert imported_test_modules("from tests.unit import test_x", "tests.unit") == ["tests.unit.test_x"]
    assert imported_test_modules("from .test_x import f", "tests.unit") == ["tests.unit.test_x"]
    assert imported_test_modules("from ..e2e import test_y", "tests.unit") == ["tests.e2e.test_y"]
    assert imported_test_modules("def f():\n    from tests.unit.test_x import g\n", "tests.unit") == [
        "tests.unit.test_x"
    ]
    assert imported_test_modules("from tests.publisher_builders import published", "tests.unit") == []
    assert imported_test_modules("from tests.e2e.helpers import poll\nimport pytest", "tests.e2e") == []
