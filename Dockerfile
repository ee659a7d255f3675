# The queue worker as a container, for Railway, Render, Fly.io, ECS or any Docker host.
#   docker build -t ai-queue-worker .
#   docker run --stop-timeout 35 -e UPSTASH_REDIS_REST_URL=... -e UPSTASH_REDIS_REST_TOKEN=... \
#       -e WORKER_PROCESSOR=myapp.jobs:generate_image ai-queue-worker
# The processor (module:function) must be importable here: COPY your package below, or build
# FROM this image. The worker only calls Upstash over HTTPS: no port, no volume. On SIGTERM it
# stops claiming, gives running jobs WORKER_GRACE_PERIOD_S to finish and hands the rest back,
# so give the platform a stop timeout above that (35 s here).
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WORKER_PROCESSOR=worker.demo:process \
    WORKER_CONCURRENCY=1 \
    WORKER_TYPES="*" \
    WORKER_GRACE_PERIOD_S=25

WORKDIR /app
COPY requirements.txt ./
RUN pip install --requirement requirements.txt
COPY shared/ shared/
COPY worker/ worker/
# COPY myapp/ myapp/

RUN useradd --system --uid 10001 --no-create-home worker
USER worker

# The same command as the Procfile; `exec` makes the worker PID 1, so SIGTERM reaches it.
CMD exec python -m worker --processor "${WORKER_PROCESSOR:-worker.demo:process}" --concurrency "${WORKER_CONCURRENCY:-1}" --types "${WORKER_TYPES:-*}" --grace-period-s "${WORKER_GRACE_PERIOD_S:-25}"
