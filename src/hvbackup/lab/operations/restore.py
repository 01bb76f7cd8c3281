"""Lab operations: restore (see lab/operations/__init__.py)."""

from __future__ import annotations
