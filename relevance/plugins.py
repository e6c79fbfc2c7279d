"""One plug-in pattern: classes registered by name from the modules of one package. Strategies, translator
backends, model sources and heads each keep a `Registry`; a new one is a module in that package that
registers its class with `@REGISTRY.register("<name>")`, plus a YAML naming it. The package's modules are
imported the first time the registry is read, so nothing else is edited."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


class Registry:
    """`kind` names what is registered in messages (`head`); `package` is the package whose modules
    register (`relevance.modeling.heads`)."""

    def __init__(self, kind: str, package: str):
        self.kind, self.package = kind, package
        self.classes: dict[str, type] = {}
        self._loaded = False

    def register(self, name: str, /, **attributes: Any):
        """Class decorator: the class this name builds, with `attributes` set on it (a strategy's `name` and
        `options_type`)."""
        def decorate(cls: type) -> type:
            if name in self.classes and self.classes[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is registered twice ({self.classes[name]!r}, {cls!r})")
            for attribute, value in attributes.items():
                setattr(cls, attribute, value)
            self.classes[name] = cls
            return cls
        return decorate

    def load(self) -> None:
        """Import every module of the package (once): each registers its class."""
        if self._loaded:
            return
        self._loaded = True  # first: a module that looks a name up while it is imported does not import again
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            name = f"{self.package}.{module.name}"
            try:
                importlib.import_module(name)
            except BaseException:
                # tried again on the next read, not left out for good: without what it registered before failing
                self.classes = {key: cls for key, cls in self.classes.items() if cls.__module__ != name}
                self._loaded = False
                raise

    def names(self) -> tuple[str, ...]:
        self.load()
        return tuple(sorted(self.classes))

    def get(self, name: Any, key: str) -> type:
        """The class registered as `name`; a ValueError naming the config `key` and the options otherwise."""
        self.load()
        if name not in self.classes:
            raise ValueError(f"{key}={name!r}: use one of {self.names()}")
        return self.classes[name]
