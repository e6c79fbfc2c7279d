"""Translator backends, one module each: every module here registers its class with
`relevance.augment.translator.register_backend` and is imported when a translator is made."""
