"""Lab operations: vms (see lab/operations/__init__.py)."""

from __future__ import annotations
