"""Meta-tests that keep the plugin contract honest (no I/O beyond reading sources).

Every hookspec in ``core/hooks/hookspecs.py`` has a docstring, a heading in
``docs/plugin_hooks.md`` with its signature, and a ``test_hook_<name>`` under
``tests/``. The page mentions no hook that does not exist, its examples are
valid hook implementations, and it says which hooks the kernel does not call yet
exactly when the kernel's code does not name them.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import types
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pluggy
import pytest

from core.hooks import PROJECT_NAME, hookspecs

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "plugin_hooks.md"
TESTS = ROOT / "tests"
CORE = ROOT / "core"

HEADING = re.compile(r"^(#{2,3})\s+(.+?)\s*$")
HOOK_HEADING = re.compile(r"^(\w+)\((.*)\)$")
NOT_CONSUMED = "**Kernel status:** not consumed by the kernel yet"


# -- sources of truth ------------------------------------------------------------------


@cache
def hookspec_functions() -> dict[str, Callable[..., Any]]:
    """The specs as pluggy sees them (not a hand-kept list)."""
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return {
        name: caller.spec.function
        for name, caller in sorted(vars(manager.hook).items())
        if isinstance(caller, pluggy.HookCaller) and caller.spec is not None
    }


HOOKS = sorted(hookspec_functions())


def _annotation(value: Any) -> str:
    return value if isinstance(value, str) else inspect.formatannotation(value)


def typed_signature(function: Callable[..., Any]) -> str:
    """``def name(arg: Type, ...) -> Return`` exactly as hookspecs.py spells it."""
    signature = inspect.signature(function)
    params = ", ".join(
        f"{p.name}: {_annotation(p.annotation)}" for p in signature.parameters.values()
    )
    return f"def {function.__name__}({params}) -> {_annotation(signature.return_annotation)}"


def short_signature(function: Callable[..., Any]) -> str:
    """``name(arg, ...)``: the form the section heading uses."""
    return f"{function.__name__}({', '.join(inspect.signature(function).parameters)})"


@cache
def doc_text() -> str:
    return DOCS.read_text(encoding="utf-8")


def _outside_fences(text: str) -> Iterator[tuple[int, str]]:
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield number, line


@cache
def doc_sections() -> dict[str, str]:
    """Heading text (backticks stripped) → body up to the next ## / ### heading."""
    lines = doc_text().splitlines()
    headings = [
        (number, match.group(2).replace("`", "").strip())
        for number, line in _outside_fences(doc_text())
        if (match := HEADING.match(line))
    ]
    sections: dict[str, str] = {}
    for index, (number, title) in enumerate(headings):
        end = headings[index + 1][0] - 1 if index + 1 < len(headings) else len(lines)
        assert title not in sections, f"heading {title!r} appears twice in {DOCS.name}"
        sections[title] = "\n".join(lines[number:end])
    return sections


def hook_sections() -> dict[str, tuple[str, str]]:
    """Hook name → (heading text, section body) for headings shaped like ``name(...)``."""
    found: dict[str, tuple[str, str]] = {}
    for title, body in doc_sections().items():
        match = HOOK_HEADING.match(title)
        if match:
            assert match.group(1) not in found, f"{match.group(1)} has two headings"
            found[match.group(1)] = (title, body)
    return found


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


@cache
def defined_function_names() -> frozenset[str]:
    names: set[str] = set()
    for path in TESTS.rglob("*.py"):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError:
            continue  # another test file's problem; pytest reports it on its own
        names.update(
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        )
    return frozenset(names)


