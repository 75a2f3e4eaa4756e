"""The compiled core's stub, ``hardy/_core_c.pyi``, against each core.

Type checkers read the stub for ``hardy.CircuitBreaker``, ``hardy.RetryConfig``
and the core's functions whichever core runs, so a name, a base, a member or
a parameter it gets wrong is what users' checkers see. The stub is parsed
with :mod:`ast`; the core under test (the ``core`` fixture: both) is read
with :mod:`inspect`. The compiled core's ``__init__`` and slot methods have
no introspectable signature: their parameter names come from the signature
Cython embeds in the docstring (``embedsignature``), which places the ``*``
unreliably, so for those only the names and their order are compared; every
other parameter is compared by name and kind.
"""

from __future__ import annotations

import ast
import inspect
import re
import types
from pathlib import Path
from typing import Any

import pytest

import hardy
from hardy import _core

STUB = Path(hardy.__file__).with_name("_core_c.pyi")

# Dunders a core class defines that change nothing a type checker sees of it
# (object has them all); any other dunder it defines must be in the stub.
_UNTYPED_DUNDERS = frozenset(
    {"__doc__", "__module__", "__new__", "__reduce__", "__repr__", "__slots__", "__weakref__", "__dict__"}
    | {"__pyx_vtable__"}  # Cython's table of a class's C methods
    | {"__firstlineno__", "__static_attributes__"}  # 3.13+: where a class is defined, what it assigns
)
_PROPERTY_TYPES = (property, types.GetSetDescriptorType, types.MemberDescriptorType)
_KINDS = {
    "posonly": inspect.Parameter.POSITIONAL_ONLY.name,
    "args": inspect.Parameter.POSITIONAL_OR_KEYWORD.name,
    "vararg": inspect.Parameter.VAR_POSITIONAL.name,
    "kwonly": inspect.Parameter.KEYWORD_ONLY.name,
    "kwarg": inspect.Parameter.VAR_KEYWORD.name,
}

# (name, kind) pairs, the kind as inspect names it ("KEYWORD_ONLY", ...).
Params = list[tuple[str, str]]


def _params(args: ast.arguments, *, method: bool) -> Params:
    found: Params = [(a.arg, _KINDS["posonly"]) for a in args.posonlyargs]
    found += [(a.arg, _KINDS["args"]) for a in args.args]
    if args.vararg is not None:
        found.append((args.vararg.arg, _KINDS["vararg"]))
    found += [(a.arg, _KINDS["kwonly"]) for a in args.kwonlyargs]
    if args.kwarg is not None:
        found.append((args.kwarg.arg, _KINDS["kwarg"]))
    return found[1:] if method else found


def _is_property(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)


class StubClass:
    def __init__(self, node: ast.ClassDef) -> None:
        self.bases = [ast.unparse(base) for base in node.bases]
        self.properties: set[str] = set()
        self.methods: dict[str, Params] = {}
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if _is_property(item):
                    self.properties.add(item.name)
                else:
                    # Overloads share one runtime signature: the last one names it.
                    self.methods[item.name] = _params(item.args, method=True)


class Stub:
    def __init__(self, source: str) -> None:
        self.all: list[str] = []
        self.variables: set[str] = set()
        self.functions: dict[str, Params] = {}
        self.classes: dict[str, StubClass] = {}
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                self.all = list(ast.literal_eval(node.value))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.variables.add(node.target.id)
            elif isinstance(node, ast.FunctionDef):
                self.functions[node.name] = _params(node.args, method=False)
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = StubClass(node)

    def public_names(self) -> set[str]:
        return {n for n in (*self.variables, *self.functions, *self.classes) if not n.startswith("_")}


def _embedded_names(doc: str | None, qualname: str) -> list[str] | None:
    """The parameter names of the signature Cython embedded as ``qualname(...)``, if any."""
    first = (doc or "").split("\n", 1)[0]
    if not first.startswith(qualname + "("):
        return None
    # Only names are compared: drop the bare ``*`` Cython may put last.
    embedded = re.sub(r",\s*\*\s*\)", ")", first[len(qualname) :])
    tree = ast.parse(f"def f{embedded}: pass")
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    return [name for name, _ in _params(func.args, method=False)]


