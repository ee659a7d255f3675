"""A session store for an app's own functions (SPEC section 12), in the queue's Redis."""

from shared.sessions.store import SessionStore

__all__ = ["SessionStore"]