@cache
def names_the_kernel_uses() -> frozenset[str]:
    """Hook names that kernel code passes to the registry (string literals)."""
    hooks = set(HOOKS)
    used: set[str] = set()
    for path in CORE.rglob("*.py"):
        if path.is_relative_to(CORE / "hooks"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError:
            continue
        used.update(
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in hooks
        )
    return frozenset(used)


# -- the specs themselves ----------------------------------------------------------------


def test_hookspecs_are_found_through_pluggy_and_the_module_alike() -> None:
    marker = f"{PROJECT_NAME}_spec"
    in_module = {
        name
        for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and hasattr(value, marker)
    }
    assert HOOKS, "no hookspecs found"
    assert set(HOOKS) == in_module


@pytest.mark.parametrize("name", HOOKS)
def test_hookspec_has_a_docstring(name: str) -> None:
    doc = inspect.getdoc(hookspec_functions()[name]) or ""
    assert len(doc) >= 40, f"{name} needs a docstring saying when it is called and what to return"
    assert "Called" in doc, f"{name}'s docstring must say when the kernel calls it"


# -- documented, with the exact signature ---------------------------------------------------


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_with_its_signature(name: str) -> None:
    function = hookspec_functions()[name]
    sections = hook_sections()
    assert name in sections, f"docs/plugin_hooks.md has no '## `{short_signature(function)}`'"
    title, body = sections[name]
    assert title == short_signature(function), f"heading {title!r} != {short_signature(function)!r}"
    assert f"`{typed_signature(function)}`" in body, (
        f"the {name} section must show `{typed_signature(function)}`"
    )


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_an_example_that_implements_it(name: str) -> None:
    _, body = hook_sections()[name]
    blocks = python_blocks(body)
    assert blocks, f"the {name} section needs a ```python example"
    for number, code in enumerate(blocks):
        module = _exec_example(code, f"{name}_{number}")
        try:
            manager = pluggy.PluginManager(PROJECT_NAME)
            manager.add_hookspecs(hookspecs)
            manager.register(module, name=f"example-{name}")
            manager.check_pending()
            implemented = {
                hook.name for hook in manager.get_hookcallers(module) or []
            }
        finally:
            sys.modules.pop(module.__name__, None)
        assert implemented == {name}, f"the {name} example implements {sorted(implemented)}"


def _exec_example(code: str, label: str) -> types.ModuleType:
    module = types.ModuleType(f"plugin_hooks_example_{label}")
    module.__file__ = str(ROOT / "acme_plugin" / "plugin.py")
    sys.modules[module.__name__] = module  # pydantic and dataclasses look modules up
    try:
        exec(compile(code, f"{DOCS}:{label}", "exec"), module.__dict__)
    except BaseException:
        sys.modules.pop(module.__name__, None)
        raise
    return module


# -- tested ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_test(name: str) -> None:
    assert f"test_hook_{name}" in defined_function_names(), (
        f"no test function named test_hook_{name} under tests/"
    )


# -- nothing invented -----------------------------------------------------------------------


def test_docs_mention_only_existing_hooks() -> None:
    hooks = set(HOOKS)
    text = doc_text()

    headed = set(hook_sections())
    register_like = set(re.findall(r"\bregister_[a-z_]+", text))
    implemented = {
        match
        for code in python_blocks(text)
        for match in re.findall(r"@hookimpl[^\n]*\n(?:async\s+)?def\s+(\w+)", code)
    }
    tabled = set(re.findall(r"^\|\s*`(\w+)`\s*\|", text, flags=re.MULTILINE))

    assert headed - hooks == set(), "headings for hooks that do not exist"
    assert register_like - hooks == set(), "register_* names that are not hooks"
    assert implemented - hooks == set(), "examples implementing hooks that do not exist"
    assert {name for name in tabled if name.split("_")[0] in {"register", "plugin"}} <= hooks


def test_status_table_lists_every_hook_once() -> None:
    status_rows = re.findall(
        r"^\|\s*`(\w+)`\s*\|\s*(yes|not yet)\b", doc_text(), flags=re.MULTILINE
    )
    names = [name for name, _ in status_rows]
    assert sorted(names) == HOOKS


@pytest.mark.parametrize("name", HOOKS)
def test_docs_say_not_consumed_exactly_when_the_kernel_does_not_call_it(name: str) -> None:
    _, body = hook_sections()[name]
    says_not_consumed = NOT_CONSUMED in body
    kernel_calls_it = name in names_the_kernel_uses()
    status = dict(
        re.findall(r"^\|\s*`(\w+)`\s*\|\s*(yes|not yet)\b", doc_text(), flags=re.MULTILINE)
    )
    assert says_not_consumed is not kernel_calls_it, (
        f"{name}: the kernel {'calls' if kernel_calls_it else 'does not call'} it; "
        f"update its section in docs/plugin_hooks.md"
    )
    assert status[name] == ("yes" if kernel_calls_it else "not yet")
