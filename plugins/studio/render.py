"""Prompt templates: Jinja2 in an immutable sandbox, bounded in size, time and memory.

Templates are tenant input that runs on our servers, so the sandbox alone is
not enough: it stops attribute escapes, but not ``{{ "a" * 10**9 }}`` or three
nested ``range(100000)`` loops. On top of ``ImmutableSandboxedEnvironment``
with ``StrictUndefined`` this module

* bounds every value an operator, ``~`` concatenation, method call or filter can
  build (checked *before* the allocation where a result can explode),
* bounds the rendered text, and
* renders in a worker thread with a line-trace deadline, so a CPU-bound
  template is stopped instead of holding a thread for ever.

Every failure is a :class:`TemplateProblem` carrying the template part
(``system`` or ``template``) and the line, which the routes answer as 422.
"""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from plugins.studio.models import VariableSpec

#: Largest template (and system template), in UTF-8 bytes.
MAX_TEMPLATE_BYTES: Final = 20 * 1024
#: Largest rendered part, in characters (about 25k tokens).
MAX_OUTPUT_CHARS: Final = 100_000
#: Largest single value (string or list) a template may build.
MAX_VALUE_CHARS: Final = 100_000
#: Largest integer a template may build, in bits.
MAX_INT_BITS: Final = 4096
#: ``range()`` inside templates.
MAX_RANGE: Final = 10_000
#: Width-like filter arguments (center, indent, batch, slice).
MAX_WIDTH: Final = 1_000
#: Wall-clock budget of one render.
RENDER_SECONDS: Final = 1.0


class TemplateProblem(Exception):
    """A template that cannot be compiled or rendered; safe to show to its author."""

    def __init__(self, message: str, *, part: str, line: int | None,
                 slug: str = "template-error") -> None:
        super().__init__(message)
        self.message = message
        self.part = part
        self.line = line
        self.slug = slug


class _TooBig(SecurityError):
    pass


class _Timeout(Exception):
    pass


def _size(value: Any) -> int:
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        return len(value)
    return 0


def _check_value(value: Any) -> Any:
    if _size(value) > MAX_VALUE_CHARS:
        raise _TooBig(f"a value in the template grew beyond {MAX_VALUE_CHARS} characters")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise _TooBig(f"a number in the template grew beyond {MAX_INT_BITS} bits")
    return value


def _bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) and not isinstance(value, bool) else 0


def _guard_binop(op: str, left: Any, right: Any) -> None:
    """Refuse before computing when the result would be too large."""
    if op == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(times, int) and _size(seq) * max(times, 0) > MAX_VALUE_CHARS:
                raise _TooBig("repeating a value with * would exceed the size limit")
        if _bits(left) + _bits(right) > MAX_INT_BITS:
            raise _TooBig(f"a number in the template would exceed {MAX_INT_BITS} bits")
    elif op == "**":
        growth = _bits(left) * max(right, 0) if isinstance(right, int) else 0
        if _bits(left) > 1 and growth > MAX_INT_BITS:
            raise _TooBig(f"a power in the template would exceed {MAX_INT_BITS} bits")
        if isinstance(right, int | float) and abs(right) > MAX_INT_BITS:
            raise _TooBig("the exponent is too large")
    elif op == "+":
        if _size(left) + _size(right) > MAX_VALUE_CHARS:
            raise _TooBig("joining these values would exceed the size limit")
    elif op == "%" and isinstance(left, str):
        raise SecurityError("string formatting with % is not available in prompt templates; "
                            "use ~ to join text")


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise _TooBig(f"range() is limited to {MAX_RANGE} items in prompt templates")
    return rng


def _bounded_join(parts: Sequence[Any]) -> str:
    texts = [str(p) for p in parts]
    if sum(len(t) for t in texts) > MAX_VALUE_CHARS:
        raise _TooBig(f"joining text with ~ would exceed {MAX_VALUE_CHARS} characters")
    return "".join(texts)


