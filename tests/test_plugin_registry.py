"""`relevance.plugins.Registry` on a package of its own, written to a temp dir: its modules are imported the
first time it is read, and a module that fails to import is tried again on the next read, not left out."""

from __future__ import annotations

import sys

import pytest

from relevance.plugins import Registry

MODULE = '''from {package} import REGISTRY


@REGISTRY.register("{name}")
class Plugin:
    pass
'''


@pytest.fixture
def package(tmp_path, monkeypatch):
    name = "registry_probe_pkg"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text(f"from relevance.plugins import Registry\nREGISTRY = Registry('probe', '{name}')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, folder
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def test_a_module_that_failed_to_import_is_tried_again(package):
    name, folder = package
    (folder / "good.py").write_text(MODULE.format(package=name, name="good"))
    (folder / "broken.py").write_text(MODULE.format(package=name, name="broken") + "raise RuntimeError('half-written')\n")
    registry: Registry = __import__(name).REGISTRY
    with pytest.raises(RuntimeError, match="half-written"):
        registry.names()
    (folder / "broken.py").write_text(MODULE.format(package=name, name="broken"))
    assert registry.names() == ("broken", "good")
    assert registry.get("broken", "probe").__name__ == "Plugin"
    with pytest.raises(ValueError, match=r"probe='missing': use one of \('broken', 'good'\)"):
        registry.get("missing", "probe")
