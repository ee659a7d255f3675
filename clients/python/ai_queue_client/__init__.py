"""A typed client of the AI job queue's HTTP API, sync and async:

from ai_queue_client import QueueClient
with QueueClient("http://127.0.0.1:3000/api", token=TOKEN) as queue:
    job = queue.wait(queue.enqueue("image.generate", {"prompt": "a red fox"}).id)
"""

from ai_queue_client.async_client import AsyncQueueClient
from ai_queue_client.errors import (
    JobWaitTimeout,
    QueueApiError,
    RateLimitedError,
    ServiceUnavailableError,
)
from ai_queue_client.models import (
    Algorithm,
    AttemptOutcome,
    AttemptRecord,
    ConcurrencyStats,
    EnqueueOptions,
    EnqueueRequest,
    FieldError,
    Job,
    JobError,
    JobStatus,
    PolicyDecision,
    Problem,
    Progress,
    QueueStats,
    RateLimitDecision,
    Reason,
    TypeRunning,
    UserRunning,
    WebhookState,
    WebhookStatus,
    WorkerInfo,
)
from ai_queue_client.sync_client import QueueClient

__all__ = [
    "Algorithm",
    "AsyncQueueClient",
    "AttemptOutcome",
    "AttemptRecord",
    "ConcurrencyStats",
    "EnqueueOptions",
    "EnqueueRequest",
    "FieldError",
    "Job",
    "JobError",
    "JobStatus",
    "JobWaitTimeout",
    "PolicyDecision",
    "Problem",
    "Progress",
    "QueueApiError",
    "QueueClient",
    "QueueStats",
    "RateLimitDecision",
    "RateLimitedError",
    "Reason",
    "ServiceUnavailableError",
    "TypeRunning",
    "UserRunning",
    "WebhookState",
    "WebhookStatus",
    "WorkerInfo",
]
