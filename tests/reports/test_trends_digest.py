from collections import Counter
from datetime import UTC, date, datetime, timedelta

from knowledge.db import session_scope
from knowledge.incidents import Feedback, Incident, RootCause, Suggestion
from knowledge.reports import Alert, BugReport
from tools.reports.data_quality import check_data_quality
from tools.reports.digest import build_digest, category_chart
from tools.reports.intake import IncomingReport, bump_daily_counts, ingest_reports
from tools.reports.trends import complaints_about, explain_rise, rising_categories, top_categories, trend_tools

END = date(2025, 6, 8)


class _ByKeyword:
    """Files reports by one obvious word so these tests are about counting and wording."""

    categories = ["payments", "login", "other"]

    def classify(self, texts):
        from tools.reports.classifiers import Prediction

        return [Prediction("payments" if "charged" in t else "login", 0.2 if "unclear" in t else 0.9) for t in texts]


def _history(url: str) -> None:
    counts: Counter[tuple[date, str]] = Counter()
    for offset in range(35):
        day = END - timedelta(days=offset)
        counts[(day, "login")] += 6
        counts[(day, "payments")] += 1 if offset >= 7 else 0
    with session_scope(url) as session:
        bump_daily_counts(session, counts)
    earlier = [IncomingReport(f"e{n}", f"cannot log in with google, try {n}", _at(END - timedelta(days=10))) for n in range(6)]
    recent = [IncomingReport(f"p{n}", f"charged twice for premium after apple pay renewal, try {n}", _at(END - timedelta(days=1))) for n in range(12)]
    ingest_reports(earlier + recent, classifier=_ByKeyword(), other_confidence=0.4, url=url)


def _at(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10)


def test_trends_answer_what_users_report_and_why_it_rose(database_url: str) -> None:
    _history(database_url)
    top = top_categories(END, 7, url=database_url)
    assert [c.category for c in top] == ["login", "payments"] and top[0].count == 42
    assert [c.category for c in rising_categories(END, 7, url=database_url)] == ["payments"]

    groups = complaints_about("premium", days=7, end=END, url=database_url)
    assert groups[0]["category"] == "payments" and groups[0]["count"] == 12 and len(groups[0]["examples"]) == 3
    assert complaints_about("%", days=7, end=END, url=database_url) == []  # a topic, not a wildcard
    assert complaints_about("_", days=7, end=END, url=database_url) == []

    rise = explain_rise("payments", days=7, end=END, url=database_url)
    assert (rise.count, rise.previous) == (12, 7.0)
    assert "apple pay" in rise.new_terms or "apple" in rise.new_terms

    tools = {t.name: t for t in trend_tools(database_url, END)}
    answer = tools["user_complaints"].invoke({"topic": "premium", "days": 7})
    assert answer.startswith("User reports about 'premium' in the last 7 days") and "payments: 12 reports" in answer
    # A category the store does not know is said to be unknown, not "held steady" at zero.
    assert tools["complaint_trend"].invoke({"category": "logn"}) == "No report category 'logn'; did you mean 'login'?"
    assert tools["report_rise"].invoke({"category": "weather"}) == "No report category 'weather'; the categories are: login, payments"


def test_why_reports_rose_names_only_the_spikes_of_its_window(database_url: str) -> None:
    """The agent asks about the week up to an incident's day; a spike that began after that day is not why reports
    rose then, yet ``report_rise`` listed every spike seen since the window's start, later ones too."""
    _history(database_url)
    with session_scope(database_url) as session:
        for started in (END - timedelta(days=1), END + timedelta(days=9)):
            session.add(Alert(kind="spike", key="payments", started_on=started, last_seen_on=started,
                              details={"count": 12, "baseline": 1.0}))
    rise = explain_rise("payments", days=7, end=END, url=database_url)
    assert [spike["started_on"] for spike in rise.spikes] == [END - timedelta(days=1)]
    answer = {t.name: t for t in trend_tools(database_url, END)}["report_rise"].invoke({"category": "payments"})
    assert f"Spike on {END - timedelta(days=1)}" in answer and f"Spike on {END + timedelta(days=9)}" not in answer


def test_a_category_whose_reports_were_all_relabeled_away_is_not_a_top_category(database_url: str) -> None:
    """A responder moved a report to a new category, then merged it back: the new category's day kept a count of 0,
    and the digest listed it among the top categories with "0 reports" and drew it on the chart."""
    from tools.reports.labels import relabel_report

    _history(database_url)
    relabel_report("p0", "billing", database_url, new=True)
    relabel_report("p0", "payments", database_url)
    assert [c.category for c in top_categories(END, 7, url=database_url)] == ["login", "payments"]
    assert "billing" not in build_digest(END, database_url, with_chart=False).text


