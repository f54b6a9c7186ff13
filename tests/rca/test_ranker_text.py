"""A ranker file's trees are checked before LightGBM reads them: damaged ones are refused, never a crash.

Unchecked, each damaged text below aborted the process (a format error in
trees listed by ``tree_sizes``), crashed it when predicting (a child out of
range) or read another signal's memory (a feature out of range).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from lightgbm import Booster

from knowledge.errors import CulpritError
from tools.rca.judges.local import load_model
from tools.rca.judges.ranker_text import DamagedRanker, checked_ranker_text
from tools.rca.judges.starter import STARTER_FILE


def _tree(left: str = "1 -1 -3", right: str = "-2 2 -4", **keys: str) -> str:
    fields = {
        "num_leaves": "4", "num_cat": "0", "split_feature": "0 1 0", "split_gain": "1 1 1",
        "threshold": "0.5 0.5 0.25", "decision_type": "2 2 2", "left_child": left, "right_child": right,
        "leaf_value": "0.1 0.2 0.3 0.4", "leaf_weight": "1 1 1 1", "leaf_count": "1 1 1 1",
        "internal_value": "0 0 0", "internal_weight": "4 3 2", "internal_count": "4 3 2",
        "is_linear": "0", "shrinkage": "1",
    } | keys
    return "Tree=0\n" + "\n".join(f"{key}={value}" for key, value in fields.items()) + "\n\n"


def _model(tree: str, features: int = 2) -> str:
    names = " ".join(f"s{n}" for n in range(features))
    return (
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n"
        f"max_feature_idx={features - 1}\nobjective=lambdarank\nfeature_names={names}\n"
        f"feature_infos={' '.join(['none'] * features)}\ntree_sizes={len(tree)}\n\n{tree}\nend of trees\n"
    )


def test_a_well_formed_tree_loads_and_predicts_as_written() -> None:
    booster = Booster(model_str=checked_ranker_text(_model(_tree()), 2))
    # Node 0 splits signal 0 at 0.5: left to node 1 (signal 1 at 0.5: leaf 0, or node 2: signal 0 at 0.25), right to leaf 1.
    assert booster.predict(np.array([[0.9, 0.0], [0.1, 0.1], [0.1, 0.9], [0.4, 0.9]])).tolist() == pytest.approx(
        [0.2, 0.1, 0.3, 0.4]
    )


def test_the_shipped_ranker_passes_and_predicts_the_same() -> None:
    with zipfile.ZipFile(STARTER_FILE) as archive:
        text = archive.read("ranker.txt").decode()
    features = int(re.search(r"max_feature_idx=(\d+)", text).group(1)) + 1
    checked = checked_ranker_text(text, features)
    assert "tree_sizes=" in text and "tree_sizes=" not in checked
    rows = np.random.default_rng(7).random((50, features))
    assert Booster(model_str=checked).predict(rows).tolist() == Booster(model_str=text).predict(rows).tolist()


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (_model(_tree(left="57 -1 -3")), "do not form a tree"),
        (_model(_tree(left="1 -1 -9")), "do not form a tree"),
        (_model(_tree(left="0 -1 -3")), "do not form a tree"),  # the root as its own child: a loop
        (_model(_tree(left="-1 2 1", right="-2 -3 -4")), "points back up"),  # nodes 1 and 2 each other's child
        (_model(_tree(split_feature="0 999 0")), "signal outside 0 to 1"),
        (_model(_tree(split_feature="0 1")), "split_feature holds 2 values, not 3"),
        (_model(_tree(num_leaves="400000000")), "num_leaves 400000000"),
        (_model(_tree(leaf_value="0.1 nan 0.3 0.4")), "not a finite number"),
        (_model(_tree(decision_type="1 2 2")), "categorical"),
        (_model(_tree(num_cat="1")), "categorical or linear"),
        (_model(_tree(threshold="0.5 x 0.25")), "could not convert"),
        (_model(_tree()).replace("\nend of trees\n", "\n"), "no 'end of trees'"),
        (_model(_tree(), features=3), "manifest names 2"),
        (_model(_tree() + _tree().replace("num_cat=0", "num_cat=0\nnum_cat=0")), "num_cat is given twice"),
    ],
)
def test_a_damaged_tree_is_refused_with_its_reason(model: str, reason: str) -> None:
    with pytest.raises(DamagedRanker, match=re.escape(reason)):
        checked_ranker_text(model, 2)


def test_a_model_file_with_a_damaged_tree_is_refused_by_name(tmp_path: Path) -> None:
    damaged = tmp_path / "ranker.model"
    with zipfile.ZipFile(STARTER_FILE) as source, zipfile.ZipFile(damaged, "w") as target:
        for member in source.namelist():
            content = source.read(member)
            if member == "ranker.txt":  # a child far out of range in the first tree; its tree_sizes now lies
                content = re.sub(rb"left_child=-?\d+", b"left_child=9999", content, count=1)
            target.writestr(member, content)
    with pytest.raises(CulpritError, match=r"ranker.model has damaged LightGBM trees \(tree 0 is damaged"):
        load_model(damaged)
