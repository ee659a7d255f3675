"""The worker package's public surface is exactly what the README documents."""

from __future__ import annotations

from types import ModuleType

import worker
from shared.errors import PermanentError
from worker.job import Job
from worker.worker import Worker, WorkerOptions


def test_the_worker_package_exports_exactly_its_public_surface() -> None:
    assert sorted(worker.__all__) == ["Job", "PermanentError", "Worker", "WorkerOptions"]
    public = sorted(
        name
        for name, value in vars(worker).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)  # submodules
    )
    assert public == ["Job", "PermanentError", "Worker", "WorkerOptions"]


def test_each_exported_name_is_the_object_defined_in_its_module() -> None:
    assert (worker.Job, worker.Worker, worker.WorkerOptions) == (Job, Worker, WorkerOptions)
    assert worker.PermanentError is PermanentError
