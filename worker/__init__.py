"""The worker's public surface, to embed it and to write processors for it:
`from worker import Job, PermanentError, Worker, WorkerOptions`."""

from shared.errors import PermanentError
from worker.job import Job
from worker.worker import Worker, WorkerOptions

__all__ = ["Job", "PermanentError", "Worker", "WorkerOptions"]
