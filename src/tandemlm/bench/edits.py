"""Code-editing requests whose answers mostly copy their input, built from HumanEval's canonical solutions.

Three edits, in rotation over the items (an item that does not admit one gets the next): add docstrings to code
whose docstrings were stripped, rename a parameter everywhere, turn an append loop into a list comprehension.
The answer is the whole edited code, so most of it is the input again: where prompt lookup drafts for free.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from tandemlm.bench.datasets import load

EDIT_TASKS = ("docstring", "rename", "comprehension")
HELD_OUT_FROM = 82  # edits are drawn from HumanEval/82 on; development looked only at the items before it
ANSWER_FORMAT = "Answer with the whole code in one ```python block and nothing else."


@dataclass(frozen=True)
class Edit:
    """One editing request: the HumanEval item it is built from, the edit, and the prompt."""

    id: str
    task: str
    prompt: str


def edit_prompts(n: int, start: int = HELD_OUT_FROM) -> list[Edit]:
    """n editing requests from HumanEval items start, start + 1, ... (fixed, not selected for speed)."""
    out: list[Edit] = []
    for item in load("humaneval")[start:]:
        if len(out) >= n:
            break
        code = item.prompt + item.answer
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        turn = len(out)
        for task in EDIT_TASKS[turn % 3 :] + EDIT_TASKS[: turn % 3]:
            if (prompt := _request(task, code, tree, item.entry_point)) is not None:
                out.append(Edit(item.id, task, prompt))
                break
    return out


def _request(task: str, code: str, tree: ast.Module, entry_point: str) -> str | None:
    if task == "docstring":
        stripped = _without_docstrings(tree)
        return (
            "Add a short docstring to every function in this code. Keep the code otherwise exactly as it is. "
            f"{ANSWER_FORMAT}\n\n```python\n{stripped}\n```"
        )
    if task == "rename":
        fn = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == entry_point), None)
        if fn is None or not fn.args.args:
            return None
        old = fn.args.args[0].arg
        return (
            f"Rename the parameter `{old}` of `{entry_point}` to `{old}_in` everywhere it is used. Keep everything "
            f"else exactly as it is. {ANSWER_FORMAT}\n\n```python\n{code.rstrip()}\n```"
        )
    if task == "comprehension":
        if not any(_append_loop(n) for n in ast.walk(tree)):
            return None
        return (
            "Rewrite the for loop that builds a list with append as a list comprehension. Keep the rest of the code "
            f"exactly as it is. {ANSWER_FORMAT}\n\n```python\n{code.rstrip()}\n```"
        )
    raise ValueError(f"unknown edit task {task!r}; known: {', '.join(EDIT_TASKS)}")


def _without_docstrings(tree: ast.Module) -> str:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            body = node.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def _append_loop(node: ast.AST) -> bool:
    """A for loop whose body is one `xs.append(...)`, possibly under one if."""
    if not isinstance(node, ast.For) or len(node.body) != 1 or node.orelse:
        return False
    stmt = node.body[0]
    if isinstance(stmt, ast.If) and len(stmt.body) == 1 and not stmt.orelse:
        stmt = stmt.body[0]
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Attribute)
        and stmt.value.func.attr == "append"
    )
