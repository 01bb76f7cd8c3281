"""Assessment rules, one small function each; importing this package registers them all."""

from hvbackup.assess.rules import (  # noqa: F401
    checkpoints,
    dataexchange,
    firmware,
    guest,
    integration,
    network,
    storage,
)
from hvbackup.assess.rules.registry import RULES, Facts, Rule, run_rules

__all__ = ["RULES", "Facts", "Rule", "run_rules"]
