"""The Calculator tool: exact arithmetic on one expression, parsed and never executed.

What it does: tokenises the input, parses it with recursive descent into a small tree,
and evaluates the tree with `fractions.Fraction`, so `0.1+0.2` is exactly 0.3 and
`1/3*3` is exactly 1. It knows + - * / (also × ÷ and the unicode minus −), parentheses,
unary minus and plus, decimals (`.5`, `3.`, `1,234.5`), powers with `^` or `**`, postfix
percentages (`50%` is 0.5) and an optional trailing `=`. Results are canonical text:
integers without decimals, anything else rounded half away from zero to at most six
decimals with trailing zeros stripped.

What it does not do: no variables, functions (sqrt, sin), scientific notation (`1e5`),
implicit multiplication (`2(3)`), or calculator-app percentages (`200+10%` is 200.1, not
220). Powers take whole exponents only. Every value is kept below 1e100 in magnitude and
inputs are limited in length and nesting, so no input can make it slow or eat memory.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from minsky.tools.base import Tool, ToolError

MAX_LENGTH = 200  # characters; model-written expressions are far shorter
MAX_DEPTH = 50  # nested parentheses or powers; bounds the parser's recursion
MAX_EXPONENT = 64
LIMIT = Fraction(10) ** 100  # every value, literal or computed, stays below this
MAX_POWER_BITS = 4096  # bound on the size of a power's exact result before computing it
DECIMALS = 6

# Thousands groups only when every group after the first has exactly three digits and is
# not followed by more digits, so "1,234" is 1234 while "1,23" and "1,2345" are errors
# rather than silently misread. ASCII digits only: `\d` would admit other scripts' digits.
_NUMBER = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]*)?|\.[0-9]+")
_SYMBOLS = {
    "**": "^",
    "^": "^",
    "+": "+",
    "-": "-",
    "\u2212": "-",  # − unicode minus
    "*": "*",
    "\u00d7": "*",  # ×
    "/": "/",
    "\u00f7": "/",  # ÷
    "%": "%",
    "(": "(",
    ")": ")",
}


@dataclass(frozen=True)
class Token:
    kind: str  # "num", or the canonical operator symbol
    text: str  # as written, for error messages
    pos: int  # 1-based column in the input
    value: Fraction = Fraction(0)


@dataclass(frozen=True)
class Num:
    value: Fraction


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "+"
    operand: Node


@dataclass(frozen=True)
class Percent:
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str  # "+", "-", "*", "/" or "^"
    left: Node
    right: Node


Node = Num | Unary | Percent | Binary


def _number(text: str) -> Fraction:
    """The exact value of a literal matched by _NUMBER (commas already valid groups)."""
    whole, _, frac = text.replace(",", "").partition(".")
    return Fraction(int(whole or "0") * 10 ** len(frac) + int(frac or "0"), 10 ** len(frac))


def tokenize(expr: str) -> list[Token]:
    """Split an expression into tokens; an unknown character is a ToolError."""
    tokens: list[Token] = []
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch.isspace():
            i += 1
            continue
        match = _NUMBER.match(expr, i)
        if match:
            value = _number(match.group())
            if value >= LIMIT:
                raise ToolError("number too large")
            tokens.append(Token("num", match.group(), i + 1, value))
            i = match.end()
            continue
        symbol = expr[i : i + 2] if expr.startswith("**", i) else ch
        if symbol not in _SYMBOLS:
            raise ToolError(f"unexpected character {ch!r} at {i + 1}")
        tokens.append(Token(_SYMBOLS[symbol], symbol, i + 1))
        i += len(symbol)
    return tokens


class _Parser:
    """Recursive descent over the grammar, loosest binding first:

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := ("+" | "-")* power           so -2^2 is -(2^2), as in written maths
    power   := postfix ("^" unary)?         right-associative: 2^3^2 is 2^9
    postfix := primary "%"*
    primary := number | "(" expr ")"
    """

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def at(self, *kinds: str) -> bool:
        token = self.peek()
        return token is not None and token.kind in kinds

    def parse(self) -> Node:
        node = self.expr()
        token = self.peek()
        if token is not None:
            if token.kind == ")":
                raise ToolError("unbalanced parentheses")
            raise ToolError(f"unexpected {token.text!r} at {token.pos}")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.at("+", "-"):
            node = Binary(self.take().kind, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.at("*", "/"):
            node = Binary(self.take().kind, node, self.unary())
        return node

    def unary(self) -> Node:
        # A loop, not recursion: a long run of signs must not deepen the stack.
        signs: list[str] = []
        while self.at("+", "-"):
            signs.append(self.take().kind)
        node = self.power()
        for sign in reversed(signs):
            node = Unary(sign, node)
        return node

    def power(self) -> Node:
        base = self.postfix()
        if not self.at("^"):
            return base
        self.take()
        self.enter()
        exponent = self.unary()
        self.depth -= 1
        return Binary("^", base, exponent)

    def postfix(self) -> Node:
        node = self.primary()
        while self.at("%"):
            self.take()
            node = Percent(node)
        return node

    def primary(self) -> Node:
        token = self.peek()
        if token is None:
            raise ToolError("incomplete expression")
        if token.kind == "num":
            self.take()
            return Num(token.value)
        if token.kind == "(":
            self.take()
            self.enter()
            node = self.expr()
            if not self.at(")"):
                if self.peek() is None:
                    raise ToolError("unbalanced parentheses")
                token = self.take()
                raise ToolError(f"unexpected {token.text!r} at {token.pos}")
            self.take()
            self.depth -= 1
            return node
        raise ToolError(f"unexpected {token.text!r} at {token.pos}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ToolError("too deeply nested")


def parse(expr: str) -> Node:
    """Parse an expression into a tree; a ToolError says what is wrong with it."""
    if len(expr) > MAX_LENGTH:
        raise ToolError(f"expression too long (over {MAX_LENGTH} characters)")
    text = expr.rstrip()  # not lstrip: error columns refer to the input as given
    if text.endswith("="):  # "3+4=" is how people write a sum they want finished
        text = text[:-1]
    tokens = tokenize(text)
    if not tokens:
        raise ToolError("empty expression")
    depth = 0
    for token in tokens:  # checked first so "(1+2" says what is really wrong
        depth += {"(": 1, ")": -1}.get(token.kind, 0)
        if depth < 0:
            break
    if depth != 0:
        raise ToolError("unbalanced parentheses")
    return _Parser(tokens).parse()


def _checked(value: Fraction) -> Fraction:
    if abs(value) >= LIMIT:
        raise ToolError("number too large")
    return value


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise ToolError("exponent must be a whole number")
    n = int(exponent)
    if abs(n) > MAX_EXPONENT:
        raise ToolError(f"exponent too large (at most {MAX_EXPONENT})")
    if base == 0:
        if n < 0:
            raise ToolError("division by zero")
        return Fraction(1) if n == 0 else Fraction(0)
    # Estimate before computing: an exact power of a fine-grained fraction can have
    # thousands of digits even when its value is ordinary.
    bits = max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(n)
    if bits > MAX_POWER_BITS:
        magnitude = (math.log10(abs(base.numerator)) - math.log10(base.denominator)) * n
        raise ToolError("number too large" if magnitude >= 0 else "number too small")
    return _checked(base**n)


def evaluate(node: Node) -> Fraction:
    """The exact value of a parsed expression."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Unary):
        value = evaluate(node.operand)
        return -value if node.op == "-" else value
    if isinstance(node, Percent):
        return evaluate(node.operand) / 100
    left, right = evaluate(node.left), evaluate(node.right)
    if node.op == "+":
        return _checked(left + right)
    if node.op == "-":
        return _checked(left - right)
    if node.op == "*":
        return _checked(left * right)
    if node.op == "/":
        if right == 0:
            raise ToolError("division by zero")
        return _checked(left / right)
    return _power(left, right)


