"""The `seq2seq` backend: NLLB, M2M100 and MADLAD-400 (T5) through AutoModelForSeq2SeqLM."""

from __future__ import annotations

from relevance.augment.languages import language_fields
from relevance.augment.translator import Translator, register_backend


@register_backend("seq2seq")
class Seq2SeqTranslator(Translator):
    """NLLB / M2M100 (target token forced first) and MADLAD-400 (target token before the input)."""

    def output_settings(self, source: str, target: str) -> dict:
        cfg = self.config
        return {**super().output_settings(source, target), "source_language_token": cfg.source_language_token,
                "target_language_token": cfg.target_language_token, "target_language_as": cfg.target_language_as}

    def _load_model(self, name: str, dtype, kwargs: dict):
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM.from_pretrained(name, dtype=dtype, **kwargs)

    def language_token(self, which: str, code: str) -> str | None:
        template = getattr(self.config, f"{which}_language_token")
        return template.format(**language_fields(code)) if template else None

    def encode(self, texts: list[str], src: str, tgt: str):
        """``[language token] text </s>`` per text, padded: the source's token (NLLB, M2M100) or, with
        ``target_language_as: source_prefix``, the target's (MADLAD-400's ``<2de>``)."""
        tokenizer = self._tokenizer
        if tokenizer.pad_token_id is None:
            raise ValueError(f"the tokenizer of translation model {self.config.model!r} has no pad token")
        return tokenizer.pad({"input_ids": self.input_ids(texts, src, tgt)}, padding=True, return_tensors="pt")

    def input_ids(self, texts: list[str], src: str, tgt: str) -> list[list[int]]:
        tokenizer = self._tokenizer
        prefix_token = (self.language_token("target", tgt) if self.config.target_language_as == "source_prefix"
                        else self.language_token("source", src))
        prefix = [self._token_id(prefix_token)] if prefix_token else []
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        room = self.config.max_input_tokens - len(prefix) - len(eos)
        return [prefix + row[:room] + eos for row in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def _translate_batch(self, batch: list[str], src: str, tgt: str) -> list[str]:
        import torch

        tokenizer, model = self._tokenizer, self._model
        kwargs = {"num_beams": self.config.num_beams, "max_new_tokens": self.config.max_new_tokens,
                  "do_sample": False}
        if self.config.target_language_as == "forced_bos":
            kwargs["forced_bos_token_id"] = self._token_id(self.language_token("target", tgt))
        inputs = self.encode(batch, src, tgt).to(self._device)
        with torch.inference_mode():
            output = model.generate(**inputs, **kwargs)
        self.last_generation = {"kwargs": kwargs, "input_ids": inputs["input_ids"].detach().cpu(),
                                "output_ids": output.detach().cpu(), "source": src, "target": tgt}
        return tokenizer.batch_decode(output, skip_special_tokens=True)
