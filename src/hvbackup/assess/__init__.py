"""Assessment: which Linux VMs can be backed up live, how consistently, and what to fix.

from hvbackup.assess import Policy, assess_host, predict
report = assess_host(host, Policy(consistency="application", allow_downtime="save"))
"""

from hvbackup.assess.finding import Finding
from hvbackup.assess.policy import Policy
from hvbackup.assess.report import (
    EXIT_BLOCKERS,
    EXIT_CLEAN,
    EXIT_WARNINGS,
    Report,
    VmAssessment,
    assess_host,
    assess_vm,
)
from hvbackup.assess.verdict import Verdict, predict

__all__ = [
    "EXIT_BLOCKERS",
    "EXIT_CLEAN",
    "EXIT_WARNINGS",
    "Finding",
    "Policy",
    "Report",
    "Verdict",
    "VmAssessment",
    "assess_host",
    "assess_vm",
    "predict",
]
