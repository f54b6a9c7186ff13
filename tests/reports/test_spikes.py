from collections import Counter
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from knowledge.db import session_scope
from knowledge.demo.reports import demo_reports
from knowledge.reports import Alert
from tools.reports.intake import IncomingReport, bump_daily_counts, ingest_reports
from tools.reports.spikes import alert_text, check_spikes, find_spikes


def _daily(reports: list[dict[str, str]]) -> dict[str, dict[date, int]]:
    counts: dict[str, dict[date, int]] = {}
    for report in reports:
        day = datetime.fromisoformat(report["created_at"]).date()
        by_day = counts.setdefault(report["category"], {})
        by_day[day] = by_day.get(day, 0) + 1
    return counts


def test_every_injected_outage_alerts_within_a_day_and_nothing_else_does() -> None:
    demo = demo_reports()
    counts = _daily(demo.reports)
    alerts = []
    day = demo.first_day
    while day <= demo.last_day:
        alerts += find_spikes(counts, day, demo.first_day)
        day += timedelta(days=1)
    outage_days = {(s.category, s.start + timedelta(days=k)) for s in demo.spikes for k in range((s.end - s.start).days + 1)}
    assert [a for a in alerts if (a.category, a.day) not in outage_days] == []
    for spike in demo.spikes:
        hits = [a for a in alerts if a.category == spike.category and spike.start <= a.day <= spike.start + timedelta(days=1)]
        assert hits, f"missed the {spike.category} outage starting {spike.start}"
    assert len(demo.spikes) == 4 and len(demo.reports) > 4000


def _steady_history(database_url: str) -> date:
    """Five quiet weeks of login and crash reports (more login on weekends); returns the day after them."""
    start = date(2025, 5, 1)
    counts: Counter[tuple[date, str]] = Counter()
    for offset in range(35):
        day = start + timedelta(days=offset)
        counts[(day, "login")] = 8 + (4 if day.weekday() >= 5 else 0)
        counts[(day, "crash")] = 5
    with session_scope(database_url) as session:
        bump_daily_counts(session, counts)
    return start + timedelta(days=35)


def test_a_spike_posts_once_while_it_lasts_with_count_baseline_and_examples(database_url: str) -> None:
    outage = _steady_history(database_url)
    midnight = datetime.combine(outage, datetime.min.time(), UTC)
    ingest_reports(
        [IncomingReport(f"o{n}", f"cannot sign in, attempt {n} on my Pixel", midnight + timedelta(minutes=n)) for n in range(30)],
        classifier=_Fixed("login"),
        other_confidence=0.4,
        url=database_url,
    )
    first = check_spikes(outage, database_url)
    assert [a.key for a in first] == ["login"]
    assert first[0].details["count"] == 30 and 7 < first[0].details["baseline"] < 13
    assert len(first[0].details["examples"]) == 3
    message = alert_text(first[0])
    assert "Spike in *login*" in message and "30 reports" in message and message.count("\n> ") == 3

    assert check_spikes(outage, database_url) == [], "same day again: the episode is already recorded"
    with session_scope(database_url) as session:
        bump_daily_counts(session, Counter({(outage + timedelta(days=1), "login"): 40}))
    assert check_spikes(outage + timedelta(days=1), database_url) == [], "the next day extends the episode"
    with session_scope(database_url) as session:
        episode = session.scalars(select(Alert)).one()
        assert episode.last_seen_on == outage + timedelta(days=1)


def test_a_spike_day_whose_late_reports_arrive_after_the_next_day_alerted_joins_that_episode(database_url: str) -> None:
    """The outage began late on one day; that day's reports (phones offline) arrived the next day, after the check of
    that next day had started the episode: checking the first day again posted the same outage a second time."""
    outage = _steady_history(database_url)
    with session_scope(database_url) as session:
        bump_daily_counts(session, Counter({(outage + timedelta(days=1), "login"): 40}))
    assert [a.key for a in check_spikes(outage + timedelta(days=1), database_url)] == ["login"]
    with session_scope(database_url) as session:
        bump_daily_counts(session, Counter({(outage, "login"): 30}))  # the day before, arriving late
    assert check_spikes(outage, database_url) == [], "the outage is already posted"
    with session_scope(database_url) as session:
        episode = session.scalars(select(Alert)).one()
        assert (episode.started_on, episode.last_seen_on) == (outage + timedelta(days=1), outage + timedelta(days=1))


class _Fixed:
    """Puts every report in one category: this test is about counting, not classifying."""

    def __init__(self, category: str) -> None:
        self.category = category

    @property
    def categories(self) -> list[str]:
        return [self.category]

    def classify(self, texts: list[str]):
        from tools.reports.classifiers import Prediction

        return [Prediction(self.category, 0.9) for _ in texts]
