"""One PowerShell script per Hyper-V operation, and how a call to one is put together."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

PRELUDE = "_prelude"


@cache
def script_text(name: str) -> str:
    """The text of scripts/<name>.ps1; KeyError naming the script when there is none."""
    resource = resources.files(__package__).joinpath(f"{name}.ps1")
    if not resource.is_file():
        raise KeyError(f"no PowerShell script for operation {name!r}")
    return resource.read_text(encoding="utf-8")


def operation_names() -> list[str]:
    files = resources.files(__package__).iterdir()
    return sorted(f.name[:-4] for f in files if f.name.endswith(".ps1") and not f.name.startswith("_"))


def assemble(operation: str, params: dict[str, Any]) -> str:
    """The whole script sent to the host: parameters, prelude, and the body inside try/catch.

    Parameters travel as one JSON document in a single-quoted PowerShell string (quotes
    doubled; json.dumps escapes every non-ASCII character, so no typographic quote that
    PowerShell also treats as a quote can appear).
    """
    body = script_text(operation)
    literal = json.dumps(params, ensure_ascii=True, separators=(",", ":")).replace("'", "''")
    return "\n".join(
        [
            f"# hvbackup operation: {operation}",
            "$ErrorActionPreference = 'Stop'",
            "$ProgressPreference = 'SilentlyContinue'",
            f"$HvOperation = '{operation}'",
            f"$HvParams = ConvertFrom-Json '{literal}'",
            script_text(PRELUDE),
            "try {",
            body,
            "} catch {",
            "    Write-HvFailure $_",
            "}",
            "",
        ]
    )
