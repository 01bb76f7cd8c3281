"""Msvm_ConcreteJob for the lab: WMI jobs kept in the lab folder, so a job that one call starts
ends on a later poll_job call (docs/LAB.md "Jobs and return codes").

DIR/jobs/<JOB GUID>.json holds one job: the operation that started it, what it produced (a
checkpoint or reference point id, read back when the job is polled to completion), how many more
polls it runs for, and how it ends: JobState 7 Completed, or 10 Exception with ErrorCode and
ErrorDescription (docs/HYPERV.md §1).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from hvbackup.atomic import atomic_write
from hvbackup.hyperv.errors import ChangeTrackingUnavailable, ObjectNotFound, WmiJobError

JOBS_DIR = "jobs"
JOB_RUNNING = 4
JOB_COMPLETED = 7
JOB_EXCEPTION = 10
RETURN_STARTED = 4096
RETURN_FAILED = 32768
RETURN_INVALID_STATE = 32775
RETURN_FILE_NOT_FOUND = 32779

# The prelude's Get-HvReturnText: the documented meaning of each method return value (docs/HYPERV.md §1).
RETURN_TEXTS = {
    1: "Not Supported",
    2: "Failed",
    3: "Timeout",
    4: "Invalid Parameter",
    5: "Invalid State",
    6: "Invalid Type",
    32768: "Failed",
    32769: "Access Denied",
    32770: "Not Supported",
    32771: "Status is unknown",
    32772: "Timeout",
    32773: "Invalid parameter",
    32774: "System is in use",
    32775: "Invalid state for this operation",
    32776: "Incorrect data type",
    32777: "System is not available",
    32778: "Out of memory",
    32779: "File not found",
}


def return_text(code: int) -> str:
    return RETURN_TEXTS.get(code, f"return value {code}")


class ScriptWmiError(WmiJobError):
    """A WmiJobError with the message the prelude gives it ("<Method> returned <code>", "job <id>
    ended in state <n>"), so the lab's error document reads as the script's."""

    def __init__(
        self, operation: str, code: int | None, description: str, job_state: int | None, script_message: str
    ) -> None:
        super().__init__(operation, code, description, job_state)
        self.script_message = script_message


class ScriptChangeTrackingError(ChangeTrackingUnavailable):
    """changed_ranges.ps1's error for a GetVirtualDiskChanges return value: the document carries the code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"GetVirtualDiskChanges returned {code} ({return_text(code)})")
        self.code = code


def method_failure(operation: str, method: str, code: int) -> ScriptWmiError:
    """Invoke-HvMethod's error for a method that returned neither 0 nor 4096."""
    return ScriptWmiError(operation, code, return_text(code), None, f"{method} returned {code}")


def job_failure(operation: str, job_id: str, code: int | None, description: str) -> ScriptWmiError:
    """Assert-HvJobSucceeded's error for a job that ended in Exception."""
    return ScriptWmiError(operation, code, description, JOB_EXCEPTION, f"job {job_id} ended in state {JOB_EXCEPTION}")


def new_job_id() -> str:
    return str(uuid.uuid4()).upper()


@dataclass
class Job:
    id: str
    operation: str
    vm_id: str
    result_kind: str  # 'checkpoint' | 'reference_point' | 'none' (poll_job.ps1's ResultKind)
    result_id: str | None
    polls_left: int
    polls_total: int
    error_code: int | None = None
    error_description: str = ""
    state: int = JOB_RUNNING

    @property
    def running(self) -> bool:
        return self.state == JOB_RUNNING

    @property
    def percent_complete(self) -> int:
        if not self.running:
            return 100
        return int(100 * (self.polls_total - self.polls_left) / max(1, self.polls_total + 1))

    def final_state(self) -> int:
        return JOB_EXCEPTION if self.error_code is not None else JOB_COMPLETED


class JobStore:
    """The jobs of one lab folder."""

    def __init__(self, lab_directory: Path) -> None:
        self.directory = lab_directory / JOBS_DIR

    def start(
        self,
        operation: str,
        vm_id: str,
        result_kind: str,
        result_id: str | None,
        polls: int,
        failure: WmiJobError | None = None,
    ) -> Job:
        """A job that reports Running for `polls` polls, then ends as `failure` says (or completed)."""
        job = Job(new_job_id(), operation, vm_id, result_kind, result_id, max(0, polls), max(0, polls))
        if failure is not None:
            job.error_code = failure.code if failure.code is not None else RETURN_FAILED
            job.error_description = failure.description
        if job.polls_left == 0:
            job.state = job.final_state()
        self._save(job)
        return job

    def poll(self, job_id: str) -> Job:
        """One look at the job (what poll_job's Get-CimInstance does); a running job moves on one step."""
        job = self.load(job_id)
        if job.running:
            job.polls_left -= 1
            if job.polls_left <= 0:
                job.state = job.final_state()
            self._save(job)
        return job

    def load(self, job_id: str) -> Job:
        path = self.directory / f"{job_id.upper()}.json"
        try:
            return Job(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise ObjectNotFound(f"job {job_id} no longer exists") from None

    def _save(self, job: Job) -> None:
        self.directory.mkdir(exist_ok=True)
        atomic_write(self.directory / f"{job.id}.json", json.dumps(asdict(job)))
