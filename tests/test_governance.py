"""Governance: protected aliases, promotion requests and approvals, and the audit log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.tree import DecisionTreeClassifier

import cellops
from cellops.store.registry import entry_hash

from conftest import run_python
from engines_kit import RawDb

X, Y = load_breast_cancer(return_X_y=True)


@pytest.fixture
def model(ws):
    """Model 'm' with versions 1 (auc 0.90) and 2 (auc 0.97), registered by alice."""
    with cellops.acting_as("alice"):
        for auc in (0.90, 0.97):
            with cellops.start_run() as run:
                run.log_metric("auc", auc)
                cellops.register_model(DecisionTreeClassifier(max_depth=2).fit(X, Y), "m")
        cellops.set_alias("m", "prod", 1)
    return "m"


def as_user(user, fn, *args, **kwargs):
    with cellops.acting_as(user):
        return fn(*args, **kwargs)


def test_a_protected_alias_moves_only_when_an_approver_other_than_the_requester_approves(model):
    as_user("alice", cellops.protect_alias, "m", "prod", approvers=["bob", "carol"])
    req = as_user("alice", cellops.set_alias, "m", "prod", 2)
    assert isinstance(req, cellops.PromotionRequest)
    assert (req.status, req.version, req.previous_version, req.requested_by) == ("PENDING", 2, 1, "alice")
    assert req.approvals_needed == 1 and "1 more approval(s) needed from bob, carol" in str(req)
    assert cellops.get_model_version("m", "prod").version == 1  # not moved yet

    with pytest.raises(cellops.GovernanceError, match="'alice' requested promotion .* bob, carol must"):
        as_user("alice", cellops.approve, req.id)
    with pytest.raises(cellops.GovernanceError, match="'mallory' is not an approver of m@prod"):
        as_user("mallory", cellops.approve, req.id)
    assert cellops.get_model_version("m", "prod").version == 1

    done = as_user("bob", cellops.approve, req.id, comment="metrics look right")
    assert done.status == "APPROVED" and done.decided_at is not None
    assert done.approvals[0]["approver"] == "bob" and done.approvals[0]["comment"] == "metrics look right"
    assert cellops.get_model_version("m", "prod").version == 2
    with pytest.raises(cellops.ModelStateError, match="already APPROVED"):
        as_user("carol", cellops.approve, req.id)


def test_an_approver_may_request_but_another_approver_decides(model):
    as_user("alice", cellops.protect_alias, "m", "prod", approvers=["bob", "carol"])
    req = as_user("bob", cellops.set_alias, "m", "prod", 2)
    with pytest.raises(cellops.GovernanceError, match="'bob' requested promotion"):
        as_user("bob", cellops.approve, req.id)
    assert as_user("carol", cellops.approve, req.id).status == "APPROVED"


def test_two_approvals_needed_and_nobody_approves_twice(model):
    as_user("alice", cellops.protect_alias, "m", "prod", approvers=["bob", "carol", "dan"],
            min_approvals=2)
    req = as_user("alice", cellops.set_alias, "m", "prod", 2)
    assert as_user("bob", cellops.approve, req.id).approvals_needed == 1
    with pytest.raises(cellops.ModelStateError, match="'bob' has already decided"):
        as_user("bob", cellops.approve, req.id)
    assert cellops.get_model_version("m", "prod").version == 1
    assert as_user("dan", cellops.approve, req.id).status == "APPROVED"
    assert cellops.get_model_version("m", "prod").version == 2


def test_one_rejection_closes_the_request_and_the_alias_stays(model):
    as_user("alice", cellops.protect_alias, "m", "prod", approvers=["bob", "carol"], min_approvals=2)
    req = as_user("alice", cellops.set_alias, "m", "prod", 2)
    as_user("bob", cellops.approve, req.id)
    rejected = as_user("carol", cellops.reject, req.id, comment="drift on segment B")
    assert rejected.status == "REJECTED" and cellops.get_model_version("m", "prod").version == 1
    assert [r.id for r in cellops.promotion_requests("rejected")] == [req.id]
    assert cellops.promotion_requests("pending") == []


def test_a_gate_is_evaluated_on_the_request_and_a_failing_one_cannot_be_approved(model):
    as_user("alice", cellops.protect_alias, "m", "prod", approvers=["bob"], gate="metrics.auc >= 0.95")
    assert cellops.alias_protection("m", "prod") == {"approvers": ["bob"], "min_approvals": 1,
                                                    "gate": "metrics.auc >= 0.95"}
    as_user("alice", cellops.set_alias, "m", "prod", 2)  # auc 0.97: passes
    failing = as_user("alice", cellops.set_alias, "m", "prod", 1)  # auc 0.90
    assert failing.gate_passed is False and "GATE FAILED" in str(failing)
    assert failing.gate_result["checks"][0]["value"] == pytest.approx(0.90)
    with pytest.raises(cellops.ModelStateError, match="failed its gate"):
        as_user("bob", cellops.approve, failing.id)
    passing = cellops.promotion_requests("pending")[-1]
    assert passing.gate_passed is True and passing.version == 2
    assert as_user("bob", cellops.approve, passing.id).status == "APPROVED"
    assert as_user("bob", cellops.reject, failing.id).status == "REJECTED"


def test_a_version_without_a_run_fails_a_gate_and_says_why(model):
    loose = as_user("alice", cellops.register_model, DecisionTreeClassifier(max_depth=1).fit(X, Y), "m")
    as_user("alice", cellops.protect_alias, "m", "prod", approvers=["bob"], gate="metrics.auc > 0.5")
    req = as_user("alice", cellops.set_alias, "m", "prod", loose.version)
    assert req.gate_passed is False and "no source run" in req.gate_result["reason"]


def test_only_approvers_change_or_remove_a_protection_and_pending_requests_are_cancelled(model):
    as_user("alice", cellops.protect_alias, "m", "prod", approvers=["bob"])
    with pytest.raises(cellops.GovernanceError, match="only its approvers \\(bob\\) may change"):
        as_user("alice", cellops.protect_alias, "m", "prod", approvers=["alice"])
    with pytest.raises(cellops.GovernanceError, match="Only an approver"):
        as_user("alice", cellops.unprotect_alias, "m", "prod")
    with pytest.raises(cellops.GovernanceError, match="is protected"):
        as_user("alice", cellops.delete_alias, "m", "prod")
    req = as_user("alice", cellops.set_alias, "m", "prod", 2)
    with pytest.raises(cellops.ModelStateError, match="pending promotion request"):
        as_user("bob", cellops.delete_model_version, "m", 2)  # an approver: may, but not now
    as_user("bob", cellops.protect_alias, "m", "prod", approvers=["bob", "carol"], min_approvals=2)
    as_user("bob", cellops.unprotect_alias, "m", "prod")
    assert cellops.alias_protection("m", "prod") is None
    assert cellops.promotion_requests("cancelled")[0].id == req.id
    assert cellops.get_model_version("m", "prod").version == 1
    assert as_user("alice", cellops.set_alias, "m", "prod", 2).version == 2  # plain alias again


@pytest.mark.parametrize("kwargs, message", [
    ({"approvers": []}, "at least one approver"),
    ({"approvers": ["bob"], "min_approvals": 2}, "min_approvals must be from 1 to the number"),
    ({"approvers": ["bob"], "min_approvals": 0}, "min_approvals"),
    ({"approvers": ["bob"], "gate": "metrics.auc >>= 1"}, "Expected a value"),
])
def test_bad_protections_are_refused_and_nothing_changes(model, kwargs, message):
    with pytest.raises((cellops.InvalidArgumentError, cellops.FilterSyntaxError), match=message):
        cellops.protect_alias("m", "prod", **kwargs)
    assert cellops.alias_protections() == []
    with pytest.raises(cellops.ModelNotFoundError, match="No registered model named 'x'"):
        cellops.protect_alias("x", "prod", approvers=["bob"])


def test_bad_request_ids_and_unknown_requests(model):
    with pytest.raises(cellops.InvalidArgumentError, match="request id is a number"):
        cellops.approve("1")
    with pytest.raises(cellops.ModelNotFoundError, match="No promotion request 99"):
        cellops.approve(99)
    with pytest.raises(cellops.InvalidArgumentError, match="status must be one of"):
        cellops.promotion_requests("open")


# -- audit log --------------------------------------------------------------------------------

def test_every_change_is_in_the_audit_log_with_who_and_before_after(model):
    as_user("alice", cellops.protect_alias, "m", "prod", approvers=["bob"])
    req = as_user("alice", cellops.set_alias, "m", "prod", 2)
    as_user("bob", cellops.approve, req.id)
    as_user("bob", cellops.set_model_tags, "m", {"stage": "live"}, version=2)
    entries = list(reversed(cellops.audit_log()))
    assert [(e.actor, e.action, e.object) for e in entries] == [
        ("alice", "create_model", "m"),
        ("alice", "register_version", "m/1"),
        ("alice", "register_version", "m/2"),
        ("alice", "set_alias", "m@prod"),
        ("alice", "protect_alias", "m@prod"),
        ("alice", "request_promotion", "m@prod"),
        ("bob", "approve", "m@prod"),
        ("bob", "set_alias", "m@prod"),
        ("bob", "set_tags", "m/2"),
    ]
    moved = entries[7].details
    assert moved["before"] == {"version": 1} and moved["after"] == {"version": 2}
    assert moved["request"] == req.id
    assert entries[8].details["after"] == {"stage": "live"}
    assert [e.seq for e in entries] == list(range(1, 10))
    assert [e.action for e in cellops.audit_log(object="m@prod", limit=2)] == ["set_alias", "approve"]
    report = cellops.verify_audit()
    assert report.ok and report.entries == 9 and report.head == entries[-1].hash
    assert str(report).startswith("audit log OK: 9 entries")


def _db(ws):
    return RawDb(ws)


def test_an_altered_entry_is_found(model, ws):
    _db(ws).execute("UPDATE audit_log SET actor = 'bob' WHERE seq = 4")
    report = cellops.verify_audit()
    assert not report.ok and report.first_bad == 4 and "was altered" in report.problem
    assert str(report).startswith("audit log BROKEN at entry 4")


def test_a_removed_entry_is_found(model, ws):
    _db(ws).execute("DELETE FROM audit_log WHERE seq = 2")
    report = cellops.verify_audit()
    assert not report.ok and report.first_bad == 2 and "missing" in report.problem


def test_a_removed_last_entry_is_found_by_what_it_accounted_for_or_a_pinned_head(model, ws):
    pinned = cellops.audit_head()
    assert pinned["seq"] == 4 and cellops.verify_audit(head=pinned["hash"]).ok
    _db(ws).execute("DELETE FROM audit_log WHERE seq = 4")  # m@prod -> 1: the alias is there
    report = cellops.verify_audit()
    assert not report.ok and "m@prod" in report.problem  # its move has no entry any more


def test_a_removed_last_entry_the_registry_does_not_count_is_found_by_a_pinned_head(model, ws):
    cellops.set_model_tags("m", {"owner": "ana"}, version=1)  # tags: not counted against
    pinned = cellops.audit_head()
    _db(ws).execute(f"DELETE FROM audit_log WHERE seq = {pinned['seq']}")
    assert cellops.verify_audit().ok  # a truncated chain is still a chain...
    report = cellops.verify_audit(head=pinned["hash"])  # ...but not the one pinned
    assert not report.ok and "pinned head" in report.problem


def test_reordered_entries_are_found(model, ws):
    con = _db(ws)
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT seq, at, actor, action, object, details, prev_hash, hash FROM audit_log")}
    con.execute("BEGIN")
    for seq, other in ((2, 3), (3, 2)):
        con.execute("UPDATE audit_log SET at=?, actor=?, action=?, object=?, details=?, prev_hash=?,"
                    " hash=? WHERE seq = ?", (*rows[other], seq))
    con.execute("COMMIT")
    report = cellops.verify_audit()
    assert not report.ok and report.first_bad == 2 and "does not follow" in report.problem


def test_a_consistently_rewritten_chain_passes_alone_and_fails_against_the_pinned_head(model, ws):
    """The threat model: whoever can write the workspace can rewrite the whole chain."""
    pinned = cellops.audit_head()["hash"]
    con = _db(ws)
    con.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
    prev = "0" * 64
    for seq, at, actor, action, obj, details in con.execute(
            "SELECT seq, at, actor, action, object, details FROM audit_log ORDER BY seq").fetchall():
        h = entry_hash(seq, at, actor, action, obj, details, prev)
        con.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
        prev = h
    assert cellops.verify_audit().ok
    assert not cellops.verify_audit(head=pinned).ok


def test_audit_rows_cannot_be_changed_through_the_api(model):
    assert not hasattr(cellops, "delete_audit")
    before = cellops.audit_head()
    with pytest.raises(cellops.InvalidArgumentError, match="limit"):
        cellops.audit_log(0)
    assert cellops.audit_head() == before


def test_a_failed_change_writes_no_audit_entry(model):
    before = cellops.audit_head()
    with pytest.raises(cellops.ModelNotFoundError):
        cellops.set_alias("m", "prod", 9)
    with pytest.raises(cellops.ModelStateError):
        cellops.delete_model_version("m", 1)
    assert cellops.audit_head() == before and cellops.verify_audit().ok


# -- processes racing -------------------------------------------------------------------------

def test_a_log_emptied_or_cut_short_is_found_against_the_registry(model, ws):
    """Issue #23: `cellops audit verify` on a log whose every entry was deleted said "OK: 0
    entries" while the versions existed."""
    for _ in range(3):
        cellops.register_model(DecisionTreeClassifier(max_depth=1).fit(X, Y), "m")
    assert cellops.verify_audit().ok
    _db(ws).execute("DELETE FROM audit_log")
    report = cellops.verify_audit()
    assert not report.ok and report.entries == 0
    assert "no entry for 1 of the registry's 1 model(s) (m); 5 of the registry's 5 version(s)" \
        in report.problem
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "audit", "verify"], cwd=ws.path.parent,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "entries were deleted" in res.stdout


