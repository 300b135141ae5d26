import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(tree)}
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, check=False)


def test_no_service_imports_another_and_domains_import_no_io() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_the_rules_catch_a_service_importing_another_or_a_domain_doing_io(tmp_path: Path) -> None:
    for name in ("services", "shared"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("data", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "services" / "publisher" / "offender.py").write_text("import services.scoring.domain\n")
    with (tmp_path / "services" / "scoring" / "domain.py").open("a") as domain:
        domain.write("\nimport pymongo\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "1 kept, 2 broken" in result.stdout
    assert "services.publisher.offender -> services.scoring.domain" in result.stdout