def test_the_digest_says_rising_categories_are_compared_with_the_four_weeks_average(database_url: str) -> None:
    """The figure a rising category is compared with is its weekly average over the four weeks before, yet the digest
    called it "a week before": 0 reports the week before read as 10.5."""
    counts = Counter({(END - timedelta(days=offset), "payments"): 2 for offset in range(14, 35)})
    counts.update({(END - timedelta(days=offset), "payments"): 3 for offset in range(7)})
    with session_scope(database_url) as session:
        bump_daily_counts(session, counts)
    text = build_digest(END, database_url, with_chart=False).text
    assert "• payments: 21 vs 10.5 a week usually (+100% vs the previous four weeks" in text


def test_digest_lists_top_rising_spikes_and_rca_stats(database_url: str) -> None:
    _history(database_url)
    with session_scope(database_url) as session:
        incident = Incident(id="INC-1", title="feed down", started_at=_at(END - timedelta(days=2)))
        suggestion = Suggestion(incident=incident, change_id="abc", rank=1, score=0.9, confidence=0.8, created_at=_at(END - timedelta(days=2)))
        session.add_all([incident, suggestion])
        session.flush()
        session.add(Feedback(suggestion_id=suggestion.id, user_id="U1", vote=1, at=_at(END - timedelta(days=1))))
        other = Incident(id="INC-2", title="search slow", started_at=_at(END - timedelta(days=3)))
        session.add_all([other, Suggestion(incident=other, change_id="def", rank=1, score=0.9, confidence=0.9, created_at=_at(END - timedelta(days=3)))])
        # Confirmed causes are the verdicts: INC-1's was in its five, INC-2's was not although culprit was sure.
        session.add_all([RootCause(incident_id="INC-1", change_id="abc", source="confirmed"),
                         RootCause(incident_id="INC-2", change_id="xyz", source="confirmed")])
    assert "*Not sorted*\n• none" in build_digest(END, database_url, with_chart=False).text
    unclear = [IncomingReport(f"u{n}", f"something unclear happened {n}", _at(END - timedelta(days=n))) for n in range(3)]
    stored = ingest_reports(unclear, classifier=_ByKeyword(), other_confidence=0.4, url=database_url)
    assert stored.other == 3
    with session_scope(database_url) as session:
        kept = {(r.category, r.confidence) for r in session.query(BugReport).filter(BugReport.id.like("u%"))}
    assert kept == {("other", 0.2)}, "an unsure report keeps the confidence that sent it to 'other'"
    digest = build_digest(END, database_url)
    assert "• 3 reports went to 'other' (classifier confidence below CULPRIT_OTHER_CONFIDENCE" in digest.text
    assert digest.week == "2025-W23"
    assert "login: 42 reports" in digest.text and "payments: 12 vs" in digest.text
    assert "incidents analysed: 2" in digest.text and "confirmed by responders: 1" in digest.text
    assert "precision (confirmed cause in the five): 1/2 = 50%" in digest.text
    assert "false confidence (sure answers that missed the confirmed cause): 1/2 = 50%" in digest.text
    assert digest.chart_png and digest.chart_png.startswith(b"\x89PNG")
    assert all(block["type"] == "section" for block in digest.blocks)


def test_the_chart_shows_category_names_as_written(database_url: str, monkeypatch) -> None:  # noqa: ANN001
    from matplotlib import pyplot

    names = ["$\\nope$ billing", "_internal"]  # TeX matplotlib cannot parse; a label it would hide
    with session_scope(database_url) as session:
        bump_daily_counts(session, Counter({(END - timedelta(days=n), name): 3 for n in range(5) for name in names}))
    drawn: list[list[str]] = []
    close = pyplot.close

    def keep_legend(figure) -> None:  # noqa: ANN001
        drawn.append([text.get_text() for text in figure.axes[0].get_legend().get_texts()])
        close(figure)

    monkeypatch.setattr(pyplot, "close", keep_legend)
    assert category_chart(names, END, database_url).startswith(b"\x89PNG")
    assert drawn == [names]


def test_intake_silence_and_a_flood_of_other_raise_one_alert_each(database_url: str) -> None:
    now = datetime(2025, 6, 8, 12, tzinfo=UTC)
    ingest_reports([IncomingReport("x1", "login fails", now - timedelta(days=2))], classifier=_ByKeyword(), other_confidence=0.4, url=database_url, now=now - timedelta(days=2))
    alerts = check_data_quality(now=now, url=database_url)
    assert [a.kind for a in alerts] == ["intake_stopped"] and "48 hours" in alerts[0].details["message"]
    assert check_data_quality(now=now + timedelta(hours=1), url=database_url) == []

    counts = Counter({(now.date() - timedelta(days=k), "login"): 40 for k in range(1, 14)})
    counts.update({(now.date() - timedelta(days=k), "other"): 2 for k in range(1, 14)})
    counts.update({(now.date(), "login"): 20, (now.date(), "other"): 20})
    with session_scope(database_url) as session:
        bump_daily_counts(session, counts)
    kinds = [a.kind for a in check_data_quality(now=now + timedelta(hours=2), url=database_url)]
    assert kinds == ["other_share"]
