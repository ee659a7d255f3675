"""The functions as the tests call them: dev credentials (a JWT secret, a service key, user
tokens) and clients for the queue functions."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import jwt

JWT_SECRET = "test-secret-0123456789abcdef-0123456789"
SERVICE_KEY = "test-service-key"


def make_user_token(user_id: str, *, lifetime_s: int = 3600, secret: str = JWT_SECRET) -> str:
    now_s = int(time.time())
    return jwt.encode(
        {"sub": user_id, "iat": now_s, "exp": now_s + lifetime_s}, secret, algorithm="HS256"
    )


@dataclass(frozen=True)
class QueueApi:
    """Clients for the queue functions, each at its own app (as deployed: one per function)."""

    enqueue: httpx.AsyncClient
    status: httpx.AsyncClient
    stats: httpx.AsyncClient
