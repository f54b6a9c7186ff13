"""A postmortem that names the change behind an incident becomes a confirmed root cause in the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from knowledge.changes import Change
from knowledge.db import session_scope
from knowledge.incidents import Incident, RootCause
from knowledge.wiki.indexing import read_wiki
from knowledge.wiki.postmortems import link_postmortems
from tests.rca.test_answers import PERSONAL, PERSONAL_PARTS, stored_text
from tools.rca.history.from_store import store_history
from tools.rca.store import stored_words

FULL_SHA = "4be1c0ffee4be1c0ffee4be1c0ffee4be1c0ffee"


def _write(root: Path, relative: str, text: str) -> None:
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_text(text)


def _store_full_sha_change(database_url: str) -> None:
    """The change whose short sha the postmortems name."""
    with session_scope(database_url) as session:
        session.add(
            Change(id=FULL_SHA, repo="acme/platform", title="single consumer",
                   author_time=datetime(2024, 3, 30, tzinfo=UTC), landed_time=datetime(2024, 3, 30, tzinfo=UTC))
        )  # fmt: skip


def test_front_matter_and_body_line_links_become_root_causes(tmp_path: Path, database_url: str) -> None:
    _write(
        tmp_path,
        "postmortems/inc-7.md",
        "---\ntitle: Checkout spinner never finishes\ntype: postmortem\nservices: [checkout]\n"
        "incident: INC-7\nstarted_at: 2024-03-12T14:05:00Z\nroot_cause_change: [aaa1111, bbb2222]\n---\n"
        "## Summary\nThe cart hung.\n",
    )
    _write(
        tmp_path,
        "postmortems/inc-8.md",
        "---\ntype: postmortem\nincident: INC-8\nstarted_at: 2024-04-01 09:00:00\n---\n"
        "# Emails late\n\n## Root cause\nRoot cause: `4be1c0ffee`\n",
    )
    _store_full_sha_change(database_url)

    report = link_postmortems(read_wiki(tmp_path).pages, database_url, stored_words)

    assert [(link.incident_id, link.change_ids) for link in report.linked] == [
        ("INC-7", ("aaa1111", "bbb2222")),
        ("INC-8", ("4be1c0ffee",)),
    ]
    with session_scope(database_url) as session:
        incident = session.get(Incident, "INC-7")
        assert incident is not None
        assert (incident.title, incident.service, incident.source) == (
            "Checkout spinner never finishes", "checkout", "postmortem",
        )  # fmt: skip
        assert incident.started_at == datetime(2024, 3, 12, 14, 5, tzinfo=UTC)
        causes = session.scalars(select(RootCause).order_by(RootCause.incident_id, RootCause.change_id)).all()
        assert [(cause.incident_id, cause.change_id, cause.source) for cause in causes] == [
            ("INC-7", "aaa1111", "postmortem"),
            ("INC-7", "bbb2222", "postmortem"),
            ("INC-8", FULL_SHA, "postmortem"),
        ]

    again = link_postmortems(read_wiki(tmp_path).pages, database_url, stored_words)
    assert len(again.linked) == 2
    with session_scope(database_url) as session:
        assert len(session.scalars(select(RootCause)).all()) == 3


def test_an_incident_only_its_postmortem_told_of_trains_on_its_title_not_on_the_cause_it_names(
    tmp_path: Path, database_url: str
) -> None:
    """The postmortem's body, stored as the incident's text, was written after it and names the cause: a model
    trained on it learns that an incident's text matches its culprit's title word for word."""
    _write(
        tmp_path,
        "postmortems/inc-9.md",
        "---\ntitle: Queue consumers stall\ntype: postmortem\nincident: INC-9\nstarted_at: 2024-04-01T09:00:00Z\n---\n"
        "## Summary\nConsumers stalled.\n\n## Root cause\nRoot cause: `4be1c0ffee` (\"single consumer\") was reverted.\n",
    )
    _store_full_sha_change(database_url)
    report = link_postmortems(read_wiki(tmp_path).pages, database_url, stored_words)
    assert [link.incident_id for link in report.linked] == ["INC-9"]

    [case] = store_history(database_url).cases

    assert (case.case_id, case.incident.title, case.truth.culprits) == ("INC-9", "Queue consumers stall", [FULL_SHA])
    assert "single consumer" not in case.incident.text and "4be1c0ffee" not in case.incident.text


def test_a_linked_postmortem_is_stored_without_the_e_mail_and_phone_it_names(tmp_path: Path, database_url: str) -> None:
    """Training reads the incident a postmortem creates into a model file, as it reads an answered one."""
    _write(
        tmp_path,
        "postmortems/inc-11.md",
        f"---\ntitle: Checkout down, {PERSONAL}\ntype: postmortem\nincident: INC-11\n"
        f"started_at: 2024-04-01T09:00:00Z\n---\n## Summary\nCheckout hung, {PERSONAL}.\n\nRoot cause: abc1234def\n",
    )

    report = link_postmortems(read_wiki(tmp_path).pages, database_url, stored_words)

    assert [link.incident_id for link in report.linked] == ["INC-11"]
    with session_scope(database_url) as session:
        incident = session.get(Incident, "INC-11")
        assert incident is not None and incident.title == "Checkout down, paged [email], call [phone]"
        assert "Checkout hung, paged [email], call [phone]." in incident.text
    stored = stored_text(database_url)
    assert "INC-11" in stored and not [part for part in PERSONAL_PARTS if part in stored]


def test_postmortems_that_cannot_be_linked_say_what_to_add(tmp_path: Path, database_url: str) -> None:
    _write(tmp_path, "postmortems/a.md", "---\ntype: postmortem\nroot_cause_change: abc1234\n---\nNo incident id.\n")
    _write(tmp_path, "postmortems/b.md", "---\ntype: postmortem\nincident: INC-9\n---\nRoot cause: abc1234def\n")
    _write(tmp_path, "postmortems/c.md", "---\ntype: postmortem\nincident: INC-10\n---\nStill investigating.\n")

    report = link_postmortems(read_wiki(tmp_path).pages, database_url, stored_words)

    assert report.linked == []
    assert [note.split(":")[0] for note in report.skipped] == ["postmortems/a.md", "postmortems/b.md"]
    assert "incident:" in report.skipped[0] and "started_at:" in report.skipped[1]
    with session_scope(database_url) as session:
        assert session.scalars(select(Incident)).all() == []


def test_a_postmortem_with_a_bad_value_is_not_linked_and_the_others_are(tmp_path: Path, database_url: str) -> None:
    header = "---\ntype: postmortem\nstarted_at: 2024-05-01T09:30:00Z\n"
    _write(tmp_path, "postmortems/good.md", f"{header}incident: INC-1\n---\nRoot cause: abc1234def\n")
    _write(tmp_path, "postmortems/when.md", "---\ntype: postmortem\nincident: INC-2\nstarted_at: last tuesday\n"
                                             "---\nRoot cause: abc1234def\n")  # fmt: skip
    _write(tmp_path, "postmortems/long-id.md", f"{header}incident: INC-{'9' * 300}\n---\nRoot cause: abc1234def\n")
    _write(tmp_path, "postmortems/long-change.md", f"{header}incident: INC-4\nroot_cause_change: {'f' * 100}\n---\n")
    _write(tmp_path, "postmortems/mapping.md", f"{header}incident: INC-5\nroot_cause_change: {{sha: abc1234}}\n---\n")
    _write(tmp_path, "postmortems/service.md", f"{header}incident: INC-6\nservice: {'s' * 300}\n---\nRoot cause: abc1234def\n")
    _write(tmp_path, "postmortems/far.md", "---\ntype: postmortem\nincident: INC-7\nstarted_at: '9999-12-31T23:00:00-05:00'\n"
                                            "---\nRoot cause: abc1234def\n")  # fmt: skip

    report = link_postmortems(read_wiki(tmp_path).pages, database_url, stored_words)

    assert [link.incident_id for link in report.linked] == ["INC-1"]
    assert sorted(report.skipped) == [
        "postmortems/far.md: started_at '9999-12-31T23:00:00-05:00' is out of range; give the time from 1970 on",
        (
            f"postmortems/long-change.md: root_cause_change '{'f' * 80}' is not a change id "
            "(one line of at most 64 characters, such as a sha)"
        ),
        "postmortems/long-id.md: incident id is not one line of at most 200 characters",
        "postmortems/mapping.md: root_cause_change must be a change id or a list of them",
        "postmortems/service.md: service name is over 200 characters",
        "postmortems/when.md: started_at 'last tuesday' is not an ISO time such as 2024-05-01T09:30:00Z",
    ]
    with session_scope(database_url) as session:
        assert [cause.incident_id for cause in session.scalars(select(RootCause)).all()] == ["INC-1"]
