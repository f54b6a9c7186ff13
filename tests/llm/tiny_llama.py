"""Generate a tiny random Llama with a locally trained tokenizer, for the CPU vLLM server.

Run by the vLLM venv's python (it has ``transformers`` and ``tokenizers``):
``python tests/llm/tiny_llama.py OUT_DIR``. Nothing is downloaded: the tokenizer
is trained on Python's own standard-library sources and the weights are random.
The chat template speaks the Hermes tool-call format (``<tool_call>`` tags), so
vLLM's ``hermes`` tool-call parser can be switched on for agent protocol tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

BOS, EOS, PAD = "<|begin_of_text|>", "<|im_end|>", "<|pad|>"
CHAT_TOKENS = ["<|im_start|>", "<tool_call>", "</tool_call>"]

CHAT_TEMPLATE = """{{- bos_token }}
{%- if tools %}<|im_start|>system
You may call functions. Signatures: <tools>{% for tool in tools %}{{ tool | tojson }}{% endfor %}</tools>
Answer a call as <tool_call>{"name": NAME, "arguments": ARGS}</tool_call><|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == "assistant" and message.tool_calls %}<|im_start|>assistant
{% for call in message.tool_calls %}<tool_call>{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson if call.function.arguments is not string else call.function.arguments }}}</tool_call>{% endfor %}<|im_end|>
{% elif message.role == "tool" %}<|im_start|>tool
{{ message.content }}<|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""


def training_text() -> list[str]:
    """Deterministic text for a given Python: a handful of standard-library modules."""
    import dataclasses
    import json
    import logging
    import pathlib
    import typing

    return [Path(module.__file__).read_text() for module in (dataclasses, json.decoder, logging, pathlib, typing)]


def make_tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=[BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(training_text(), trainer=trainer)
    # Kept as plain added tokens so they survive decoding with skip_special_tokens.
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in CHAT_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
    )


def make_model(out_dir: Path) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = make_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/llm/tiny_llama.py OUT_DIR")
    make_model(Path(sys.argv[1]))
