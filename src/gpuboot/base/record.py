"""``Record``: a small immutable value class whose fields are written once, as annotations.

``dataclasses`` generates and ``exec``s code for every class it decorates
(about 1 ms each); gpuboot's start-up path defines a dozen value types, so
they derive from ``Record`` instead.  A subclass lists its fields once, as
annotations with their defaults::

    class DriverInfo(Record):
        present: bool
        evidence: str = ""

and the metaclass turns them into ``__slots__`` (no ``exec``, no generated
source).  Construction is by keyword only (``DriverInfo(present=True,
evidence="/dev/nvidiactl")``): a missing field without a default, an unknown
name or a positional argument is a ``TypeError``.  ``==``, ``hash`` and
``repr`` cover every field except those named in ``_not_values`` (a lookup
service whose answer is a function of the other fields); instances are
immutable; pickle, ``copy`` and ``deepcopy`` rebuild the same value without
running ``__init__`` (a Ray task or a process pool can return them), and
``_pickle_state`` lets a subclass turn a service into a value first.  Type
checkers read the fields through PEP 681 (``dataclass_transform``).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, ClassVar, Dict, Mapping, Tuple, TypeVar

    from typing_extensions import dataclass_transform

    _R = TypeVar("_R", bound="Record")
else:
    def dataclass_transform(**_kwargs: object) -> object:
        """PEP 681's marker is for type checkers only; at run time it changes nothing."""
        return lambda cls: cls

__all__ = ["Record", "expect"]

_MISSING = object()


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


@dataclass_transform(kw_only_default=True, frozen_default=True)
class _Fields(type):
    """Reads a Record subclass's annotated fields (and their defaults) into ``__slots__``."""

    def __new__(mcs, name: str, bases: Tuple[type, ...], ns: Dict[str, Any], **kwargs: Any) -> _Fields:
        own = [k for k in ns.get("__annotations__", {}) if not k.startswith("_")]
        defaults = {k: ns.pop(k) for k in own if k in ns}
        ns.setdefault("__slots__", tuple(own))
        cls = super().__new__(mcs, name, bases, ns, **kwargs)
        fields: list[str] = []
        merged: Dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            fields += [f for f in getattr(klass, "_own_fields", ()) if f not in fields]
            merged.update(getattr(klass, "_own_defaults", {}))
        fields += [f for f in own if f not in fields]
        merged.update(defaults)
        cls._own_fields = tuple(own)  # type: ignore[attr-defined]
        cls._own_defaults = defaults  # type: ignore[attr-defined]
        cls._all_slots = tuple(fields)  # type: ignore[attr-defined]
        cls._defaults = merged  # type: ignore[attr-defined]
        cls._fields = tuple(f for f in fields if f not in getattr(cls, "_not_values", ()))  # type: ignore[attr-defined]
        return cls


class Record(metaclass=_Fields):
    """Base of gpuboot's value types: fields as annotations, keyword construction, immutable."""

    __slots__ = ()
    _fields: ClassVar[Tuple[str, ...]] = ()
    _all_slots: ClassVar[Tuple[str, ...]] = ()
    _defaults: ClassVar[Mapping[str, Any]] = {}
    _not_values: ClassVar[Tuple[str, ...]] = ()

    def __init__(self, **values: Any) -> None:
        cls = type(self)
        for name in cls._all_slots:
            value = values.pop(name, cls._defaults.get(name, _MISSING))
            if value is _MISSING:
                raise TypeError(f"{cls.__name__}() needs the keyword argument {name!r}")
            object.__setattr__(self, name, value)
        if values:
            raise TypeError(f"{cls.__name__}() has no field(s) {', '.join(sorted(values))}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _replace(self: _R, **changes: Any) -> _R:
        """A copy with ``changes`` applied (``dataclasses.replace`` for Records).

        Raises:
            TypeError: a name that is not one of this type's attributes.
        """
        unknown = set(changes) - set(self._all_slots)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no attribute(s) {', '.join(sorted(unknown))}")
        state = Record._pickle_state(self)  # raw values (a subclass may resolve services when pickling)
        state.update(changes)
        return _rebuild(type(self), tuple(state.items()))  # type: ignore[no-any-return]

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._fields)

    def _pickle_state(self) -> Dict[str, Any]:
        return {s: getattr(self, s) for s in self._all_slots if hasattr(self, s)}

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


def expect(value: Any, kind: type, what: str, where: str) -> None:
    """``value`` is a ``kind``, or ``TypeError`` naming ``what`` it must be and ``where`` such values come from
    (a caller's mistake is one line, not an ``AttributeError`` deep inside)."""
    if not isinstance(value, kind):
        raise TypeError(f"{what} must be a {kind.__name__} ({where}), not {type(value).__name__} {value!r:.60}")
