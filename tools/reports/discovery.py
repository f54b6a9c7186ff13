"""Find categories nobody defined yet: cluster recent reports, name the clusters, keep the stable ones.

Clustering is repeated on several random 90% samples (one per seed); a cluster
is kept only when it recurs (Jaccard overlap >= 0.5 on the shared reports) in
most runs, so a reviewer is not shown noise that one lucky sample produced.
Names are the cluster's most distinctive words (c-TF-IDF), or a short LLM name
when vLLM is configured; related clusters are merged into a small hierarchy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
from openai import OpenAIError
from sklearn.cluster import HDBSCAN, AgglomerativeClustering
from sqlalchemy import select

from knowledge.db import session_scope
from knowledge.errors import InputError
from knowledge.reports import BugReport, Category
from tools.llm.client import LLMEndpoint, openai_client
from tools.reports.classifiers.embedded import report_embeddings
from tools.reports.keywords import keyword_counter
from tools.reports.legend import plain_legend

MIN_REPORTS = 30
MAX_REPORTS = 5000
RECUR_JACCARD = 0.5


@dataclass
class DiscoveredCluster:
    name: str
    keywords: list[str]
    size: int
    stability: float
    examples: list[str]
    parent: str | None = None
    members: list[int] = field(default_factory=list, repr=False)


@dataclass
class Discovery:
    n_reports: int
    clusters: list[DiscoveredCluster]
    parents: dict[str, list[str]]
    map_png: Path | None
    summary_path: Path | None

    def as_dict(self) -> dict[str, Any]:
        clusters = [{k: v for k, v in asdict(c).items() if k != "members"} for c in self.clusters]
        return {"n_reports": self.n_reports, "clusters": clusters, "parents": self.parents,
                "map_png": str(self.map_png) if self.map_png else None}

    def summary(self) -> str:
        """Readable summary: each parent, its clusters with counts, and example reports."""
        lines = [f"# Discovered report categories ({self.n_reports} reports)", ""]
        for parent, children in self.parents.items():
            lines.append(f"## {parent}")
            for cluster in (c for c in self.clusters if c.name in children):
                lines.append(f"- **{cluster.name}**: {cluster.size} reports, recurred in {cluster.stability:.0%} of runs")
                lines += [f"  - \u201c{example}\u201d" for example in cluster.examples]
            lines.append("")
        return "\n".join(lines)


def discover_categories(
    url: str,
    since: date | None = None,
    out_dir: Path | None = None,
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    llm: LLMEndpoint | None = None,
) -> Discovery:
    """Cluster stored reports (optionally since a day), write the map and summary to ``out_dir``.

    With ``llm``, clusters get a short name from the model instead of their keywords.
    """
    texts = _load_texts(since, url)
    if len(texts) < MIN_REPORTS:
        raise InputError(f"only {len(texts)} reports to cluster; discovery needs at least {MIN_REPORTS} (ingest more or widen --since)")
    vectors = report_embeddings(texts)
    clusters = stable_clusters(texts, vectors, seeds, llm)
    parents = build_hierarchy(texts, vectors, clusters)
    discovery = Discovery(len(texts), clusters, parents, None, None)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        discovery.map_png = draw_map(vectors, clusters, out_dir / "report_map.png", seeds[0])
        discovery.summary_path = out_dir / "summary.md"
        discovery.summary_path.write_text(discovery.summary(), encoding="utf-8")
    return discovery


def cluster_once(vectors: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN labels (-1 = noise) on unit vectors, where Euclidean distance ranks like cosine."""
    return HDBSCAN(min_cluster_size=min_cluster_size, min_samples=3, cluster_selection_method="leaf", copy=True).fit_predict(vectors)


def stable_clusters(
    texts: list[str], vectors: np.ndarray, seeds: tuple[int, ...], llm: LLMEndpoint | None = None
) -> list[DiscoveredCluster]:
    """Clusters of the first run that recur in most of the other runs, named and with examples."""
    min_size = max(8, len(texts) // 25)
    runs: list[list[set[int]]] = []
    samples: list[set[int]] = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(len(texts), size=int(len(texts) * 0.9), replace=False))
        labels = cluster_once(vectors[sample], min_size)
        runs.append([set(sample[labels == k].tolist()) for k in sorted(set(labels)) if k >= 0])
        samples.append(set(sample.tolist()))
    kept: list[tuple[set[int], float]] = []
    for members in runs[0]:
        recurrences = [
            max((_jaccard(members & shared, other & shared) for other in run), default=0.0)
            for run, sample in zip(runs[1:], samples[1:], strict=True)
            for shared in [samples[0] & sample]
        ]
        stability = (1 + sum(r >= RECUR_JACCARD for r in recurrences)) / len(seeds)
        if stability > 0.5:
            kept.append((members, stability))
    keywords = class_keywords(texts, [sorted(m) for m, _ in kept])
    clusters = []
    for (members, stability), words in zip(kept, keywords, strict=True):
        indices = sorted(members)
        clusters.append(
            DiscoveredCluster(
                name=_llm_name(words, [texts[i] for i in indices[:5]], llm) or " / ".join(words[:3]),
                keywords=words,
                size=len(indices),
                stability=stability,
                examples=_closest(texts, vectors, indices, 3),
                members=indices,
            )
        )
    return sorted(clusters, key=lambda c: -c.size)


