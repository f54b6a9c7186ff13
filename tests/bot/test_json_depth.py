"""How deep a request's JSON may nest: counted without parsing, strings left out."""

from __future__ import annotations

import json

import pytest

from bot.http_checks import MAX_JSON_DEPTH, NestedTooDeep, json_body


def _nested(levels: int) -> bytes:
    return json.dumps(json.loads("[" * levels + "]" * levels)).encode()


def test_nesting_up_to_the_limit_is_parsed_and_one_level_more_is_refused() -> None:
    assert json_body(_nested(MAX_JSON_DEPTH)) == json.loads(_nested(MAX_JSON_DEPTH))
    with pytest.raises(NestedTooDeep, match="JSON nested too deep"):
        json_body(_nested(MAX_JSON_DEPTH + 1))
    with pytest.raises(NestedTooDeep):
        json_body(b'{"a": ' * (MAX_JSON_DEPTH + 1))  # never closed: the parser would still recurse that deep


def test_brackets_inside_strings_do_not_count() -> None:
    # A commit message full of brackets, and an escaped quote that does not end its string.
    message = 'fix: parse "[[[[" and ' + "[{" * 500 + ' \\" ]] still inside'
    payload = {"commits": [{"message": message, "files": ["a[0].py"]}], "note": "}" * 200}
    assert json_body(json.dumps(payload).encode()) == payload


def test_a_body_that_is_not_json_says_so() -> None:
    with pytest.raises(ValueError, match="body is not JSON"):
        json_body(b"{not json")
