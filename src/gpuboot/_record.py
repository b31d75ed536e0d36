"""``Record``: a small immutable value class that costs nothing to define.

``dataclasses`` generates and ``exec``s code for every class it decorates
(about 1 ms each); gpuboot's start-up path defines a dozen value types, so
they derive from ``Record`` instead: ``__slots__``, an explicit ``__init__``,
equality, hashing and ``repr`` over every attribute, and pickling/copying
(a Ray task or a process pool can return them).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Tuple, TypeVar

    _R = TypeVar("_R", bound="Record")

__all__ = ["Record"]


def _rebuild(cls: type, state: Tuple[Tuple[str, Any], ...]) -> Any:
    """Unpickle/copy helper: a ``cls`` with ``state`` set, ``__init__`` not run."""
    obj: Any = object.__new__(cls)
    for name, value in state:
        object.__setattr__(obj, name, value)
    return obj


def _frozen(value: Any) -> Any:
    """``value`` made hashable for ``__hash__``: mappings become sorted item
    tuples, lists tuples, sets frozensets (``Variant.wheels``,
    ``LibrarySpec.variants``)."""
    if isinstance(value, dict):
        return tuple(sorted(((k, _frozen(v)) for k, v in value.items()), key=repr))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, set):
        return frozenset(_frozen(v) for v in value)
    return value


class Record:
    """Base of gpuboot's value types: immutable after ``__init__``.

    A subclass lists its attributes in ``__slots__`` and sets them in
    ``__init__`` with ``self._set(...)``.  ``==``, ``hash`` and ``repr`` cover
    every slot (``_fields``, gathered once per class) except those named in
    ``_not_values``: attributes that are services rather than values (a lazy
    lookup whose answer is a function of the other fields).  Pickle, ``copy``
    and ``deepcopy`` rebuild the same value without running ``__init__``;
    ``_pickle_state`` lets a subclass turn a service into a value first.
    """

    __slots__ = ()
    _fields: Tuple[str, ...] = ()
    _not_values: Tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        slots: list[str] = []
        for klass in reversed(cls.__mro__):
            own = klass.__dict__.get("__slots__", ())
            for s in (own,) if isinstance(own, str) else own:
                if s not in slots:
                    slots.append(s)
        cls._all_slots = tuple(slots)  # type: ignore[attr-defined]
        cls._fields = tuple(s for s in slots if s not in cls._not_values)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _set(self, **values: Any) -> None:
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def _replace(self: _R, **changes: Any) -> _R:
        """A copy with ``changes`` applied (``dataclasses.replace`` for Records).

        Raises:
            TypeError: a name that is not one of this type's attributes.
        """
        unknown = set(changes) - set(self._all_slots)  # type: ignore[attr-defined]
        if unknown:
            raise TypeError(f"{type(self).__name__} has no attribute(s) {', '.join(sorted(unknown))}")
        state = Record._pickle_state(self)  # raw values (a subclass may resolve services when pickling)
        state.update(changes)
        return _rebuild(type(self), tuple(state.items()))  # type: ignore[no-any-return]

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._fields)

    def _pickle_state(self) -> Dict[str, Any]:
        return {s: getattr(self, s) for s in self._all_slots if hasattr(self, s)}  # type: ignore[attr-defined]

    def __reduce__(self) -> Tuple[Callable[..., Any], Tuple[Any, ...]]:
        return _rebuild, (type(self), tuple(self._pickle_state().items()))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(_frozen(self._values()))

    def __repr__(self) -> str:
        body = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({body})"
