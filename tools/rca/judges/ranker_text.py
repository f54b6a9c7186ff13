"""A ranker's LightGBM text, checked before LightGBM reads it.

LightGBM trusts its model text. Trees listed in a ``tree_sizes`` header are
parsed in parallel, and a format error there aborts the whole process instead
of raising; a child index or a feature out of range is read from whatever
memory lies there when predicting, and a child that points back up the tree
loops forever. A model file is input (a shared volume, a file a colleague
sent), so its trees are held to the shape culprit's training writes:
numerical splits over the manifest's features, each tree a proper binary
tree, and ``tree_sizes`` dropped so that any error left is raised, not fatal.
"""

from __future__ import annotations

import math

MAX_TREES = 10_000
MAX_LEAVES = 4_096
SPLIT_ARRAYS = ("split_feature", "threshold", "decision_type", "left_child", "right_child")
CATEGORICAL_SPLIT = 1  # bit 0 of decision_type; culprit's signals are all numerical


class DamagedRanker(ValueError):
    """The text is not a ranker culprit could have trained; the message says where and why."""


def checked_ranker_text(text: str, n_features: int) -> str:
    """The text LightGBM may load, or DamagedRanker naming the first tree or header line at fault."""
    header, trees = _split(text)
    if header.get("max_feature_idx") != str(n_features - 1):
        raise DamagedRanker(
            f"its trees are over {header.get('max_feature_idx', '?')}+1 signals, its manifest names {n_features}"
        )
    if len(trees) > MAX_TREES:
        raise DamagedRanker(f"it holds {len(trees)} trees, more than the {MAX_TREES} training makes")
    for number, tree in enumerate(trees):
        try:
            _check_tree(tree, n_features)
        except (KeyError, ValueError) as error:
            raise DamagedRanker(f"tree {number} is damaged ({error})") from error
    return "\n".join(line for line in text.split("\n") if not line.startswith("tree_sizes="))


def _split(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The header's keys and each tree's keys; everything after ``end of trees`` is LightGBM's own notes."""
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    current = header
    for line in text.split("\n"):
        if line == "end of trees":
            return header, trees
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
        elif "=" in line:
            key, _, value = line.partition("=")
            if key in current:
                raise DamagedRanker(f"{key} is given twice in {'a tree' if trees else 'the header'}")
            current[key] = value
    raise DamagedRanker("its trees have no end (no 'end of trees' line)")


def _numbers(tree: dict[str, str], key: str, count: int, kind: type[int] | type[float]) -> list:
    values = [kind(item) for item in tree[key].split()]
    if len(values) != count:
        raise ValueError(f"{key} holds {len(values)} values, not {count}")
    return values


def _check_tree(tree: dict[str, str], n_features: int) -> None:
    leaves = int(tree["num_leaves"])
    if not 1 <= leaves <= MAX_LEAVES:
        raise ValueError(f"num_leaves {leaves} is outside 1 to {MAX_LEAVES}")
    if int(tree.get("num_cat", "0")) != 0 or int(tree.get("is_linear", "0")) != 0:
        raise ValueError("it has categorical or linear leaves, which culprit never trains")
    values = _numbers(tree, "leaf_value", leaves, float)
    if not all(math.isfinite(value) for value in values):
        raise ValueError("a leaf value is not a finite number")
    if leaves == 1:
        return
    splits = {key: _numbers(tree, key, leaves - 1, float if key == "threshold" else int) for key in SPLIT_ARRAYS}
    if any(not 0 <= feature < n_features for feature in splits["split_feature"]):
        raise ValueError(f"a split reads a signal outside 0 to {n_features - 1}")
    if any(kind & CATEGORICAL_SPLIT or not 0 <= kind < 16 for kind in splits["decision_type"]):
        raise ValueError("a split is categorical or of an unknown kind")
    children = splits["left_child"] + splits["right_child"]
    # Every node but the root is some node's child exactly once, and children point only down the list:
    # together that makes a tree, so prediction reaches a leaf in at most num_leaves - 1 steps.
    internal = sorted(child for child in children if child >= 0)
    if internal != list(range(1, leaves - 1)) or sorted(~child for child in children if child < 0) != list(range(leaves)):
        raise ValueError("its children do not form a tree (a node missing, repeated or out of range)")
    for node, (left, right) in enumerate(zip(splits["left_child"], splits["right_child"], strict=True)):
        if node >= left >= 0 or node >= right >= 0:
            raise ValueError(f"node {node} points back up the tree")
