"""The worker package's public surface is exactly what the README documents."""

from __future__ import annotations

from types import ModuleType

import worker
from shared.errors import PermanentError
from worker.job import Job, JobCancelled
from worker.options import WorkerOptions
from worker.worker import Worker

PUBLIC = ["Job", "JobCancelled", "PermanentError", "Worker", "WorkerOptions"]


def test_the_worker_package_exports_exactly_its_public_surface() -> None:
    assert sorted(worker.__all__) == PUBLIC
    public = sorted(
        name
        for name, value in vars(worker).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)  # submodules
    )
    assert public == PUBLIC


def test_each_exported_name_is_the_object_defined_in_its_module() -> None:
    assert (worker.Job, worker.Worker, worker.WorkerOptions) == (Job, Worker, WorkerOptions)
    assert (worker.JobCancelled, worker.PermanentError) == (JobCancelled, PermanentError)


def test_job_cancelled_is_not_swallowed_by_except_exception() -> None:
    assert not issubclass(JobCancelled, Exception)
