import itertools

import pytest

from guild_jupyter import RunStatus
from guild_jupyter.errors import InvalidTransition

LEGAL = {
    ("pending", "running"),
    ("pending", "failed"),
    ("pending", "cancelled"),
    ("running", "completed"),
    ("running", "failed"),
    ("running", "cancelled"),
}


@pytest.mark.parametrize("old,new", list(itertools.product([s.value for s in RunStatus], repeat=2)))
def test_exactly_the_designed_transitions_are_allowed(old, new):
    if (old, new) in LEGAL:
        assert RunStatus(old).check_transition(new) is RunStatus(new)
    else:
        with pytest.raises(InvalidTransition, match=f"{old} -> {new}"):
            RunStatus(old).check_transition(new)


def test_statuses_are_the_public_strings():
    assert [s.value for s in RunStatus] == [
        "pending",
        "running",
        "completed",
        "failed",
        "cancelled",
    ]
    assert RunStatus.COMPLETED == "completed"
    assert {s for s in RunStatus if s.terminal} == {
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
    }


def test_illegal_transition_through_the_store_changes_nothing(store):
    run = store.create_run("op", kind="function", flags={})
    store.set_status(run.id, "running")
    store.set_status(run.id, "completed", exit_code=0)
    with pytest.raises(InvalidTransition):
        store.set_status(run.id, "running")
    again = store.load_run(run.id)
    assert again.status == "completed" and again.exit_code == 0
    assert store.list_rows()[0]["status"] == "completed"


def test_a_retry_is_a_new_attempt_and_history_is_kept(store):
    run = store.create_run("op", kind="function", flags={})
    store.set_status(run.id, "running")
    store.set_status(run.id, "failed", exit_code=3, reason="boom")
    store.new_attempt(run.id)
    store.set_status(run.id, "running")
    final = store.set_status(run.id, "completed", exit_code=0)
    assert [a.status for a in final.attempts] == ["failed", "completed"]
    assert final.attempts[0].exit_code == 3 and final.attempts[0].reason == "boom"
    assert final.status == "completed" and final.started == final.attempts[0].started


def test_only_a_finished_run_gets_a_new_attempt(store):
    run = store.create_run("op", kind="function", flags={})
    store.set_status(run.id, "running")
    with pytest.raises(Exception, match="only a finished run"):
        store.new_attempt(run.id)
