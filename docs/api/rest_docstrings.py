"""A griffe extension: hardy's reST-flavoured docstrings as the Markdown mkdocstrings renders.

hardy's docstrings follow the Sphinx conventions that ``help()`` and IDEs
show well: ``Example::`` before an indented literal block, and roles such as
:class:`~hardy.CircuitBreaker`. mkdocstrings renders docstrings as Markdown,
where the first would show a stray ``::`` and the second a raw role, so this
extension rewrites them when griffe has loaded the package (mkdocs.yml names
it under the python handler's ``extensions``):

* a paragraph ending in ``::`` ends in ``:`` (or, for a lone ``::``, in
  nothing), and the indented block after it becomes a fenced ``python``
  block (``pycon`` when it starts with ``>>>``);
* a role naming a public object of hardy becomes a cross-reference, which
  ``mkdocs build --strict`` checks: a role naming something that does not
  exist fails the build and is fixed in the docstring. A role naming a
  private object (``hardy._deadlines``) or a builtin (``ValueError``) becomes
  inline code: the site has no page for it to point to.

The source docstrings are not changed.
"""

from __future__ import annotations

import builtins
import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj|const):`(?P<tilde>~?)(?P<target>[^`<>]+)`")
LITERAL_INTRO = re.compile(r"^(?P<text>.*?)(?P<space>\s?)::\s*$")


def _literal_blocks(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        intro = LITERAL_INTRO.match(line)
        if intro is None or line.lstrip().startswith(">>>"):
            out.append(line)
            index += 1
            continue
        indent = len(line) - len(line.lstrip())
        # reST: "text::" keeps one colon; " ::" alone or after a space vanishes.
        kept = intro["text"] if intro["space"] or not intro["text"].strip() else intro["text"] + ":"
        if kept.strip():
            out.append(kept)
        index += 1
        block: list[str] = []
        while index < len(lines) and (
            not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            block.append(lines[index])
            index += 1
        while block and not block[-1].strip():
            block.pop()
        body = textwrap.dedent("\n".join(block)).strip("\n")
        if not body:
            continue
        language = "pycon" if body.lstrip().startswith(">>>") else "python"
        prefix = " " * indent
        out.extend(["", f"{prefix}```{language}"])
        out.extend(prefix + code if code else "" for code in body.splitlines())
        out.extend([f"{prefix}```", ""])
    return "\n".join(out)


def _is_private(path: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in path.split("."))


class RestDocstrings(griffe.Extension):
    """Rewrites every docstring of the loaded package once, after the tree is complete."""

    def __init__(self) -> None:
        super().__init__()
        self._done: set[int] = set()

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is None or id(docstring) in self._done:
            return
        self._done.add(id(docstring))

        def role(match: re.Match[str]) -> str:
            target = match["target"].strip()
            shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
            path = self._resolve(obj, target, loader)
            if path is None:
                return f"`{shown}`"
            return f"[`{shown}`][{path}]"

        docstring.value = ROLE.sub(role, _literal_blocks(docstring.value))

    @staticmethod
    def _resolve(obj: griffe.Object, target: str, loader: griffe.GriffeLoader) -> str | None:
        """The path to link to, or ``None`` for inline code.

        A name that is neither hardy's nor a builtin is linked as it is
        written, so that autorefs reports it and the strict build fails.
        """
        head, _, rest = target.partition(".")
        if head == "hardy":
            path = target
        elif hasattr(builtins, head):
            return None
        else:
            scope: griffe.Object | None = obj
            resolved = None
            while scope is not None and resolved is None:
                try:
                    resolved = scope.resolve(head)
                except griffe.NameResolutionError:
                    scope = scope.parent
            if resolved is None:
                return target
            path = f"{resolved}.{rest}" if rest else resolved
        return path if not _is_private(path) else _public_alias(path, loader)


def _public_alias(path: str, loader: griffe.GriffeLoader) -> str | None:
    """``hardy._core_py.CircuitBreaker.reset`` as the reader sees it: ``hardy.CircuitBreaker.reset``."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        try:
            owner = loader.modules_collection[".".join(parts[:end])]
        except (KeyError, griffe.AliasResolutionError):
            continue
        for alias in owner.aliases:
            if not _is_private(alias):
                return ".".join([alias, *parts[end:]])
    return None
