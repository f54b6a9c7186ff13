"""Letters for a batch and the distribution read from the first answer token's logprobs."""

from __future__ import annotations

import math

import pytest

from tools.rca.answers import IncidentQuery
from tools.rca.judges.prompt import candidate_labels, judge_messages
from tools.rca.judges.llm import MalformedAnswer, letter_distribution

from tests.llm.conftest import make_changes


def test_batches_up_to_26_get_single_letters_and_larger_ones_two_letters_none_prefixing_another() -> None:
    assert candidate_labels(20) == list("ABCDEFGHIJKLMNOPQRST")
    labels = candidate_labels(40)
    assert len(set(labels)) == 40 and all(len(label) == 2 for label in labels)
    with pytest.raises(ValueError, match="too large"):
        candidate_labels(677)


def test_probabilities_of_the_batch_letters_are_renormalised_and_whitespace_ignored() -> None:
    top = [(" B", math.log(0.5)), ("A", math.log(0.2)), ("the", math.log(0.2)), ("C", -9999.0)]

    distribution = letter_distribution(top, ["A", "B", "C"])

    assert distribution == pytest.approx({"A": 0.2 / 0.7, "B": 0.5 / 0.7, "C": 0.0})
    assert sum(distribution.values()) == pytest.approx(1.0)


def test_mass_the_top_list_does_not_show_goes_to_the_letters_it_does_not_mention() -> None:
    distribution = letter_distribution([("A", math.log(0.6))], ["A", "B", "C", "D", "E"])

    assert distribution["A"] == pytest.approx(0.6)
    assert [distribution[label] for label in "BCDE"] == pytest.approx([0.1] * 4)


def test_a_token_that_begins_several_two_letter_labels_is_shared_among_them() -> None:
    labels = candidate_labels(30)  # AA..BD
    distribution = letter_distribution([("A", math.log(0.5)), ("BC", math.log(0.5))], labels)

    assert distribution["BC"] == pytest.approx(0.5)
    assert distribution["AA"] == pytest.approx(0.5 / 26)
    assert distribution["BA"] == pytest.approx(0.0, abs=1e-9)


def test_logprobs_without_any_batch_letter_are_malformed() -> None:
    with pytest.raises(MalformedAnswer):
        letter_distribution([("the", -0.1), ("", -0.2)], ["A", "B"])


@pytest.mark.parametrize("logprob", [1e-3, 0.7, 710.0, 1e300])
def test_a_logprob_above_zero_is_malformed_however_large(logprob: float) -> None:
    with pytest.raises(MalformedAnswer, match=r"is above 0, a probability over 1"):
        letter_distribution([("B", -0.5), ("A", logprob)], ["A", "B"])


def test_a_logprob_above_zero_only_by_rounding_counts_as_certain() -> None:
    distribution = letter_distribution([("A", 1e-9), ("B", -30.0)], ["A", "B"])

    assert distribution["A"] == pytest.approx(1.0)


def test_the_prompt_shows_the_incident_at_its_start_and_every_change_with_its_letter(
    incident: IncidentQuery,
) -> None:
    batch = make_changes(3)

    system, user = judge_messages(incident, [candidate.change for candidate in batch])

    assert system["role"] == "system" and user["role"] == "user"
    text = user["content"]
    for needle in (incident.title, incident.text, "Service: payments", "Started: 2025-03-04 09:30 UTC"):
        assert needle in text
    assert "A. payments: change number 0 (20 min before; services/payments/handler_0.py" in text
    assert "C. payments: change number 2 (60 min before;" in text
