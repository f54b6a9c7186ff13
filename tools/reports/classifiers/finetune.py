"""Adapting the packaged MiniLM to a team's categories by contrastive pairs, within minutes on two cores.

This is the SetFit method (pull reports of one category together, push other
categories apart, then fit a head) made cheap enough for a shared CPU: the
lower transformer layers stay frozen, so their outputs are computed once per
report and cached; only the top layers are trained, over short inputs, on
the pairs inside each batch, for a bounded number of steps and seconds. A
GPU is used when torch sees one.

What comes out is only the tuned layers' weights, as named float32 arrays:
the classifier file stores them as safetensors beside its head, and
:func:`adapted_encoder` lays them over a fresh copy of the packaged model.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from knowledge.embeddings import get_embedder

TUNED_LAYERS = 2
TRAIN_TOKENS = 64


@dataclass(frozen=True)
class FineTuning:
    """How long and how hard to adapt the encoder; the defaults fit 10,000 reports in minutes on two cores."""

    epochs: float = 1.0
    batch_size: int = 64
    learning_rate: float = 1e-4
    max_seconds: float = 900.0
    max_steps: int = 400
    tuned_layers: int = TUNED_LAYERS
    max_tokens: int = TRAIN_TOKENS
    seed: int = 42


Progress = Callable[[str, int, int], None]


def fine_tune_encoder(
    texts: list[str],
    labels: list[str],
    settings: FineTuning = FineTuning(),
    on_progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """Train the top ``tuned_layers`` of MiniLM so same-category reports embed close together.

    Returns the tuned layers' parameters by their name in the BERT model
    (``encoder.layer.5.output.dense.weight`` ...). ``on_progress(stage, done, total)``
    is called as caching and training advance.
    """
    import torch

    report = on_progress or (lambda _stage, _done, _total: None)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # the CPU build of torch says no
    bert = copy.deepcopy(_bert(get_embedder())).to(device)
    bert.eval()
    first_tuned = bert.config.num_hidden_layers - settings.tuned_layers
    cached = _cache_lower_layers(bert, texts, first_tuned, settings.max_tokens, report)
    layers = bert.encoder.layer[first_tuned:]
    for parameter in bert.parameters():
        parameter.requires_grad_(False)
    trainable = [p for p in layers.parameters()]
    for parameter in trainable:
        parameter.requires_grad_(True)
    layers.train()
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.01)
    codes = np.unique(np.asarray(labels), return_inverse=True)[1]
    steps = min(settings.max_steps, max(1, math.ceil(settings.epochs * len(texts) / settings.batch_size)))
    started = time.monotonic()
    report("tuning the encoder", 0, steps)
    for step in range(steps):
        batch = rng.choice(len(texts), size=min(settings.batch_size, len(texts)), replace=False)
        vectors = _pooled(layers, [cached[i] for i in batch], device)
        loss = pair_loss(vectors, torch.as_tensor(codes[batch], device=device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        report("tuning the encoder", step + 1, steps)
        if time.monotonic() - started > settings.max_seconds:
            break
    prefix = "encoder.layer."
    return {
        name: parameter.detach().cpu().numpy().astype(np.float32)
        for name, parameter in bert.named_parameters()
        if name.startswith(prefix) and int(name[len(prefix):].split(".")[0]) >= first_tuned
    }


def pair_loss(vectors: Any, codes: Any) -> Any:
    """SetFit's cosine-similarity loss over every pair in the batch: 1 for the same category, 0 otherwise.

    Same-category and other-category pairs are averaged separately, so a batch
    dominated by one kind of pair still pulls and pushes in equal measure.
    """
    import torch

    unit = torch.nn.functional.normalize(vectors, dim=1)
    similarity = unit @ unit.T
    same = codes[:, None] == codes[None, :]
    upper = torch.triu(torch.ones_like(similarity, dtype=torch.bool), diagonal=1)
    positives, negatives = same & upper, ~same & upper
    loss = similarity.new_zeros(())
    if positives.any():
        loss = loss + ((1.0 - similarity[positives]) ** 2).mean()
    if negatives.any():
        loss = loss + (similarity[negatives] ** 2).mean()
    return loss


def adapted_encoder(tuned: dict[str, np.ndarray]) -> Any:
    """A float copy of the packaged SentenceTransformer with ``tuned`` laid over its top layers."""
    import torch

    model = copy.deepcopy(get_embedder())
    bert = _bert(model)
    known = dict(bert.named_parameters())
    unknown = sorted(set(tuned) - set(known))
    if unknown:
        raise ValueError(f"tuned weights name parameters MiniLM lacks: {unknown[:3]}")
    with torch.no_grad():
        for name, array in tuned.items():
            if tuple(known[name].shape) != tuple(array.shape):
                raise ValueError(f"{name} has shape {array.shape}, MiniLM's is {tuple(known[name].shape)}")
            if array.dtype.kind != "f" or not np.isfinite(array).all():  # NaN weights made every embedding NaN
                raise ValueError(f"{name} holds {array.dtype} values that are not all finite floats")
            known[name].copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))
    return model


def _bert(model: Any) -> Any:
    """The Hugging Face BERT inside the SentenceTransformer (its first module)."""
    return model[0].auto_model


def _cache_lower_layers(
    bert: Any, texts: list[str], first_tuned: int, max_tokens: int, report: Progress
) -> list[Any]:
    """The frozen layers' output for each report, trimmed to its own tokens (float16 to halve memory)."""
    import torch

    tokenizer = get_embedder().tokenizer
    cached: list[Any] = []
    batch_size = 128
    report("caching frozen layers", 0, len(texts))
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            tokens = tokenizer(
                texts[start : start + batch_size], truncation=True, max_length=max_tokens,
                padding=True, return_tensors="pt",
            )
            output = bert(**tokens.to(bert.device), output_hidden_states=True)
            hidden = output.hidden_states[first_tuned].to("cpu", torch.float16)
            lengths = tokens["attention_mask"].sum(dim=1).tolist()
            cached += [hidden[row, :length].clone() for row, length in enumerate(lengths)]
            report("caching frozen layers", min(start + batch_size, len(texts)), len(texts))
    return cached


def _pooled(layers: Any, states: list[Any], device: Any) -> Any:
    """Run the tuned layers over cached states and mean-pool over real tokens, as MiniLM pools."""
    import torch

    longest = max(state.shape[0] for state in states)
    width = states[0].shape[1]
    hidden = torch.zeros(len(states), longest, width)
    mask = torch.zeros(len(states), longest)
    for row, state in enumerate(states):
        hidden[row, : state.shape[0]] = state.float()
        mask[row, : state.shape[0]] = 1.0
    hidden, mask = hidden.to(device), mask.to(device)
    additive = (1.0 - mask)[:, None, None, :] * torch.finfo(torch.float32).min
    for layer in layers:
        output = layer(hidden, attention_mask=additive)
        hidden = output[0] if isinstance(output, tuple) else output
    return (hidden * mask[:, :, None]).sum(dim=1) / mask.sum(dim=1, keepdim=True)
