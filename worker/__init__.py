"""The worker's public surface, to embed it and to write processors for it:
`from worker import Job, JobCancelled, PermanentError, Worker, WorkerOptions`."""

from shared.errors import PermanentError
from worker.job import Job, JobCancelled
from worker.options import WorkerOptions
from worker.worker import Worker

__all__ = ["Job", "JobCancelled", "PermanentError", "Worker", "WorkerOptions"]