def _runtime_params(owner: object, name: str, func: Any, *, method: bool) -> tuple[list[str], Params | None]:
    """``func``'s parameter names, and names with kinds when the core gives a real signature."""
    signature: inspect.Signature | None
    try:
        signature = inspect.signature(func)
    except ValueError:
        signature = None
    slot = isinstance(func, (types.WrapperDescriptorType, types.MethodWrapperType))
    if signature is not None and not slot:
        params = [(p.name, p.kind.name) for p in signature.parameters.values()]
        params = params[1:] if method else params
        return [n for n, _ in params], params
    # A slot of a compiled class: __init__'s signature is the class docstring's
    # first line, another slot's its own docstring's.
    if name == "__init__":
        assert isinstance(owner, type)
        names = _embedded_names(owner.__doc__, owner.__name__)
    else:
        names = _embedded_names(func.__doc__, f"{getattr(owner, '__name__', '')}.{name}")
    if names is None:
        raise AssertionError(f"{owner!r}.{name} has no signature to compare")
    return (names[1:] if method and names[:1] == ["self"] else names), None


def problems(stub: Stub, module: types.ModuleType) -> list[str]:
    """Every difference between ``stub`` and the core ``module``, in words."""
    found: list[str] = []
    core_all = getattr(module, "__all__", None)
    if core_all is not None and sorted(core_all) != sorted(stub.all):
        found.append(f"__all__: stub {sorted(stub.all)}, core {sorted(core_all)}")
    base_names = {base for cls in stub.classes.values() for base in cls.bases}
    for name in sorted(stub.public_names()):
        if name not in stub.all and name not in base_names:
            found.append(f"{name}: public in the stub but neither in __all__ nor a base class")
    for name in stub.all:
        if not hasattr(module, name):
            found.append(f"{name}: in the stub's __all__, missing from the core")
    for name in sorted(stub.variables):
        if name in stub.all and hasattr(module, name) and callable(getattr(module, name)):
            found.append(f"{name}: a variable in the stub, callable in the core")
    for name, params in sorted(stub.functions.items()):
        if hasattr(module, name):
            found += _compare(name, params, module, name, getattr(module, name), method=False)
    for name, cls in sorted(stub.classes.items()):
        if name in stub.all and hasattr(module, name):
            found += _compare_class(stub, name, cls, getattr(module, name))
    return found


def _compare(label: str, stub_params: Params, owner: object, name: str, func: Any, *, method: bool) -> list[str]:
    if not callable(func):
        return [f"{label}: a function in the stub, not callable in the core"]
    names, params = _runtime_params(owner, name, func, method=method)
    if params is not None and params != stub_params:
        return [f"{label}: stub {_show(stub_params)}, core {_show(params)}"]
    if names != [n for n, _ in stub_params]:
        return [f"{label}: stub parameters {[n for n, _ in stub_params]}, core {names}"]
    return []


def _show(params: Params) -> str:
    return "(" + ", ".join(f"{name}: {kind.lower()}" for name, kind in params) + ")"


def _compare_class(stub: Stub, name: str, cls: StubClass, runtime: type) -> list[str]:
    found: list[str] = []
    runtime_bases = [base.__name__ for base in runtime.__bases__]
    if runtime_bases != cls.bases:
        found.append(f"{name}: stub bases {cls.bases}, core {runtime_bases}")
    # Members of the stub's bases count as the class's own (they are private here).
    stub_members = set(cls.properties) | set(cls.methods)
    for base in cls.bases:
        if base in stub.classes:
            stub_members |= stub.classes[base].properties | set(stub.classes[base].methods)
    public = {n for n in dir(runtime) if not n.startswith("_")}
    dunders = {n for n in vars(runtime) if n.startswith("__") and n not in _UNTYPED_DUNDERS}
    for member in sorted((public | dunders) - stub_members):
        found.append(f"{name}.{member}: in the core, missing from the stub")
    for member in sorted(cls.properties):
        attr = inspect.getattr_static(runtime, member, None)
        if not isinstance(attr, _PROPERTY_TYPES):
            found.append(f"{name}.{member}: a property in the stub, {type(attr).__name__} in the core")
    for member, params in sorted(cls.methods.items()):
        attr = inspect.getattr_static(runtime, member, None)
        if attr is None:
            found.append(f"{name}.{member}: in the stub, missing from the core")
        elif isinstance(attr, _PROPERTY_TYPES):
            found.append(f"{name}.{member}: a method in the stub, a property in the core")
        else:
            found += _compare(f"{name}.{member}", params, runtime, member, getattr(runtime, member), method=True)
    return found


