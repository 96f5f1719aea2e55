"""A small reader of nginx configuration: blocks and directives, enough to check a file."""

from __future__ import annotations

import dataclasses
import re

_TOKEN = re.compile(r"\s+|#[^\n]*|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[{};]|[^\s{};\"'#]+")


@dataclasses.dataclass(slots=True)
class Block:
    """`name args { ... }`: its directives (name, args) and nested blocks, in order."""

    name: str
    args: list[str]
    entries: list[tuple[str, list[str]]] = dataclasses.field(default_factory=list)
    children: list[Block] = dataclasses.field(default_factory=list)

    def directives(self, name: str) -> list[list[str]]:
        """The arguments of each `name ...;` directly in this block."""
        return [args for entry, args in self.entries if entry == name]

    def blocks(self, name: str) -> list[Block]:
        """The `name ... { }` blocks directly in this block."""
        return [child for child in self.children if child.name == name]

    def block(self, name: str) -> Block:
        """The one `name { }` block directly in this block (AssertionError if not one)."""
        found = self.blocks(name)
        assert len(found) == 1, f"expected one {name} block in {self.name}, found {len(found)}"
        return found[0]


def parse_nginx(text: str) -> Block:
    """Parse a whole configuration into a root block named `main`."""
    stack = [Block("main", [])]
    words: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(
                f"cannot read nginx configuration at {text[position : position + 20]!r}"
            )
        position = match.end()
        token = match.group(0)
        if token.isspace() or token.startswith("#"):
            continue
        if token == ";":
            if not words:
                raise ValueError("empty directive")
            stack[-1].entries.append((words[0], words[1:]))
            words = []
        elif token == "{":
            if not words:
                raise ValueError("block without a name")
            child = Block(words[0], words[1:])
            stack[-1].children.append(child)
            stack.append(child)
            words = []
        elif token == "}":
            if words or len(stack) == 1:
                raise ValueError("unbalanced '}' or a directive without ';'")
            stack.pop()
        else:
            words.append(token.strip("\"'") if token[0] in "\"'" else token)
    if words or len(stack) != 1:
        raise ValueError("unterminated block or directive at the end")
    return stack[0]
