"""Helpers for the Hyper-V tests: the documented JSON shapes, and a transport that replays them.

ReplayTransport stands in for a Windows host (which cannot exist here): it receives the real
assembled script, records the operation and parameters it carries, and answers with the
fixture queued for that operation.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from hvbackup.hyperv.transport.base import Transport

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture(name: str) -> dict[str, Any]:
    return json.loads(fixture_text(name))


_OPERATION = re.compile(r"^# hvbackup operation: (\w+)$", re.M)
_PARAMS = re.compile(r"^\$HvParams = ConvertFrom-Json '(.*)'$", re.M)


def operation_of(script: str) -> tuple[str, dict[str, Any]]:
    """The operation name and parameters an assembled script carries."""
    operation = _OPERATION.search(script)
    params = _PARAMS.search(script)
    assert operation and params, "not an assembled hvbackup script"
    return operation.group(1), json.loads(params.group(1).replace("''", "'"))


class ReplayTransport(Transport):
    def __init__(self) -> None:
        self.host_name = "hv01.test"
        self.answers: dict[str, deque[str]] = defaultdict(deque)
        # answered when nothing is queued: the request token every application-consistent checkpoint announces
        self.defaults = {"set_guest_item": fixture_text("set_guest_item.json")}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.closed = False

    def queue(self, operation: str, fixture_name: str) -> None:
        self.answers[operation].append(fixture_text(fixture_name))

    def run(self, script: str, timeout: float) -> str:
        operation, params = operation_of(script)
        self.calls.append((operation, params))
        if not self.answers[operation] and operation in self.defaults:
            return self.defaults[operation]
        assert self.answers[operation], f"no answer queued for {operation}"
        return self.answers[operation].popleft()

    def close(self) -> None:
        self.closed = True

    def operations(self) -> list[str]:
        return [op for op, _ in self.calls]
