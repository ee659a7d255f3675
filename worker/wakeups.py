"""When an idle worker claims, and how: the plan the event stream, the beat and the claims feed.

A wake-up that names one ready job (an enqueue of one job) is taken by name, in one request
(`take_job`). Anything else calls for a claim of as many jobs as there are free slots: a batch,
jobs made ready again (a retry, an expired lease, a hand-back, a freed slot), a new subscription
(what was published before it was missed), a claim that filled every free slot (there may be
more), the worker's start.

Alone, a worker claims at once. Once it knows that other workers listen (it heard one announce a
take or a miss, or its own take found the job gone), it waits its turn: its rank for that job
among the workers it knows, times TURN_MS. The rank orders the workers by a hash of the job id
and the worker id, so every worker computes the same order and the first turn moves from job to
job. The worker whose turn comes first claims and announces what it took (`taken`, `drained`);
the others hear it before their turn and do not claim at all, so billed commands per job stay
flat as idle workers are added. A take that finds its job gone says so (`missed`): a worker
that always wins hears of the others that way. A busy worker's turn passes to the next one,
TURN_MS later.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

TURN_MS = 75  # ample for the first worker's claim and its announcement to reach the others
MAX_TURNS = 12  # the last turn, 900 ms after the wake-up: the most an idle worker waits
PEERS_FORGOTTEN_MS = 10 * 60_000  # a worker not heard of for this long is taken to be gone


@dataclass(frozen=True)
class TakeByName:
    job_id: str


@dataclass(frozen=True)
class ClaimAll:
    epoch: int  # `Wakeups.claimed_all` drops the claim only if no wake-up came since
    named: frozenset[str] = frozenset()  # the named jobs it stands for


Claim = TakeByName | ClaimAll


@dataclass
class Wakeups:
    worker_id: str
    by_name: bool = True  # False under concurrency limits: only a claim can count the slots
    named: dict[str, int] = field(default_factory=dict)  # job id -> its turn (epoch ms)
    claim_at_ms: int | None = 0  # a claim of every free slot is due then (0: at start)
    epoch: int = 0
    peers: dict[str, int] = field(default_factory=dict)  # worker id -> last heard of (ms)
    peers_seen_ms: int | None = None  # when a take last found its job gone

    # -- what the stream and the loop tell it --------------------------------------------

    def job_ready(self, job_id: str, count: int | None, now_ms: int) -> None:
        """A wake-up: `count` jobs ready now, `job_id` the first (None: an unknown number)."""
        turn_ms = now_ms + self._turn_delay_ms(job_id, now_ms)
        if count == 1 and self.by_name:
            self.named.setdefault(job_id, turn_ms)
            self.epoch += 1
        else:
            self.claim_all(turn_ms)

    def claim_all(self, at_ms: int) -> None:
        """Claim every free slot at `at_ms` (or earlier, if already due)."""
        self.claim_at_ms = at_ms if self.claim_at_ms is None else min(self.claim_at_ms, at_ms)
        self.epoch += 1

    def taken(self, job_id: str, worker_id: str, now_ms: int) -> None:
        if worker_id != self.worker_id:
            self._heard_of(worker_id, now_ms)
            self.named.pop(job_id, None)

    def missed(self, worker_id: str, now_ms: int) -> None:
        """Another worker's take found its job gone: it listens too."""
        if worker_id != self.worker_id:
            self._heard_of(worker_id, now_ms)

    def drained(self, worker_id: str, now_ms: int) -> None:
        """Another worker's claim left `ready` empty: every job announced before is taken."""
        if worker_id != self.worker_id:
            self._heard_of(worker_id, now_ms)
            self.named.clear()
            self.claim_at_ms = None

    def took(self, job_id: str, found: bool, now_ms: int) -> None:
        self.named.pop(job_id, None)
        if not found:  # someone else was faster (or its owner cancelled it)
            self.peers_seen_ms = now_ms

    def claimed_all(self, filled: bool, claim: ClaimAll) -> None:
        """After a claim of every free slot: with slots left over, `ready` held no more (unless
        a wake-up came meanwhile); a claim that filled them looks again when one frees."""
        for job_id in claim.named:
            self.named.pop(job_id, None)
        if filled:
            self.claim_at_ms = 0  # due whenever a slot is free
        elif claim.epoch == self.epoch:
            self.claim_at_ms = None

    # -- what the loop asks ----------------------------------------------------------------

    def next_claim(self, now_ms: int) -> Claim | None:
        """The claim due now, if any: one named job by name; several, or any other wake-up,
        a claim of every free slot."""
        due_named = [job_id for job_id, at_ms in self.named.items() if at_ms <= now_ms]
        claim_due = self.claim_at_ms is not None and self.claim_at_ms <= now_ms
        if claim_due or len(due_named) > 1:
            return ClaimAll(self.epoch, frozenset(self.named))
        if due_named:
            return TakeByName(due_named[0])
        return None

    def next_at_ms(self) -> int | None:
        """When the next claim falls due (None: nothing to claim until a wake-up)."""
        times = [
            *self.named.values(),
            *([self.claim_at_ms] if self.claim_at_ms is not None else []),
        ]
        return min(times, default=None)

    def others_listen(self, now_ms: int) -> bool:
        """Whether to announce claims: some other worker was heard of recently."""
        heard = [*self.peers.values(), self.peers_seen_ms or -PEERS_FORGOTTEN_MS]
        return max(heard) > now_ms - PEERS_FORGOTTEN_MS

    # -- turns ---------------------------------------------------------------------------

    def _heard_of(self, worker_id: str, now_ms: int) -> None:
        self.peers[worker_id] = now_ms
        forgotten = [w for w, seen in self.peers.items() if seen <= now_ms - PEERS_FORGOTTEN_MS]
        for gone in forgotten:
            del self.peers[gone]

    def _turn_delay_ms(self, job_id: str, now_ms: int) -> int:
        live = [w for w, seen in self.peers.items() if seen > now_ms - PEERS_FORGOTTEN_MS]
        mine = _turn_hash(job_id, self.worker_id)
        ahead = sum(1 for worker_id in live if _turn_hash(job_id, worker_id) < mine)
        return min(ahead, MAX_TURNS) * TURN_MS


def _turn_hash(job_id: str, worker_id: str) -> int:
    return zlib.crc32(f"{job_id}|{worker_id}".encode())
