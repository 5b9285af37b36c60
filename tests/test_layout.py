"""The house rules of engine/: packages by capability, small modules and classes."""

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"
MAX_MODULE_LINES = 420  # "under about 400"
MAX_CLASS_LINES = 210  # "about 200"


def modules() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


def test_engine_holds_packages_and_no_flat_modules():
    top = sorted(p.name for p in ENGINE.glob("*.py"))
    assert top == ["__init__.py"], f"engine/ holds packages only; move {top} into the package that owns them"
    packages = sorted(p.name for p in ENGINE.iterdir() if (p / "__init__.py").exists())
    assert len(packages) >= 12
    for name in packages:
        doc = ast.get_docstring(ast.parse((ENGINE / name / "__init__.py").read_text(encoding="utf-8")))
        assert doc or name in ("rules", "workflows"), f"engine/{name}/__init__.py says what the package owns"


def test_no_module_is_over_about_400_lines():
    long = {
        str(p.relative_to(ENGINE)): n
        for p in modules()
        if (n := p.read_text(encoding="utf-8").count("\n")) > MAX_MODULE_LINES
    }
    assert long == {}, "split these modules by what they own"


def test_no_class_is_over_about_200_lines():
    long = {}
    for p in modules():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno > MAX_CLASS_LINES:
                long[f"{p.relative_to(ENGINE)}:{node.name}"] = node.end_lineno - node.lineno
    assert long == {}, "split these classes"


def test_every_error_a_person_sees_derives_from_the_one_base():
    """Public exception classes (not _private signals) derive from EngineError, directly or not."""
    import importlib
    import inspect

    from engine.support.errors import EngineError

    internal = {"TemporaryFailure", "PermanentFailure", "Uncertain", "ServerUnavailable", "FactsLost", "Bad"}
    wrong = []
    for p in modules():
        name = ".".join(p.relative_to(ENGINE.parent).with_suffix("").parts)
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != name or not issubclass(cls, BaseException) or cls_name.startswith("_"):
                continue
            if cls_name not in internal and not issubclass(cls, EngineError):
                wrong.append(f"{name}.{cls_name}")
    assert wrong == [], "derive from engine.support.errors.EngineError (or list it as an internal signal here)"