RACE = r"""
import sys, time, cellops
from sklearn.linear_model import LogisticRegression
start_at, who = float(sys.argv[1]), sys.argv[2]
model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
while time.time() < start_at:
    time.sleep(0.0005)
print(",".join(str(cellops.register_model(model, "raced").version) for _ in range(10)))
"""


def test_processes_registering_one_name_at_once_get_distinct_numbers(ws, tmp_path):
    start_at = time.time() + 4
    env = {"CELLOPS_HOME": str(ws.path)}
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(start_at), str(i)], cwd=tmp_path,
                              env={**os.environ, **env}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    numbers = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        numbers += [int(n) for n in out.strip().split(",")]
    assert sorted(numbers) == list(range(1, 41))
    assert cellops.verify_audit().ok and cellops.audit_head()["seq"] == 41  # create + 40 versions


APPROVE = r"""
import sys, time, cellops
start_at, who, request = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
while time.time() < start_at:
    time.sleep(0.0005)
with cellops.acting_as(who):
    try:
        print(cellops.approve(request).status)
    except cellops.ModelStateError as exc:
        print("refused:", exc)
"""


@pytest.mark.parametrize("min_approvals", [1, 2])
def test_racing_approvals_move_the_alias_once(model, ws, tmp_path, min_approvals):
    import os
    as_user("alice", cellops.protect_alias, "m", "prod", approvers=["bob", "carol"],
            min_approvals=min_approvals)
    req = as_user("alice", cellops.set_alias, "m", "prod", 2)
    start_at = time.time() + 4
    procs = [subprocess.Popen([sys.executable, "-c", APPROVE, str(start_at), who, str(req.id)],
                              cwd=tmp_path, env={**os.environ, "CELLOPS_HOME": str(ws.path)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for who in ("bob", "carol")]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out.strip())
    if min_approvals == 1:  # one wins, the other is told it is already decided
        assert sorted(outs)[0] == "APPROVED" and "already APPROVED" in sorted(outs)[1]
    else:  # both count; whichever came second moved the alias
        assert sorted(outs) == ["APPROVED", "PENDING"]
    moves = [e for e in cellops.audit_log(object="m@prod") if e.action == "set_alias"
             and e.details.get("request") == req.id]
    assert len(moves) == 1 and cellops.get_model_version("m", "prod").version == 2
    assert cellops.verify_audit().ok


def test_the_audit_log_survives_a_process_killed_mid_registration(model, ws, tmp_path):
    """A registration is one transaction: a killed writer leaves the chain intact."""
    code = r"""
import os, cellops
from sklearn.linear_model import LogisticRegression
m = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
for i in range(10_000):
    cellops.register_model(m, "hammered")
    if i == 20:
        print("going", flush=True)
"""
    p = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path,
                         env={**os.environ, "CELLOPS_HOME": str(ws.path)}, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "going"
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    report = cellops.verify_audit()
    assert report.ok, report
    versions = cellops.search_model_versions("name = 'hammered'", max_results=100_000)
    entries = [e for e in cellops.audit_log(100_000) if e.object.startswith("hammered/")]
    assert len(versions) == len(entries) > 20
    assert json.loads(json.dumps(cellops.audit_head()))["seq"] == report.entries
    assert run_python("import cellops; print(cellops.verify_audit().ok)", tmp_path,
                      {"CELLOPS_HOME": str(ws.path)}).stdout.strip() == "True"


# -- destructive actions are governed and audited (issue #27) -----------------------------
def runs_of(model_name: str) -> dict[int, str]:
    return {v.version: v.run_id for v in cellops.search_model_versions(f"name = '{model_name}'")}


def test_the_run_a_registered_version_comes_from_is_not_deleted_by_accident(model):
    source = runs_of("m")[1]
    with pytest.raises(cellops.ModelStateError, match=r"m v1 \(run .{8}\) come from the run"):
        cellops.delete_runs([source])
    assert cellops.get_run(source).id == source  # nothing was deleted
    assert [e.action for e in cellops.audit_log(limit=1)] != ["delete_run"]
    assert cellops.delete_runs([source], force=True) == [source]  # no protection: force is enough
    entry = cellops.audit_log(limit=1)[0]
    assert (entry.action, entry.object) == ("delete_run", source)
    assert entry.details["before"]["model_versions"] == ["m/1"]
    assert cellops.verify_audit().ok


def test_only_an_approver_may_force_deleting_the_source_run_of_a_protected_model(model):
    as_user("alice", cellops.protect_alias, "m", "prod", approvers=["bob"])
    source = runs_of("m")[1]
    with pytest.raises(cellops.GovernanceError, match=r"m has protected aliases \(@prod\), so only "
                                                      r"their approvers \(bob\) may delete the runs"):
        as_user("mallory", cellops.delete_runs, [source], force=True)
    assert cellops.get_run(source)
    assert as_user("bob", cellops.delete_runs, [source], force=True) == [source]
    assert cellops.audit_log(limit=1)[0].actor == "bob"


def test_a_parent_run_whose_child_made_a_version_is_guarded_too(ws):
    with cellops.start_run(name="pipeline") as parent:
        with cellops.start_run(name="train") as child:
            cellops.register_model(DecisionTreeClassifier(max_depth=1).fit(X, Y), "kid")
    with pytest.raises(cellops.ModelStateError, match="kid v1"):
        cellops.delete_runs([parent.id])
    deleted = cellops.delete_runs([parent.id], force=True)
    assert set(deleted) == {parent.id, child.id}
    logged = {e.object for e in cellops.audit_log(limit=10) if e.action == "delete_run"}
    assert logged == {parent.id, child.id}


def test_every_run_deletion_is_audited(ws):
    with cellops.start_run(name="scratch") as run:
        pass
    cellops.delete_runs([run.id])
    entry = cellops.audit_log(limit=1)[0]
    assert (entry.action, entry.object) == ("delete_run", run.id)
    assert entry.details["before"]["name"] == "scratch" and entry.details["after"] is None
    assert cellops.verify_audit().ok


def test_only_approvers_delete_versions_of_a_model_with_protected_aliases(model):
    as_user("alice", cellops.protect_alias, "m", "prod", approvers=["bob"])
    with pytest.raises(cellops.GovernanceError, match="only their approvers \\(bob\\) may delete its versions"):
        as_user("mallory", cellops.delete_model_version, "m", 2)
    assert cellops.get_model_version("m", 2).version == 2
    as_user("bob", cellops.delete_model_version, "m", 2)
    entry = cellops.audit_log(limit=1)[0]
    assert (entry.action, entry.object, entry.actor) == ("delete_version", "m/2", "bob")


def test_alias_and_protection_deletions_are_audited(model):
    as_user("alice", cellops.delete_alias, "m", "prod")
    assert (cellops.audit_log(limit=1)[0].action, cellops.audit_log(limit=1)[0].object) == \
        ("delete_alias", "m@prod")
    as_user("alice", cellops.protect_alias, "m", "prod", approvers=["bob"])
    as_user("bob", cellops.unprotect_alias, "m", "prod")
    assert cellops.audit_log(limit=1)[0].action == "unprotect_alias"


def test_the_cli_refuses_deleting_a_source_run_with_one_line(model, tmp_path):
    source = runs_of("m")[1]
    cellops.flush()
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "runs", "delete", source[:8], "--yes"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "come from the run(s) to delete" in res.stderr and "--force" in res.stderr


RACE_PROTECT = r"""
import sys, time, cellops
start_at, trials = float(sys.argv[1]), int(sys.argv[2])
role = sys.argv[3]
for t in range(trials):
    while time.time() < start_at + t * 0.5:
        time.sleep(0.0002)
    alias = f"prod{t}"
    if role == "protect":
        with cellops.acting_as("bob"):
            cellops.protect_alias("m", alias, approvers=["bob"])
    else:
        with cellops.acting_as("mallory"):
            result = cellops.set_alias("m", alias, 2)
            print(type(result).__name__)
"""


def test_a_set_alias_racing_a_protection_never_moves_a_protected_alias(model, ws, tmp_path):
    """Issue #23: the protection was read before the alias was written, in another
    transaction, so a non-approver's set_alias landed after a concurrent protect_alias
    (6 of 8 trials). Each trial races the two; whichever commits second sees the other."""
    import os

    trials = 8
    start_at = time.time() + 4
    env = {**os.environ, "CELLOPS_HOME": str(ws.path)}
    procs = [subprocess.Popen([sys.executable, "-c", RACE_PROTECT, str(start_at), str(trials), role],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for role in ("protect", "set")]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    for t in range(trials):
        entries = [e.action for e in reversed(cellops.audit_log(200, object=f"m@prod{t}"))]
        assert "protect_alias" in entries, entries
        if "set_alias" in entries:  # mallory's move landed: it must have come first
            assert entries.index("set_alias") < entries.index("protect_alias"), (t, entries)
        else:  # protected first: mallory only asked
            assert "request_promotion" in entries, (t, entries)
    assert cellops.verify_audit().ok
