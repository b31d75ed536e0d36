"""``Record``: a small immutable value class that costs nothing to define.

``dataclasses`` generates and ``exec``s code for every class it decorates
(about 1 ms each here); gpuboot's start-up path defines a dozen value types, so
they derive from ``Record`` instead: ``__slots__``, an explicit ``__init__``,
and equality, hashing and ``repr`` over ``_fields``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Tuple

__all__ = ["Record"]


class Record:
    """Base of gpuboot's value types: immutable after ``__init__``.

    A subclass lists its attributes in ``__slots__`` and the ones that take
    part in ``==``, ``hash`` and ``repr`` in ``_fields``, and sets them in
    ``__init__`` with ``self._set(...)``.
    """

    __slots__ = ()
    _fields: Tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _set(self, **values: Any) -> None:
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        body = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({body})"
