"""The claim plan of an idle worker: take a named job by name, claim every free slot otherwise,
and among workers that know of each other, wait for one's turn and stand down when another
announces the take."""

from __future__ import annotations

from worker.wakeups import MAX_TURNS, PEERS_FORGOTTEN_MS, TURN_MS, ClaimAll, TakeByName, Wakeups

NOW = 1_700_000_000_000


def idle(worker_id: str = "w-1", *, by_name: bool = True) -> Wakeups:
    """A worker past its first claim, which found `ready` empty."""
    wakeups = Wakeups(worker_id, by_name=by_name)
    claim = wakeups.next_claim(NOW)
    assert isinstance(claim, ClaimAll), "a worker claims once at start"
    wakeups.claimed_all(filled=False, claim=claim)
    assert wakeups.next_claim(NOW) is None
    return wakeups


def test_a_wake_up_for_one_job_is_taken_by_name_at_once_by_a_lone_worker() -> None:
    wakeups = idle()
    wakeups.job_ready("01A", 1, NOW)
    assert wakeups.next_claim(NOW) == TakeByName("01A")
    wakeups.took("01A", found=True, now_ms=NOW)
    assert wakeups.next_claim(NOW) is None
    assert wakeups.next_at_ms() is None
    assert not wakeups.others_listen(NOW), "alone: nothing to announce"


def test_a_batch_an_unknown_count_or_concurrency_limits_call_for_a_claim_of_every_slot() -> None:
    for count, by_name in ((10, True), (None, True), (1, False)):
        wakeups = idle(by_name=by_name)
        wakeups.job_ready("01A", count, NOW)
        assert isinstance(wakeups.next_claim(NOW), ClaimAll), (count, by_name)


def test_several_named_jobs_due_together_are_claimed_in_one_claim_that_stands_for_them() -> None:
    wakeups = idle()
    wakeups.job_ready("01A", 1, NOW)
    wakeups.job_ready("01B", 1, NOW)
    claim = wakeups.next_claim(NOW)
    assert claim == ClaimAll(wakeups.epoch, frozenset({"01A", "01B"}))
    wakeups.job_ready("01C", 1, NOW + 1)  # arrives while the claim is on its way
    wakeups.claimed_all(filled=False, claim=claim)
    assert wakeups.next_claim(NOW + 1) == TakeByName("01C")


def test_a_claim_that_filled_every_slot_looks_again_and_one_that_did_not_stops() -> None:
    wakeups = idle()
    wakeups.claim_all(NOW)
    claim = wakeups.next_claim(NOW)
    assert isinstance(claim, ClaimAll)
    wakeups.claimed_all(filled=True, claim=claim)
    again = wakeups.next_claim(NOW)
    assert isinstance(again, ClaimAll)
    wakeups.claimed_all(filled=False, claim=again)
    assert wakeups.next_claim(NOW) is None


def test_a_claim_for_several_named_jobs_that_filled_every_slot_looks_again() -> None:
    wakeups = idle()
    for job_id in ("01A", "01B", "01C"):
        wakeups.job_ready(job_id, 1, NOW)
    claim = wakeups.next_claim(NOW)
    assert isinstance(claim, ClaimAll)
    wakeups.claimed_all(filled=True, claim=claim)
    assert isinstance(wakeups.next_claim(NOW + 1), ClaimAll), "the rest may still wait in ready"


def test_a_wake_up_during_a_claim_that_found_too_few_keeps_the_next_claim_due() -> None:
    wakeups = idle()
    wakeups.claim_all(NOW)
    claim = wakeups.next_claim(NOW)
    assert isinstance(claim, ClaimAll)
    wakeups.job_ready("01A", 5, NOW + 1)
    wakeups.claimed_all(filled=False, claim=claim)
    assert isinstance(wakeups.next_claim(NOW + 1), ClaimAll)


def test_a_take_that_finds_the_job_gone_means_others_listen_and_claims_are_announced() -> None:
    wakeups = idle()
    wakeups.job_ready("01A", 1, NOW)
    wakeups.took("01A", found=False, now_ms=NOW)
    assert wakeups.others_listen(NOW)
    assert not wakeups.others_listen(NOW + PEERS_FORGOTTEN_MS), "forgotten after a while"


def workers_in_turn(job_id: str, names: list[str]) -> list[tuple[int, str]]:
    """(turn delay, worker) for each of `names`, each knowing all the others."""
    delays = []
    for name in names:
        wakeups = idle(name)
        for other in names:
            wakeups.taken("01OLD", other, NOW)
        wakeups.job_ready(job_id, 1, NOW)
        (turn_ms,) = wakeups.named.values()
        delays.append((turn_ms - NOW, name))
    return sorted(delays)


def test_workers_that_know_each_other_take_distinct_turns_and_the_first_moves_with_the_job() -> (
    None
):
    names = [f"w-{i}" for i in range(8)]
    turns = workers_in_turn("01JOBA", names)
    assert [delay for delay, _ in turns] == [i * TURN_MS for i in range(8)]
    firsts = {workers_in_turn(f"01JOB{i}", names)[0][1] for i in range(40)}
    assert len(firsts) > 3, "the first turn moves from job to job"


def test_turns_stop_at_the_last_one() -> None:
    names = [f"w-{i}" for i in range(MAX_TURNS + 5)]
    turns = workers_in_turn("01JOBA", names)
    assert max(delay for delay, _ in turns) == MAX_TURNS * TURN_MS


def test_hearing_another_worker_take_the_job_before_ones_turn_means_no_claim() -> None:
    wakeups = idle("w-1")
    wakeups.taken("01OLD", "w-2", NOW)
    wakeups.job_ready("01A", 1, NOW)
    wakeups.taken("01A", "w-2", NOW + 5)
    assert wakeups.next_claim(NOW + MAX_TURNS * TURN_MS) is None


def test_hearing_ready_drained_cancels_every_pending_claim_but_not_later_wake_ups() -> None:
    wakeups = idle("w-1")
    wakeups.job_ready("01A", 1, NOW)
    wakeups.job_ready("01B", 4, NOW)
    wakeups.drained("w-2", NOW + 5)
    assert wakeups.next_claim(NOW + 10_000) is None
    wakeups.job_ready("01C", 1, NOW + 6)
    assert wakeups.next_claim(NOW + 10_000) is not None


def test_its_own_announcements_change_nothing() -> None:
    wakeups = idle("w-1")
    wakeups.job_ready("01A", 1, NOW)
    wakeups.taken("01A", "w-1", NOW)
    wakeups.drained("w-1", NOW)
    assert wakeups.next_claim(NOW) == TakeByName("01A")
    assert not wakeups.others_listen(NOW)


def test_a_worker_that_always_wins_learns_of_the_others_from_their_misses() -> None:
    winner = idle("w-1")
    winner.missed("w-2", NOW)
    assert winner.others_listen(NOW), "so it announces its takes from now on"
    turns = set()
    for i in range(20):  # and ranks w-2 too: some of the first turns are w-2's
        winner.job_ready(f"01J{i}", 1, NOW)
        turns.add(winner.named.pop(f"01J{i}") - NOW)
    assert turns == {0, TURN_MS}
