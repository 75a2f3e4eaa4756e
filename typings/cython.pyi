# What type checkers see of Cython's pure-Python mode, as hardy's policies use
# it (hardy/policies): the C types are the Python types they run as when the
# policies are not compiled, and the decorators change nothing.
import builtins
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])
_C = TypeVar("_C", bound=type)
_T = TypeVar("_T")

compiled: builtins.bool

int: TypeAlias = builtins.int
uint: TypeAlias = builtins.int
long: TypeAlias = builtins.int
longlong: TypeAlias = builtins.int
char: TypeAlias = builtins.int
double: TypeAlias = builtins.float
bint: TypeAlias = builtins.bool
void: TypeAlias = None

def cclass(cls: _C) -> _C: ...
def cfunc(func: _F) -> _F: ...
def ccall(func: _F) -> _F: ...
def inline(func: _F) -> _F: ...
def final(obj: _F) -> _F: ...
def exceptval(*args: object, check: builtins.bool = ...) -> Callable[[_F], _F]: ...
def declare(kind: object, value: _T) -> _T: ...
def cast(kind: Callable[..., _T] | type[_T], value: object) -> _T: ...
