"""Packages registered with their __init__ deferred (optbench.lazy_packages) on a made-up package."""

from __future__ import annotations

import sys

import pytest

from optbench.lazy_packages import defer_init

INIT = '''
import sys
from .light import answer
from .light import answer as renamed
from .heavy import expensive
sys.modules[__name__].ran_init = True
'''


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    root = tmp_path / "deferpkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text(INIT)
    (root / "sub" / "light.py").write_text("answer = 42\n")
    (root / "sub" / "heavy.py").write_text("import sys\nsys.modules['deferpkg'].heavy_loaded = True\nexpensive = 1\n")
    (root / "sub" / "user.py").write_text("from deferpkg.sub import answer\nvalue = answer + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "deferpkg.sub"
    for name in [m for m in sys.modules if m.startswith("deferpkg")]:
        del sys.modules[name]


def test_submodules_and_reexports_without_the_init(pkg):
    defer_init(pkg)
    # user.py's `from deferpkg.sub import answer` follows the __init__'s `from .light import answer`
    import deferpkg
    from deferpkg.sub import user

    assert user.value == 43
    from deferpkg.sub import renamed

    assert renamed == 42
    assert "heavy_loaded" not in vars(deferpkg) and "ran_init" not in vars(sys.modules[pkg])


def test_any_other_name_runs_the_whole_init(pkg):
    defer_init(pkg)
    import deferpkg

    assert sys.modules[pkg].ran_init is True  # a name the __init__ sets itself
    assert deferpkg.heavy_loaded and sys.modules[pkg].expensive == 1
    from deferpkg.sub import answer

    assert answer == 42


def test_an_imported_package_is_left_alone(pkg):
    import deferpkg.sub

    defer_init(pkg)
    assert sys.modules[pkg] is deferpkg.sub and deferpkg.sub.ran_init
