"""Import a library's modules without running package `__init__` files that load what we do not use.

`from chgnet.model import CHGNet` runs chgnet/model/__init__.py, which imports CHGNet's molecular
dynamics (ASE MD, pymatgen's equation of state and, through it, matplotlib), and
chgnet/utils/__init__.py, which imports pymatgen's VASP output parsers (scipy.signal and more):
1.5-2 s of an `optbench evaluate` that needs neither.

`defer_init("chgnet.model")` registers the package with its `__init__` not yet run. Its submodules
import as usual (`chgnet.model.model`). The first time a name is asked of the package itself, the
`from SUBMODULE import NAME` line of its `__init__` that defines the name (read from the source) is
followed: only that submodule is imported (a name that is a submodule is imported as one). Any
other name (or `__all__`) runs the whole `__init__` first, so later code that imports the package
sees every name it always did.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import types


class _DeferredPackage(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__") and name != "__all__":
            raise AttributeError(name)
        source = _init_imports(self.__spec__).get(name)
        if source is not None:
            value = getattr(importlib.import_module(source[0]), source[1])
        elif importlib.util.find_spec(f"{self.__name__}.{name}") is not None:  # `from package import submodule`
            value = importlib.import_module(f"{self.__name__}.{name}")
        else:  # not a plain re-export: run the package's __init__ as an import would have
            self.__class__ = types.ModuleType
            self.__spec__.loader.exec_module(self)
            value = getattr(self, name)
        setattr(self, name, value)
        return value


_REEXPORTS: dict[str, dict[str, tuple[str, str]]] = {}


def _init_imports(spec) -> dict[str, tuple[str, str]]:
    """NAME -> (module, attribute) of the top-level `from MODULE import ATTRIBUTE [as NAME]` lines
    of a package's __init__."""
    if spec.name in _REEXPORTS:
        return _REEXPORTS[spec.name]
    out: dict[str, tuple[str, str]] = {}
    try:
        tree = ast.parse(spec.loader.get_source(spec.name) or "")
    except (OSError, SyntaxError, ImportError):
        tree = ast.Module(body=[], type_ignores=[])
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and all(a.name != "*" for a in node.names):
            module = importlib.util.resolve_name("." * node.level + node.module, spec.name) if node.level else node.module
            for alias in node.names:
                out[alias.asname or alias.name] = (module, alias.name)
    _REEXPORTS[spec.name] = out
    return out


def defer_init(*packages: str) -> None:
    """Register each package (not yet imported) with its `__init__` deferred; see the module docstring."""
    for name in packages:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)  # imports the parent packages as usual
        if spec is None or spec.submodule_search_locations is None:
            continue
        module = importlib.util.module_from_spec(spec)
        module.__class__ = _DeferredPackage
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