def class_keywords(texts: list[str], groups: list[list[int]], top: int = 6) -> list[list[str]]:
    """c-TF-IDF: each group's documents as one class; words frequent in it and rare across classes."""
    if not groups:
        return []
    vectorizer = keyword_counter()
    try:
        matrix = vectorizer.fit_transform([" ".join(texts[i] for i in group) for group in groups])
    except ValueError:
        return [[] for _ in groups]
    counts = matrix.toarray().astype(float)
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    average_words = counts.sum() / len(groups)
    idf = np.log(1.0 + average_words / np.maximum(counts.sum(axis=0), 1.0))
    scores = tf * idf
    if len(groups) >= 3:  # a phrase every cluster uses ("tried again") names none of them
        scores[:, (counts > 0).mean(axis=0) >= 0.8] = 0.0
    words = vectorizer.get_feature_names_out()
    return [[str(words[i]) for i in np.argsort(-row)[:top] if row[i] > 0] for row in scores]


def build_hierarchy(texts: list[str], vectors: np.ndarray, clusters: list[DiscoveredCluster]) -> dict[str, list[str]]:
    """Merge related clusters (average-linkage on centroids) into about a third as many parents."""
    if len(clusters) < 4:
        for cluster in clusters:
            cluster.parent = cluster.name
        return {c.name: [c.name] for c in clusters}
    centroids = np.stack([vectors[c.members].mean(axis=0) for c in clusters])
    labels = AgglomerativeClustering(n_clusters=max(2, len(clusters) // 3), metric="cosine", linkage="average").fit_predict(centroids)
    groups = [[i for i, label in enumerate(labels) if label == k] for k in sorted(set(labels))]
    names = class_keywords(texts, [[m for i in group for m in clusters[i].members] for group in groups], top=2)
    parents: dict[str, list[str]] = {}
    for group, words in zip(groups, names, strict=True):
        parent = " / ".join(words) or clusters[group[0]].name
        for i in group:
            clusters[i].parent = parent
        parents.setdefault(parent, []).extend(clusters[i].name for i in group)
    return parents


def draw_map(vectors: np.ndarray, clusters: list[DiscoveredCluster], path: Path, seed: int) -> Path:
    """A 2-D UMAP of every report, coloured by cluster (grey: not in a stable cluster)."""
    import matplotlib

    matplotlib.use("Agg")
    import umap
    from matplotlib import pyplot as plt

    points = umap.UMAP(n_components=2, n_neighbors=min(15, len(vectors) - 1), random_state=seed, metric="cosine", n_jobs=1).fit_transform(vectors)
    figure, axes = plt.subplots(figsize=(9, 7), dpi=100)
    axes.scatter(points[:, 0], points[:, 1], s=4, c="lightgrey")
    handles = []
    for cluster in clusters:
        member_points = points[cluster.members]
        handles.append(axes.scatter(member_points[:, 0], member_points[:, 1], s=6))
    axes.set_title("User reports, 2-D map (UMAP) by discovered category")
    axes.set_xticks([])
    axes.set_yticks([])
    labels = [f"{cluster.name} ({cluster.size})" for cluster in clusters]
    plain_legend(axes, handles, labels, loc="best", fontsize=7, markerscale=2)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def save_discovered(discovery: Discovery, url: str) -> int:
    """Store the clusters (and their parents) as ``Category(origin="discovered")``; existing names are kept."""
    saved = 0
    with session_scope(url) as session:
        for parent in discovery.parents:
            if session.get(Category, parent) is None:
                session.add(Category(name=parent, description="discovered group", examples=[], origin="discovered"))
                saved += 1
        for cluster in discovery.clusters:
            if cluster.name != cluster.parent and session.get(Category, cluster.name) is None:
                session.add(Category(name=cluster.name, description="keywords: " + ", ".join(cluster.keywords),
                                     examples=cluster.examples, parent=cluster.parent, origin="discovered"))
                saved += 1
    return saved


def _load_texts(since: date | None, url: str) -> list[str]:
    with session_scope(url) as session:
        query = select(BugReport.text).order_by(BugReport.created_at.desc()).limit(MAX_REPORTS)
        if since is not None:
            query = query.where(BugReport.created_at >= datetime.combine(since, time(), UTC))
        return list(session.scalars(query))


def _closest(texts: list[str], vectors: np.ndarray, indices: list[int], k: int) -> list[str]:
    centroid = vectors[indices].mean(axis=0)
    order = np.argsort(-(vectors[indices] @ centroid))[:k]
    return [texts[indices[i]] for i in order]


def _jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _llm_name(keywords: list[str], examples: list[str], llm: LLMEndpoint | None) -> str | None:
    """A two-to-four word name from the LLM when there is one; None keeps the keyword name."""
    if llm is None:
        return None
    client = openai_client(llm)
    prompt = ("Name this group of user bug reports in two to four words, lower case, no punctuation.\n"
              f"Keywords: {', '.join(keywords)}\nReports:\n" + "\n".join(f"- {e}" for e in examples))
    try:
        reply = client.chat.completions.create(model=llm.model, messages=[{"role": "user", "content": prompt}],
                                               temperature=0.0, max_tokens=12)
        content = reply.choices[0].message.content
    except (OpenAIError, AttributeError, IndexError, TypeError):  # no answer, or no completion in it
        return None
    if not isinstance(content, str):  # the SDK does not check the server's types
        return None
    name = content.strip().strip(".\"'").lower()
    return name[:60] or None
