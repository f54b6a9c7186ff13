"""Earlier changes described like an incident point at the code it is about, never from the future."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from knowledge.changes import ChangeRecord
from tests.changes import change_record
from tools.rca.answers import IncidentQuery
from tools.rca.explain import explain
from tools.rca.signals.similar_changes import description, learn_similar_changes

MAY = datetime(2024, 5, 1, tzinfo=UTC)


def _past(day: int, title: str, body: str, path: str, functions: tuple[str, ...] = ()) -> ChangeRecord:
    landed = MAY - timedelta(days=60 - day)
    return change_record(f"{path}@{day}:{title}", title, landed, [path], body=body, functions=functions)


def _history() -> list[ChangeRecord]:
    changes = []
    for day in range(0, 40, 2):
        changes.append(_past(day, "cart: fix timeout when the basket is empty", "Checkout hung.", "src/cart/basket.c"))
        changes.append(_past(day + 1, "search: stale prices in results", "The index kept old rows.", "src/search/index.c"))
        changes.append(_past(day, "misc: tidy whitespace", "", f"src/misc/file{day}.c"))
    changes.append(_past(55, "billing: invoices rounded twice", "", "src/billing/invoice.c"))
    changes.append(_past(57, "billing: invoices rounded twice again", "", "src/billing/invoice.c"))
    return changes


def _touching(*paths: str, functions: tuple[str, ...] = ()) -> ChangeRecord:
    return change_record("candidate", "a candidate", MAY - timedelta(hours=1), paths, functions=functions)


def test_descriptions_read_like_symptom_reports() -> None:
    assert description("cart: fix cart_total() overflow", "Seen in src/cart/basket.c.\n\nMore.") == "fix overflow Seen in"


def test_a_candidate_in_the_place_similar_changes_touched_scores_higher() -> None:
    index = learn_similar_changes(_history())
    assert index is not None and len(index) == len(_history())
    nearby = index.neighbourhood("checkout hangs with a timeout, basket empty", MAY.timestamp())

    cart_lift, cart_share, _ = nearby.score(_touching("src/cart/basket.c"))
    search_lift, _, _ = nearby.score(_touching("src/search/index.c"))
    assert cart_lift > 1.0 and cart_share > 0.9
    assert search_lift < 1e-9  # only "src", which every change touches
    place, count, usual = nearby.strongest(_touching("src/cart/basket.c", "README"))
    assert (place, count) == ("src/cart/basket", nearby.n_neighbours) and 0.3 < usual < 0.4
    assert nearby.strongest(_touching("src/search/index.c")) is None  # "src" alone is touched by everything


def test_changes_from_after_the_cut_do_not_vote() -> None:
    index = learn_similar_changes(_history())
    assert index is not None
    before_billing = (MAY - timedelta(days=6)).timestamp()
    billing = _touching("src/billing/invoice.c")
    assert index.neighbourhood("invoices rounded twice", before_billing).score(billing) == (0.0, 0.0, 0.0)
    after = index.neighbourhood("invoices rounded twice", MAY.timestamp())
    assert after.score(billing)[0] > 0


def test_the_explanation_says_how_many_similar_changes_touched_the_same_place() -> None:
    index = learn_similar_changes(_history())
    assert index is not None
    query = IncidentQuery(text="checkout hangs with a timeout, basket empty", started_at=MAY)
    change = change_record("c1", "cart: reuse buffers", MAY - timedelta(hours=3), ["src/cart/basket.c"])
    evidence = explain(query, change, neighbourhood=index.neighbourhood(query.full_text, MAY.timestamp()))
    assert "src/cart/basket.c" in evidence.matched_paths
    assert any("earlier changes described most like this incident touched src/cart/basket (usually 32% of changes do)" in s
               for s in evidence.sentences)


def test_too_little_history_learns_nothing() -> None:
    assert learn_similar_changes([]) is None
    assert learn_similar_changes([_past(1, "a: one", "", "x.c"), _past(2, "b: two", "", "y.c")]) is None


def test_the_functions_similar_changes_touched_are_places_too() -> None:
    """Every cart change touched basket.c, but the ones described like the incident were all in
    basket_total(): a candidate in that function scores there, one elsewhere in the file does not."""
    history = _history() + [
        _past(day, "cart: totals wrong after a discount", "Rounding.", "src/cart/basket.c", ("basket_total",))
        for day in range(41, 50)
    ]
    index = learn_similar_changes(history)
    assert index is not None
    nearby = index.neighbourhood("cart totals wrong after a discount", MAY.timestamp())
    in_function = nearby.score(_touching("src/cart/basket.c", functions=("basket_total",)))
    elsewhere = nearby.score(_touching("src/cart/basket.c", functions=("basket_empty",)))
    assert in_function[:2] == elsewhere[:2] and in_function[0] > 0  # the file's own evidence is the same
    assert in_function[2] > 0.5 and elsewhere[2] == 0.0
