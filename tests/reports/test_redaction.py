from tools.reports.redaction import redact


def test_personal_data_becomes_readable_placeholders() -> None:
    text = (
        "login fails for jane.doe+app@example.co.uk, call +1 (415) 555-0199 or 020 7946 0958; "
        "server 192.168.10.4 and 2001:db8::8a2e:370:7334; card 4111 1111 1111 1111"
    )
    assert redact(text) == (
        "login fails for [email], call [phone] or [phone]; server [ip] and [ip]; card [card]"
    )


def test_secrets_in_urls_and_keys_are_removed_but_the_page_stays() -> None:
    text = (
        "reset link https://app.example.com/reset?user=7&token=abc123SECRET fails, "
        "also https://bob:hunter2@api.example.com/v1/feed. keys sk-proj-AbCdEf1234567890XyZ "
        "xoxb-123456789012-abcdefABCDEF ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 AKIAIOSFODNN7EXAMPLE "
        "and 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    )
    redacted = redact(text)
    assert "https://app.example.com/reset?user=7&token=[token]" in redacted
    assert "https://[credentials]@api.example.com/v1/feed." in redacted
    assert redacted.count("[api-key]") == 4
    assert "[secret]" in redacted
    for secret in ("abc123SECRET", "hunter2", "AbCdEf", "AKIAIOSFODNN7EXAMPLE", "9f86d08"):
        assert secret not in redacted


def test_ordinary_numbers_and_words_survive() -> None:
    text = "since 2024-05-01 version 4.12.3 crashes 3 times at 10:30, order of 25 items, card 1234 5678 9012 3456"
    assert redact(text) == text
