"""Rebuild examples/tokenizer.json: a small byte-level BPE tokenizer trained on the example data.

The README example splits conversations to a token budget offline, without the real tokenizers
(which are not ours to ship). This one is trained here, on the example's own text, so that its
counts are real token counts of a real ``tokenizers`` model; it is deterministic for a given
``tokenizers`` version. Run: ``python examples/make_tokenizer.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

HERE = Path(__file__).resolve().parent


def corpus() -> list[str]:
    records = json.loads((HERE / "sharegpt_sample.json").read_text(encoding="utf-8"))
    texts = []
    for r in records:
        turns = r.get("conversations")
        if isinstance(turns, list):
            texts.extend(t["value"] for t in turns)
    return texts


def main() -> None:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    bos = tok.token_to_id("<s>")
    # Like llama's: one <s> before every sequence, so the default segment overhead is 1.
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    tok.save(str(HERE / "tokenizer.json"), pretty=False)


if __name__ == "__main__":
    main()
