"""The `ctranslate2` backend: the seq2seq models converted once and decoded by CTranslate2's C++ runtime."""

from __future__ import annotations

import logging

from relevance.augment.cache import make_key
from relevance.augment.translator import register_backend
from relevance.augment.translators.seq2seq import Seq2SeqTranslator
from relevance.modeling.pretrained import ModelUnavailableError, resolve_device

log = logging.getLogger(__name__)


@register_backend("ctranslate2")
class CTranslate2Translator(Seq2SeqTranslator):
    """The same seq2seq model (NLLB, M2M100) run by CTranslate2: converted once from the transformers
    weights into ``<models_dir>/ct2-<key>`` (keyed by the model's identity and the two packages' versions),
    then decoded by CTranslate2's C++ runtime with the same tokens as `Seq2SeqTranslator`."""

    def _load_model(self, name: str, dtype, kwargs: dict):
        try:
            import ctranslate2
            from ctranslate2.converters import TransformersConverter
        except ImportError as error:
            raise ModelUnavailableError("translator.backend=ctranslate2 needs the ctranslate2 package "
                                        "(pip install ctranslate2), or use translator.backend=seq2seq") from error
        import transformers

        from relevance.modeling.sources import COMPLETE_MARKER, write_directory_atomically

        versions = f"{ctranslate2.__version__}|{transformers.__version__}"
        target = self._models_dir() / f"ct2-{make_key(self.weights_identity, kwargs.get('revision'), versions)[:16]}"
        if not (target / COMPLETE_MARKER).exists():
            log.info("converting %s to CTranslate2 once (cached at %s)", name, target)
            write_directory_atomically(target, lambda tmp: TransformersConverter(
                name, revision=kwargs.get("revision")).convert(str(tmp), force=True))
        device = resolve_device(self.config.device)
        return ctranslate2.Translator(str(target), device="cuda" if device.startswith("cuda") else "cpu",
                                      compute_type="default")

    def _prepare(self) -> None:
        pass  # no torch module to move

    def _translate_batch(self, batch: list[str], src: str, tgt: str) -> list[str]:
        tokenizer = self._tokenizer
        tokens = [tokenizer.convert_ids_to_tokens(ids) for ids in self.input_ids(batch, src, tgt)]
        prefix = None
        if self.config.target_language_as == "forced_bos":
            prefix = [[self.language_token("target", tgt)]] * len(batch)
        results = self._model.translate_batch(tokens, target_prefix=prefix, beam_size=self.config.num_beams,
                                              max_decoding_length=self.config.max_new_tokens,
                                              max_batch_size=self.config.batch_size)
        hypotheses = [result.hypotheses[0][1:] if prefix else result.hypotheses[0] for result in results]
        self.last_generation = {"tokens": tokens, "hypotheses": hypotheses, "source": src, "target": tgt}
        return [tokenizer.decode(tokenizer.convert_tokens_to_ids(h), skip_special_tokens=True) for h in hypotheses]
