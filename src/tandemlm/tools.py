"""Tool calls as text: the format a model writes them in, and the prompt that teaches it to models whose chat
template has no tool support.

The format is the one Qwen2.5's template (and Hermes-style templates) teach: each call a JSON object
`{"name": ..., "arguments": {...}}` between `<tool_call>` and `</tool_call>` lines. A template that renders
`tools` itself gets them; for one that does not (SmolLM2's), `with_tool_prompt` writes the functions into the
system message from the packaged prompt (data/prompts/tools.txt) and turns earlier calls and results into text.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from functools import cache
from importlib import resources

from tandemlm.types import Message, Tool, ToolCall

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
RESULT_OPEN, RESULT_CLOSE = "<tool_response>", "</tool_response>"
_BLOCK = re.compile(re.escape(CALL_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(CALL_CLOSE) + r"|\Z)", re.DOTALL)


def new_call_id() -> str:
    return f"call_{secrets.token_hex(12)}"


def call_json(name: str, arguments: str) -> str:
    """One call as the model writes it (the arguments as given when they are not JSON)."""
    try:
        args = json.dumps(json.loads(arguments), ensure_ascii=False)
    except ValueError:
        args = arguments
    return f'{{"name": {json.dumps(name)}, "arguments": {args}}}'


def render_calls(calls: Sequence[ToolCall]) -> str:
    """Calls in the text format, one block each."""
    return "\n".join(f"{CALL_OPEN}\n{call_json(c.name, c.arguments)}\n{CALL_CLOSE}" for c in calls)


def parse_call(text: str) -> ToolCall | None:
    """One call object (`{"name": ..., "arguments": ...}`) as a ToolCall; None when it is not one."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", data.get("parameters", {}))
    try:
        return ToolCall(new_call_id(), data["name"], arguments if isinstance(arguments, str) else json.dumps(arguments))
    except ValueError:  # not a valid function name
        return None


def parse_calls(text: str) -> tuple[str, tuple[ToolCall, ...]]:
    """The text outside call blocks, and the calls in them. A block that holds no call object stays text."""
    calls: list[ToolCall] = []
    kept: list[str] = []
    last = 0
    for match in _BLOCK.finditer(text):
        call = parse_call(match.group(1))
        if call is None:
            continue
        kept.append(text[last : match.start()])
        last = match.end()
        calls.append(call)
    kept.append(text[last:])
    return ("".join(kept).strip() if calls else text), tuple(calls)


@cache
def _tool_prompt() -> str:
    return resources.files("tandemlm.data").joinpath("prompts/tools.txt").read_text(encoding="utf-8")


def tool_system_text(tools: Sequence[Tool], tool_choice: str) -> str:
    """The packaged instructions with the functions filled in (for templates without tool support)."""
    listed = "\n".join(json.dumps(t.to_dict(), ensure_ascii=False) for t in tools)
    if tool_choice == "auto":
        when = "Call a function when it helps answer; otherwise answer normally."
    elif tool_choice == "required":
        when = "You must call at least one function."
    else:
        when = f"You must call the function {tool_choice}."
    return _tool_prompt().format(tools=listed, when=when).strip()


def with_tool_prompt(messages: Sequence[Message], tools: Sequence[Tool], tool_choice: str) -> tuple[Message, ...]:
    """The conversation for a model whose template knows no tools: the functions in the system message, earlier
    calls as the assistant's text, results as user turns between `<tool_response>` lines."""
    out: list[Message] = []
    if tools and tool_choice != "none":
        head = tool_system_text(tools, tool_choice)
        if messages and messages[0].role == "system":
            head = f"{messages[0].content}\n\n{head}"
            messages = messages[1:]
        out.append(Message("system", head))
    for m in messages:
        if m.role == "tool":
            result = f"{RESULT_OPEN}\n{m.content}\n{RESULT_CLOSE}"
            if out and out[-1].role == "user" and out[-1].content.startswith(RESULT_OPEN):
                out[-1] = Message("user", f"{out[-1].content}\n{result}")  # results of one turn's calls together
            else:
                out.append(Message("user", result))
        elif m.tool_calls:
            text = "\n".join(part for part in (m.content, render_calls(m.tool_calls)) if part)
            out.append(Message("assistant", text))
        else:
            out.append(m)
    return tuple(out)
