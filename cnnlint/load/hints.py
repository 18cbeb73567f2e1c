"""Argument hints: what a model's constructor needs, which zero-argument factories in its own
file build it, and the ``[tool.cnnlint.models]`` snippet that would give the arguments."""

from __future__ import annotations

import ast
import inspect
import json
import types
from collections.abc import Callable
from typing import Any


def required_parameters(factory: Callable[..., Any]) -> list[str]:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return []
    return [
        name
        for name, param in signature.parameters.items()
        if param.default is inspect.Parameter.empty
        and param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
    ]


def needs_arguments_message(display: str, factory: Callable[..., Any], missing: list[str]) -> str:
    """Say what the constructor needs, which zero-argument factories in the same file build it,
    and the pyproject.toml snippet, unless an argument is something TOML cannot express."""
    name = getattr(factory, "__name__", display)
    head = f"{display}: {name}() needs arguments ({', '.join(missing)})."
    factories, examples = factories_and_examples(factory, missing)
    prefix = display.rpartition("::")[0] + "::" if "::" in display else display.rpartition(":")[0] + ":"
    lint_factory = ""
    if factories:
        names = ", ".join(f"{prefix}{f}" for f in factories)
        lint_factory = f" Lint a zero-argument factory in the same file that builds it: {names}."
    unexpressible = {arg: text for arg, (text, literal) in examples.items() if not literal}
    if unexpressible:
        given = "; ".join(f"{arg} is {text}" for arg, text in unexpressible.items())
        return (
            f"{head}{lint_factory} Its arguments cannot go in pyproject.toml: {given}, and TOML holds only numbers, strings, booleans, lists and tables, not a class "
            "or function. "
            + ("" if factories else f"Write a function with no arguments that builds it and lint "
               f"that ({prefix}make_model).")
        ).rstrip()  # fmt: skip
    kwargs = ", ".join(
        f"{arg} = {examples[arg][0] if arg in examples else '...'}" for arg in missing
    )
    return (
        f"{head}{lint_factory}{' Or give' if factories else ' Give'} them in pyproject.toml:\n"
        f'    [tool.cnnlint.models."{display}"]\n'
        f"    kwargs = {{ {kwargs} }}"
    )


def factories_and_examples(
    factory: Callable[..., Any], missing: list[str]
) -> tuple[list[str], dict[str, tuple[str, bool]]]:
    """Zero-argument functions of the factory's own module that call it, and for each missing
    argument the first value they pass: (its source text, whether TOML can express it)."""
    module = inspect.getmodule(factory)
    name = getattr(factory, "__name__", None)
    if module is None or name is None:
        return [], {}
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return [], {}
    try:
        order = list(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        order = []
    factories: list[str] = []
    examples: dict[str, tuple[str, bool]] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        calls = [c for c in ast.walk(node) if isinstance(c, ast.Call) and _called_name(c) == name]
        if not calls:
            continue
        obj = vars(module).get(node.name)
        # A factory returns what it builds; a `main()` that builds and trains a model does not.
        returns = any(isinstance(r, ast.Return) and r.value is not None for r in ast.walk(node))
        if callable(obj) and not required_parameters(obj) and returns:
            factories.append(node.name)
        for call in calls:
            given = dict(zip(order[1:] if order[:1] == ["self"] else order, call.args))
            given.update({k.arg: k.value for k in call.keywords if k.arg})
            for arg in missing:
                if arg in given and arg not in examples:
                    text, literal = _toml_value(given[arg], module)
                    examples[arg] = (text if literal else f"{text} in {node.name}()", literal)
    return factories, examples


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _toml_value(node: ast.expr, module: types.ModuleType) -> tuple[str, bool]:
    """(how to write the value, whether TOML can express it)."""
    text = ast.unparse(node)
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        resolved = vars(module).get(text) if isinstance(node, ast.Name) else None
        kind = "a class" if inspect.isclass(resolved) else "a function" if callable(resolved) else (
            "an expression")  # fmt: skip
        return f"{text} ({kind})", False
    if isinstance(value, (bool, int, float, str)) or (
        isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value)
    ):
        return (json.dumps(list(value)) if isinstance(value, tuple) else json.dumps(value)), True
    return f"{text} (not expressible in TOML)", False
