"""A real database write PostgreSQL refuses, with a person's name among its parameters.

PostgreSQL's message for a refused row repeats the row ("Failing row contains
(...)") and SQLAlchemy's adds every parameter: tests of log lines that must
name a database error without its message make such a write fail and look
for the name in what was logged.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from knowledge.db import get_engine

PERSON = "Rosalind Featherstonehaugh"
REFUSED = "IntegrityError (psycopg.errors.CheckViolation, SQLSTATE 23514)"  # how the log names the refusal


def refusing_table(database_url: str) -> None:
    """A table of responders whose names PostgreSQL refuses past four characters."""
    with get_engine(database_url).begin() as connection:
        connection.execute(text("CREATE TABLE responders (name TEXT CHECK (length(name) < 5))"))


def write_the_person(database_url: str) -> None:
    """Insert :data:`PERSON` into :func:`refusing_table`'s table: raises ``IntegrityError`` naming them."""
    with get_engine(database_url).begin() as connection:
        connection.execute(text("INSERT INTO responders (name) VALUES (:name)"), {"name": PERSON})


def naming_the_person(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The captured log entries (tracebacks rendered) that carry the person's name."""
    return [entry for entry in logs if PERSON.split()[1] in str(entry)]