def test_the_stub_matches_the_core(core: types.ModuleType) -> None:
    assert problems(Stub(STUB.read_text()), core) == []


def test_implementation_is_a_str_on_the_core(core: types.ModuleType) -> None:
    assert "IMPLEMENTATION" in Stub(STUB.read_text()).variables
    assert isinstance(core.IMPLEMENTATION, str)


# The check itself must fail on a stub that is wrong: each edit below makes
# the real stub wrong in one way, and the problem must be reported.
_MISTAKES = [
    pytest.param(
        "    def reset(self) -> None:",
        "    def reset(self, hard: bool = False) -> None:",
        "CircuitBreaker.reset",
        id="extra-parameter",
    ),
    pytest.param(
        "    def record_failure(self, exception: BaseException) -> None:",
        "    def record_failure(self, exc: BaseException) -> None:",
        "CircuitBreaker.record_failure",
        id="renamed-parameter",
    ),
    pytest.param(
        "    def get_delay(self, attempt: int, previous_delay: float | None = None) -> float:",
        "    def get_delays(self, attempt: int, previous_delay: float | None = None) -> float:",
        "RetryConfig.get_delay",
        id="renamed-method",
    ),
    pytest.param(
        "    @property\n    def is_open(self) -> bool:",
        "    def is_open(self) -> bool:",
        "CircuitBreaker.is_open",
        id="property-as-method",
    ),
    pytest.param(
        "class CircuitBreaker(BreakerState):",
        "class CircuitBreaker:",
        "CircuitBreaker: stub bases",
        id="missing-base",
    ),
    pytest.param(
        "def timed(\n    func: Callable[P, R], seconds: float,",
        "def timed(\n    func: Callable[P, R], timeout: float,",
        "timed",
        id="renamed-function-parameter",
    ),
    pytest.param(
        '__all__ = ["IMPLEMENTATION",',
        '__all__ = ["IMPLEMENTATION", "retry_forever",',
        "retry_forever",
        id="unknown-name",
    ),
]


@pytest.mark.parametrize(("old", "new", "reported"), _MISTAKES)
def test_a_wrong_stub_is_reported(core: types.ModuleType, old: str, new: str, reported: str) -> None:
    source = STUB.read_text()
    assert source.count(old) == 1, f"the stub changed: {old!r} is not in it once"
    found = problems(Stub(source.replace(old, new)), core)
    assert any(p.startswith(reported) for p in found), found


def test_a_wrong_parameter_kind_is_reported() -> None:
    # Kinds are compared where the core has a real signature: always in the
    # twin (the compiled __init__ only has the names Cython embeds), whose
    # kinds test_parity keeps equal to the compiled core's.
    source = STUB.read_text()
    old = "        *,\n        clock: Callable[[], float] = ...,\n        store:"
    assert source.count(old) == 1, "the stub changed"
    moved = source.replace(old, "        clock: Callable[[], float] = ...,\n        *,\n        store:")
    found = problems(Stub(moved), _core.load("py"))
    assert any(p.startswith("CircuitBreaker.__init__: stub (name: positional_or_keyword") for p in found), found


def test_a_member_missing_from_the_stub_is_reported(core: types.ModuleType) -> None:
    source = STUB.read_text()
    old = "    def reset(self) -> None:\n"
    start = source.index(old)
    end = source.index("\n    def ", start + 1)
    found = problems(Stub(source[:start] + source[end + 1 :]), core)
    assert "CircuitBreaker.reset: in the core, missing from the stub" in found
