"""The `causal_lm` backend: an instruction-tuned causal LM prompted with few-shot pairs."""

from __future__ import annotations

import math

from relevance.augment.languages import competition_code, language_fields
from relevance.augment.translator import Translator, register_backend


@register_backend("causal_lm")
class CausalLMTranslator(Translator):
    """An instruction-tuned causal LM prompted to translate; see the module docstring."""

    def prompt_template(self, src: str, tgt: str) -> str:
        """The prompt for one language pair, few-shot examples filled in, ``{text}`` left open."""
        cfg = self.config
        source, target = language_fields(src), language_fields(tgt)
        template = self.pair_prompt(source["code"], target["code"]) or cfg.prompt
        pairs = zip(self.examples_of(source["code"]), self.examples_of(target["code"]))
        examples = "".join((cfg.example or "").format(source_name=source["name"], target_name=target["name"],
                                                      source_text=a, target_text=b) for a, b in pairs)
        return template.format(source_name=source["name"], target_name=target["name"], source=source["code"],
                               target=target["code"], examples=examples, text="{text}")

    def example_pairs(self, source: str, target: str) -> dict[str, str]:
        src, tgt = competition_code(source), competition_code(target)
        return dict(zip(self.examples_of(tgt), self.examples_of(src)))

    def examples_of(self, code: str) -> list[str]:
        """The few-shot phrases of a language, whichever spelling `translator.examples` keys it by (`vn`, `vi`)."""
        return next((list(phrases) for key, phrases in self.config.examples.items()
                     if competition_code(key) == code), [])

    def pair_prompt(self, src: str, tgt: str) -> str | None:
        """`translator.prompts`' own template for this pair (`fr-vi`, or `fr-vn`), if it has one."""
        return next((template for pair, template in self.config.prompts.items()
                     if [competition_code(part) for part in pair.split("-")] == [src, tgt]), None)

    def output_settings(self, source: str, target: str) -> dict:
        cfg = self.config
        return {**super().output_settings(source, target), "prompt": self.prompt_template(source, target),
                "chat_template": cfg.chat_template, "stop": cfg.stop, "max_length_ratio": cfg.max_length_ratio}

    def _load_model(self, name: str, dtype, kwargs: dict):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)

    def _prepare(self) -> None:
        super()._prepare()
        tokenizer = self._tokenizer
        tokenizer.padding_side = "left"  # generation continues every row from its last real token
        if tokenizer.pad_token is None:
            tokenizer.pad_token = self.config.pad_token or tokenizer.eos_token

    def prompts(self, batch: list[str], src: str, tgt: str) -> tuple[list[str], bool]:
        """The batch's prompts as text, and whether they already hold the special tokens (chat template)."""
        template = self.prompt_template(src, tgt)
        # {text} is the only field left: str.replace keeps braces inside the text intact
        plain = [template.replace("{text}", text) for text in batch]
        tokenizer = self._tokenizer
        if not (self.config.chat_template and getattr(tokenizer, "chat_template", None)):
            return plain, False
        return [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                              add_generation_prompt=True) for p in plain], True

    def token_budget(self, text_tokens: int) -> int:
        """New tokens a text of `text_tokens` tokens may get: `max_length_ratio` x its (capped) tokens + 4,
        at most `max_new_tokens`. The text's own length, never its batch's longest: which texts share a
        batch depends on what the cache already held."""
        cfg = self.config
        return max(1, min(cfg.max_new_tokens, math.ceil(cfg.max_length_ratio * min(cfg.max_input_tokens,
                                                                                    text_tokens)) + 4))

    def _translate_batch(self, batch: list[str], src: str, tgt: str) -> list[str]:
        cfg, tokenizer = self.config, self._tokenizer
        text_ids = tokenizer(batch, add_special_tokens=False)["input_ids"]
        batch = [text if len(ids) <= cfg.max_input_tokens else tokenizer.decode(ids[:cfg.max_input_tokens])
                 for text, ids in zip(batch, text_ids)]  # a text's own tokens are capped, not the prompt's
        budgets = [self.token_budget(len(ids)) for ids in text_ids]
        # Greedy decoding: a row's first k tokens do not depend on how many more are generated, so one call
        # at the batch's largest budget, each row then cut at its own, gives each text what it gets alone.
        # Beam search ranks hypotheses that the length limit shapes: one call per budget.
        groups = ([list(range(len(batch)))] if cfg.num_beams == 1 else
                  [[i for i, b in enumerate(budgets) if b == budget] for budget in sorted(set(budgets))])
        generated: list[list[int]] = [[] for _ in batch]
        for rows in groups:
            output = self._generate_ids([batch[i] for i in rows], max(budgets[i] for i in rows), src, tgt)
            for i, ids in zip(rows, output):
                generated[i] = ids[:budgets[i]]
        self.last_generation["budgets"] = budgets
        return [self.clean(text, tgt) for text in tokenizer.batch_decode(generated, skip_special_tokens=True)]

    def _generate_ids(self, texts: list[str], new_tokens: int, src: str, tgt: str) -> list[list[int]]:
        """The generated token ids of each text's prompt (left-padded batch, greedy or beam search)."""
        import torch

        cfg, tokenizer, model = self.config, self._tokenizer, self._model
        prompts, templated = self.prompts(texts, src, tgt)
        inputs = tokenizer(prompts, add_special_tokens=not templated, padding=True,
                           return_tensors="pt").to(self._device)
        kwargs = {"num_beams": cfg.num_beams, "max_new_tokens": new_tokens, "do_sample": False,
                  "pad_token_id": tokenizer.pad_token_id}
        if cfg.stop:
            kwargs.update(stop_strings=[cfg.stop], tokenizer=tokenizer)
        with torch.inference_mode():
            output = model.generate(**inputs, **kwargs)
        generated = output[:, inputs["input_ids"].shape[1]:].detach().cpu()
        self.last_generation = {"kwargs": {k: v for k, v in kwargs.items() if k != "tokenizer"},
                                "prompts": prompts, "output_ids": generated, "source": src, "target": tgt}
        return generated.tolist()

    def clean(self, text: str, tgt: str) -> str:
        """The first line (up to `stop`), without a repeated ``<Target language>:`` label."""
        if self.config.stop:
            text = text.lstrip().split(self.config.stop)[0]
        label = language_fields(tgt)["name"] + ":"
        text = text.strip()
        return text[len(label):].strip() if text.startswith(label) else text