def _width(value: Any, what: str) -> None:
    if isinstance(value, int) and value > MAX_WIDTH:
        raise _TooBig(f"{what} is limited to {MAX_WIDTH}")
    if isinstance(value, str) and len(value) > MAX_WIDTH:
        raise _TooBig(f"{what} is limited to {MAX_WIDTH} characters")


def _replace_size(text: str, old: str, new: str, count: int | None) -> int:
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def _str_method_guard(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Pre-checks for the ``str`` methods that can multiply their input."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in ("format", "format_map"):
        raise SecurityError("str.format is not available in prompt templates; use ~ to join text")
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _width(args[0], f"the width of {name}()")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int) and len(owner) * max(size, 1) > MAX_VALUE_CHARS:
            raise _TooBig("expandtabs() would exceed the size limit")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) \
            and isinstance(args[1], str):
        count = args[2] if len(args) > 2 else kwargs.get("count")
        if _replace_size(owner, args[0], args[1], count) > MAX_VALUE_CHARS:
            raise _TooBig("replace() would exceed the size limit")


def _filter_guard(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if name in ("center", "indent") and len(args) > 1:
        _width(args[1], f"the width of the {name} filter")
    if name in ("center", "indent") and "width" in kwargs:
        _width(kwargs["width"], f"the width of the {name} filter")
    if name in ("batch", "slice") and len(args) > 1:
        _width(args[1], f"the size of the {name} filter")
    if name == "replace" and len(args) >= 3 and all(isinstance(a, str) for a in args[:3]):
        count = args[3] if len(args) > 3 else kwargs.get("count")
        if _replace_size(str(args[0]), args[1], args[2], count) > MAX_VALUE_CHARS:
            raise _TooBig("the replace filter would exceed the size limit")


def _guarded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        _filter_guard(name, args[1:] if _pass_arg(func) else args, kwargs)
        return _check_value(func(*args, **kwargs))

    # Keep Jinja's pass_context / pass_environment markers.
    run.__dict__.update(getattr(func, "__dict__", {}))
    return run


def _pass_arg(func: Callable[..., Any]) -> bool:
    return getattr(func, "jinja_pass_arg", None) is not None


class _GuardedCodeGenerator(CodeGenerator):
    """``~`` concatenation goes through a size check instead of a bare ``str_join``."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class PromptEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with bounded operators, calls, filters and ``~``."""

    code_generator_class = _GuardedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%", "//", "/"})
    # Filters that could take a template outside the prompt (or format without bounds).
    removed_filters: Final = frozenset({"format", "random"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self.globals = {"range": _bounded_range, "dict": dict, **{
            k: v for k, v in self.globals.items() if k in ("namespace", "cycler", "joiner")}}
        self.filters = {
            name: _guarded_filter(name, func)
            for name, func in self.filters.items() if name not in self.removed_filters
        }
        self.bounded_join = _bounded_join

    def wrap_str_format(self, value: Any) -> None:
        """No sandboxed ``str.format``: is_safe_attribute refuses it instead."""
        return None

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in ("format", "format_map"):
            return False  # unbounded widths ("{:>999999999}") would allocate gigabytes
        return bool(super().is_safe_attribute(obj, attr, value))

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        _guard_binop(operator_name, left, right)
        return _check_value(super().call_binop(context, operator_name, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _str_method_guard(__obj, args, kwargs)
        return _check_value(super().call(__context, __obj, *args, **kwargs))


_ENV = PromptEnvironment()


def check_size(source: str, part: str) -> None:
    size = len(source.encode("utf-8"))
    if size > MAX_TEMPLATE_BYTES:
        raise TemplateProblem(
            f"The {part} is {size} bytes; the limit is {MAX_TEMPLATE_BYTES} bytes (20 KB).",
            part=part, line=None, slug="template-too-large")


def _names_by_line(ast: nodes.Template) -> dict[str, int]:
    first: dict[str, int] = {}
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load":
            first.setdefault(node.name, node.lineno)
    return first


def compile_check(source: str, part: str, variables: Sequence[VariableSpec]) -> None:
    """Syntax, size and declared variables, checked when a version is saved."""
    from jinja2 import meta

    check_size(source, part)
    try:
        ast = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"Syntax error in the {part}: {exc.message}", part=part,
                              line=exc.lineno) from None
    declared = {v.name for v in variables}
    used = meta.find_undeclared_variables(ast) - set(_ENV.globals)
    unknown = sorted(used - declared)
    if unknown:
        line = _names_by_line(ast).get(unknown[0])
        raise TemplateProblem(
            f"The {part} uses {unknown[0]!r}, which is not a declared variable "
            f"(declared: {', '.join(sorted(declared)) or 'none'}).", part=part, line=line)
    try:
        _ENV.compile(source, name=part)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"Syntax error in the {part}: {exc.message}", part=part,
                              line=exc.lineno) from None


def _template_line(exc: BaseException, part: str) -> int | None:
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == f"<{part}>":
            line = lineno
    return line


def _render_sync(source: str, part: str, values: Mapping[str, Any], deadline: float) -> str:
    """Render with a line-trace deadline (this thread only) and an output bound."""
    ticks = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal ticks
        ticks += 1
        if ticks % 256 == 0 and time.monotonic() > deadline:
            raise _Timeout
        return tracer

    try:
        code = _ENV.compile(source, name=part, filename=f"<{part}>")
        template = _ENV.template_class.from_code(_ENV, code, _ENV.make_globals(None), None)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"Syntax error in the {part}: {exc.message}", part=part,
                              line=exc.lineno) from None
    out: list[str] = []
    failure: BaseException | None = None
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        size = 0
        for chunk in template.generate(**values):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateProblem(
                    f"The rendered {part} is longer than {MAX_OUTPUT_CHARS} characters.",
                    part=part, line=None)
            out.append(chunk)
    except BaseException as exc:  # judged below, with tracing off
        failure = exc
    finally:
        sys.settrace(previous)
    if failure is None:
        return "".join(out)
    raise _problem(failure, part) from None


def _problem(exc: BaseException, part: str) -> BaseException:
    """The author-facing problem for a render failure (other exceptions pass through)."""
    if isinstance(exc, TemplateProblem):
        return exc
    if isinstance(exc, _Timeout):
        return TemplateProblem(
            f"Rendering the {part} took longer than {RENDER_SECONDS:g} s; simplify its loops.",
            part=part, line=None, slug="template-timeout")
    line = _template_line(exc, part)
    if isinstance(exc, UndefinedError):
        return TemplateProblem(f"Undefined value in the {part}: {exc.message}", part=part,
                               line=line)
    if isinstance(exc, SecurityError):
        return TemplateProblem(f"Not allowed in the {part}: {exc}", part=part, line=line)
    if isinstance(exc, TemplateError | ArithmeticError | TypeError | ValueError | LookupError
                  | RecursionError | AttributeError | MemoryError):
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return TemplateProblem(f"Error in the {part}: {str(message)[:300]}", part=part,
                               line=line)
    return exc


@dataclass(frozen=True)
class Rendered:
    system: str | None
    user: str

    def messages(self) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return [*messages, {"role": "user", "content": self.user}]


async def render(template: str, system: str | None, values: Mapping[str, Any]) -> Rendered:
    """Render both parts off the event loop, within :data:`RENDER_SECONDS` each."""

    def run() -> Rendered:
        rendered_system = None
        if system:
            rendered_system = _render_sync(system, "system", values,
                                           time.monotonic() + RENDER_SECONDS)
        user = _render_sync(template, "template", values, time.monotonic() + RENDER_SECONDS)
        return Rendered(rendered_system, user)

    return await asyncio.to_thread(run)


__all__ = [
    "MAX_TEMPLATE_BYTES",
    "PromptEnvironment",
    "Rendered",
    "TemplateProblem",
    "check_size",
    "compile_check",
    "render",
]