def format_number(value: Fraction, decimals: int = DECIMALS) -> str:
    """Canonical text: "29", "0.285714", "-1.5"; rounds half away from zero; never "-0"."""
    scale = 10**decimals
    scaled = abs(value) * scale
    units = scaled.numerator // scaled.denominator
    if scaled - units >= Fraction(1, 2):
        units += 1
    whole, frac = divmod(units, scale)
    text = str(whole)
    if frac:
        text += "." + str(frac).rjust(decimals, "0").rstrip("0")
    return "-" + text if value < 0 and units else text


def calculate(expr: str) -> str:
    """Evaluate an arithmetic expression exactly; ToolError for anything else."""
    return format_number(evaluate(parse(expr)))


CALCULATOR = Tool(
    "Calculator",
    "four operations, parentheses, decimals, powers",
    calculate,
    examples=(("400/1400", "0.285714"), ("(3+5)*12", "96")),
    # Numbered steps, one call each, the way the model writes unaided: a two-step demo
    # taught a 0.5B model to stop after its first call (benchmarks/calc_demo.py).
    demo=("Tom buys 3 boxes of 12 eggs. He breaks 6 of them and gives half of the rest to "
          "his sister. How many eggs does Tom keep?",
          "Let's solve it step by step.\n"
          "1. Tom buys 3 boxes of 12 eggs: [Calculator(3*12)->36] 36 eggs.\n"
          "2. He breaks 6 of the 36, so [Calculator(36-6)->30] 30 eggs are left.\n"
          "3. He gives half of the 30 to his sister and keeps the other half: "
          "[Calculator(30/2)->15] 15 eggs.\n"
          "The answer is 15."),
)
