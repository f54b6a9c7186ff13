"""A refused statement's error, as every log line and traceback shows it, leaves out the values sent."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from knowledge.db import failure_reason, get_engine
from tests.refused_writes import PERSON


def test_a_refused_statement_error_names_the_statement_but_not_its_parameters(database_url: str) -> None:
    """SQLAlchemy appended ``[parameters: {'name': 'Rosalind ...'}]`` to the error: a report's text or a
    person's name then reached every traceback a job or a library logged, whatever culprit's own lines did."""
    engine = get_engine(database_url)
    with engine.begin() as connection:  # neither database repeats the value in its own message for this refusal
        connection.execute(text("CREATE TABLE responders (name VARCHAR(5) CHECK (length(name) < 5))"))

    with pytest.raises(DBAPIError) as refused, engine.begin() as connection:
        connection.execute(text("INSERT INTO responders (name) VALUES (:name)"), {"name": PERSON})

    assert "INSERT INTO responders" in str(refused.value)
    assert PERSON.split()[1] not in str(refused.value)


def test_a_failure_posted_to_a_channel_masks_the_password_of_a_url_it_quotes() -> None:
    """A signal that fails is named in the answer's note, posted to the incident channel: an error quoting
    the URL it called carried that URL's password there."""
    error = ConnectionError("could not reach https://ci:s3cret-token@embeddings.internal/v1/embed")

    assert failure_reason(error) == "ConnectionError: could not reach https://***@embeddings.internal/v1/embed"
