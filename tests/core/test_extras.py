"""Optional dependencies: a missing one gets one line naming the extra that brings it."""

import pytest

from goldstone.core import extras
from goldstone.core.extras import MissingExtraError, install_hint, optional_import, require_extra


def test_missing_module_names_its_extra_and_the_install_command(monkeypatch):
    monkeypatch.setitem(extras.EXTRAS, "hf", ("transformers", "no_such_module_for_goldstone"))
    with pytest.raises(MissingExtraError, match=r"^experiment 'x' needs no_such_module_for_goldstone \(the 'hf' "
                                                r"extra\): pip install .*\[hf\]"):
        require_extra("hf", "experiment 'x'")
    with pytest.raises(MissingExtraError, match=r"^reading it needs no_such_module_for_goldstone"):
        optional_import("no_such_module_for_goldstone", "hf", "reading it")


def test_install_hint_matches_how_goldstone_was_installed(monkeypatch):
    monkeypatch.setattr(extras, "_editable_checkout", lambda: None)
    assert install_hint("ray") == "pip install 'goldstone[ray]'"
    monkeypatch.setattr(extras, "_editable_checkout", lambda: "/src/goldstone")
    assert install_hint("ray") == "pip install -e '.[ray]' (in /src/goldstone)"


def test_a_broken_installed_module_is_not_reported_as_missing(tmp_path, monkeypatch):
    (tmp_path / "broken_pkg_for_goldstone.py").write_text("import no_such_dependency_inside\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_inside"):
        optional_import("broken_pkg_for_goldstone", "hf", "it")
