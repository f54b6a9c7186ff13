"""The wiki embeds in bfloat16 exactly where the report classifier does: one check of the CPU decides both."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.embeddings import embed
from knowledge.wiki import store
from tools.reports.classifiers import embedded

SECTIONS = ["Checkout returns 502 after the payments deploy", "Rolling back a feature flag in the admin console"]


def test_the_wiki_and_the_report_classifier_share_one_bfloat16_check(monkeypatch: pytest.MonkeyPatch) -> None:
    assert store.native_bfloat16 is embedded.native_bfloat16  # one function: on no CPU can they disagree

    monkeypatch.setattr(store, "native_bfloat16", lambda: False)
    in_float32 = store.embed_sections(SECTIONS)
    monkeypatch.setattr(store, "native_bfloat16", lambda: True)
    in_bfloat16 = store.embed_sections(SECTIONS)

    assert np.array_equal(in_float32, embed(SECTIONS))  # no native bfloat16: the float32 vectors, unchanged
    assert not np.array_equal(in_bfloat16, in_float32)  # the check said yes: bfloat16 arithmetic ran
    assert np.all(np.sum(in_bfloat16 * in_float32, axis=1) > 0.999)
