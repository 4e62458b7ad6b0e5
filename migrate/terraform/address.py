"""Terraform resource addresses: parse, format and match (pure).

Covers what ``terraform state list`` prints and what ``state rm``/``mv`` accept:
``module.a["x"].module.b[0].aws_eks_cluster.this["k"]``, data sources
(``data.aws_eks_cluster.this``), and module-only prefixes (``module.eks``).
A component without a key matches every key, as Terraform's targets do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from migrate.errors import StateError

Key = int | str | None
Mode = Literal["managed", "data"]

# Terraform identifiers: a letter or underscore, then letters, digits, '_' or '-'.
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True, slots=True)
class ModuleStep:
    name: str
    key: Key = None

    def __str__(self) -> str:
        return f"module.{self.name}{format_key(self.key)}"


@dataclass(frozen=True, slots=True)
class Address:
    """A module path, optionally followed by a resource and an instance key.

    ``type``/``name`` are None for a module-only address. ``key`` is the
    instance key; ``has_key`` says whether the text gave one (``x.y`` vs ``x.y[0]``).
    """

    module: tuple[ModuleStep, ...] = ()
    mode: Mode = "managed"
    type: str | None = None
    name: str | None = None
    key: Key = None
    has_key: bool = False

    @property
    def is_module(self) -> bool:
        return self.type is None

    @property
    def module_str(self) -> str:
        return ".".join(str(m) for m in self.module)

    @property
    def resource_str(self) -> str:
        """The resource part without module or instance key (``data.x.y``)."""
        if self.type is None:
            return ""
        return f"{'data.' if self.mode == 'data' else ''}{self.type}.{self.name}"

    @property
    def config_str(self) -> str:
        """The address with every key stripped, as in a state's ``dependencies``."""
        parts = [f"module.{m.name}" for m in self.module]
        if self.type is not None:
            parts.append(self.resource_str)
        return ".".join(parts)

    def resource(self) -> Address:
        """This address without its instance key."""
        return Address(self.module, self.mode, self.type, self.name)

    def __str__(self) -> str:
        parts = [str(m) for m in self.module]
        if self.type is not None:
            parts.append(self.resource_str + (format_key(self.key) if self.has_key else ""))
        return ".".join(parts)

    def matches(self, other: Address, *, any_key: bool = False) -> bool:
        """True if ``other`` (an instance address) is this address or lies under it.

        Terraform's target rules: module keys must be equal, except that a module
        address whose *last* step has no key takes in every instance of it, and a
        resource address without a key takes in all its instances. With ``any_key``
        every keyless module step is a wildcard (for config-level dependencies).
        """
        if len(other.module) < len(self.module):
            return False
        last = len(self.module) - 1
        for i, (mine, theirs) in enumerate(zip(self.module, other.module, strict=False)):
            if mine.name != theirs.name:
                return False
            wildcard = mine.key is None and (any_key or (self.type is None and i == last))
            if not wildcard and mine.key != theirs.key:
                return False
        if self.type is None:
            return True
        if len(other.module) != len(self.module):
            return False
        if (self.mode, self.type, self.name) != (other.mode, other.type, other.name):
            return False
        return not self.has_key or self.key == other.key


def format_key(key: Key) -> str:
    if key is None:
        return ""
    if isinstance(key, int):
        return f"[{key}]"
    out = []
    for ch in key:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '["' + "".join(out) + '"]'


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> StateError:
        return StateError(
            f"invalid resource address {self.text!r}: {why} at character {self.pos + 1}",
            where=self.text,
            hint='use the form printed by `terraform state list`, e.g. module.eks.aws_eks_cluster.this["k"]',
        )

    def ident(self) -> str:
        m = _IDENT.match(self.text, self.pos)
        if not m:
            raise self.fail("expected a name")
        self.pos = m.end()
        return m.group(0)

    def expect(self, s: str) -> None:
        if not self.text.startswith(s, self.pos):
            raise self.fail(f"expected {s!r}")
        self.pos += len(s)

    def key(self) -> tuple[Key, bool]:
        if not self.text.startswith("[", self.pos):
            return None, False
        self.pos += 1
        if self.text.startswith('"', self.pos):
            self.pos += 1
            out: list[str] = []
            while True:
                if self.pos >= len(self.text):
                    raise self.fail("unterminated string key")
                ch = self.text[self.pos]
                if ch == '"':
                    self.pos += 1
                    break
                if ch == "\\":
                    nxt = self.text[self.pos + 1 : self.pos + 2]
                    if nxt in _ESCAPES:
                        out.append(_ESCAPES[nxt])
                        self.pos += 2
                    elif nxt == "u" and _HEX4.fullmatch(hex4 := self.text[self.pos + 2 : self.pos + 6]):
                        out.append(chr(int(hex4, 16)))
                        self.pos += 6
                    else:
                        raise self.fail("bad escape in string key")
                    continue
                out.append(ch)
                self.pos += 1
            key: Key = "".join(out)
        else:
            m = re.compile(r"-?[0-9]+").match(self.text, self.pos)
            if not m:
                raise self.fail("expected an integer or a quoted string key")
            self.pos = m.end()
            key = int(m.group(0))
        self.expect("]")
        return key, True

    def parse(self) -> Address:
        modules: list[ModuleStep] = []
        while True:
            if self.text.startswith("module.", self.pos):
                self.pos += len("module.")
                name = self.ident()
                key, _ = self.key()
                modules.append(ModuleStep(name, key))
                if self.pos == len(self.text):
                    return Address(tuple(modules))
                self.expect(".")
                continue
            mode: Mode = "managed"
            if self.text.startswith("data.", self.pos):
                mode = "data"
                self.pos += len("data.")
            rtype = self.ident()
            self.expect(".")
            name = self.ident()
            key, has_key = self.key()
            if self.pos != len(self.text):
                raise self.fail("unexpected text after the resource")
            return Address(tuple(modules), mode, rtype, name, key, has_key)


def parse_address(text: str) -> Address:
    """Parse a resource, instance or module address; StateError if malformed."""
    if not text or text != text.strip():
        raise StateError(
            f"invalid resource address {text!r}: empty or padded with spaces",
            hint="use the form printed by `terraform state list`",
        )
    return _Parser(text).parse()


def parse_module(text: str) -> tuple[ModuleStep, ...]:
    """Parse a state file's ``module`` field ("" for the root module)."""
    if not text:
        return ()
    addr = parse_address(text)
    if not addr.is_module:
        raise StateError(f"invalid module path {text!r}", where=text)
    return addr.module
