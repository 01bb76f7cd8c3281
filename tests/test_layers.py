"""The layer table of docs/ARCHITECTURE.md, enforced: no package imports one the table forbids.

The rules are read from the table itself (its "may not import" column), so the page and the code
cannot drift apart: change the table, and this test holds the code to the new rule.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "hvbackup"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"


def forbidden_imports() -> dict[str, set[str]]:
    """`{"disk": {"repo", "hyperv", ...}, "lab": {...}}` from the table's rows."""
    rules: dict[str, set[str]] = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        folder = cells[0].strip("`").rstrip("/")
        rules[folder] = set(re.findall(r"`([a-z_]+)`", cells[3]))
    return rules


def imported_packages(path: Path) -> set[str]:
    """The hvbackup top-level packages and modules that a source file imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(_first_part(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "hvbackup":
                found.update(alias.name for alias in node.names)
            else:
                found.add(_first_part(node.module))
    return {name for name in found if name}


def _first_part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if parts[0] == "hvbackup" and len(parts) > 1 else ""


def rule_for(path: Path, rules: dict[str, set[str]]) -> tuple[str, set[str]] | None:
    """The most specific table row that covers a source file (`engine/files` before `engine`)."""
    rel = path.relative_to(SRC).parent.as_posix()
    for folder in sorted(rules, key=len, reverse=True):
        if rel == folder or rel.startswith(folder + "/"):
            return folder, rules[folder]
    return None


def test_the_table_names_every_package() -> None:
    rules = forbidden_imports()
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(rules), f"rows missing in docs/ARCHITECTURE.md: {sorted(packages - set(rules))}"
    for folder, banned in rules.items():
        assert banned <= packages | {"cli"}, f"{folder}: the table names no such package: {banned - packages}"


def test_no_package_imports_what_the_layer_table_forbids() -> None:
    rules = forbidden_imports()
    violations = []
    for path in sorted(SRC.rglob("*.py")):
        rule = rule_for(path, rules)
        if rule is None:
            continue
        folder, banned = rule
        for name in sorted(imported_packages(path) & banned):
            violations.append(f"{path.relative_to(SRC)} ({folder}/) imports hvbackup.{name}")
    assert not violations, "layer rules broken:\n" + "\n".join(violations)


def test_the_checker_sees_every_form_of_import(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import hvbackup.repo.keys\nfrom hvbackup.engine import demo\nfrom hvbackup import directio\n"
        "def later():\n    from hvbackup.cli.common import emit\n"
    )
    assert imported_packages(source) == {"repo", "engine", "directio", "cli"}
