"""The value types of a consumer row: ``Consumer`` and what it carries (``Rule``, ``ArchFix``, ``Pairing``,
``Quirk``, ``Index``), and ``Need``, what one installed consumer needs.  Values only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence, Set, Tuple

from ..base.record import Record

__all__ = ["Need", "Build", "Rule", "ArchFix", "Pairing", "Quirk", "Index", "Consumer"]


class Need(Record):
    """Libraries one installed consumer needs.

    Attributes:
        consumer: its distribution name (canonical).
        version: its installed version.
        cuda_major: the CUDA major its binaries were built against.
        libraries: catalog names it loads (required).
        optional: catalog names it uses when present.
        cudnn_major: the cuDNN major, where it uses cuDNN.
        source: where the fact comes from.
    """

    consumer: str
    version: str
    cuda_major: int
    libraries: Tuple[str, ...]
    optional: Tuple[str, ...] = ()
    cudnn_major: Optional[int] = None
    source: str = ""


class Build(Record):
    """The CUDA build a consumer's metadata names (a ``Reader``'s answer): its CUDA and cuDNN majors and the
    line that says so."""

    cuda_major: int
    cudnn_major: Optional[int] = None
    source: str = ""


if TYPE_CHECKING:  # the two type aliases (typing's subscriptions cost an import of the driver path ~0.1 ms)
    from typing import Callable, Literal

    #: How a consumer's build is read from ``(version, Requires-Dist)`` when its version alone does not tell.
    Reader = Callable[[str, Sequence[str]], Optional[Build]]
    #: The precision of ``DeviceChoice`` a consumer's code decides.
    Chooses = Literal["", "torch_dtype", "compute_type"]


class Rule(Record):
    """One row of a consumer's compatibility table: the versions ``specifier`` (PEP 440) names need these."""

    specifier: str
    cuda_major: int
    libraries: Tuple[str, ...]
    optional: Tuple[str, ...] = ()
    cudnn_major: Optional[int] = None
    source: str = ""


class ArchFix(Record):
    """A known way to a build of the consumer that carries code for GPUs its newest builds dropped.

    Attributes:
        cc_from: the lowest compute capability it serves (inclusive).
        cc_below: the compute capability it serves up to (exclusive).
        fix: the instruction, exact.
        requirement: the pip requirement that is the whole fix (doctor runs it), or ``""`` (an instruction).
        index: the tag of the row's wheel index it installs from (``Consumer.indexes``), or ``""``.
        source: the wheel or release note it was read off.
    """

    cc_from: Tuple[int, int]
    cc_below: Tuple[int, int]
    fix: str
    requirement: str = ""
    index: str = ""
    source: str = ""


class Pairing(Record):
    """Versions that work together when a library fix for this consumer would break another one's pin.

    When installing ``library`` at cuDNN/CUDA ``major`` for this consumer would break ``pinned_by`` (whose
    version matches ``pinned_spec`` and pins another major), the fix is a consumer change instead:
    ``consumer_fix``, or ``other_fix`` for the other side.
    """

    library: str
    major: int
    pinned_by: str
    pinned_spec: str
    consumer_fix: str
    other_fix: str
    source: str



class Quirk(Record):
    """A documented breakage of some builds of the consumer on some GPUs: doctor reports it (with the way out)
    and the precision rules never choose a compute type it breaks.

    Attributes:
        id: doctor's finding id (also in ``doctor-schema.json``).
        severity: ``"warning"`` or ``"problem"``.
        what: what breaks, in a few words.
        source: where the fact comes from.
        versions: the affected versions, a PEP 440 specifier (``""``: every version).
        cuda_from: only builds for this CUDA major or a newer one (``None``: any build).
        cc_majors: on GPUs of these compute capability majors.
        drops: the compute types that fail there.
        fix: the pip requirement that fixes it, or ``""``.
        instead: what to do when no install fixes it.
    """

    id: str
    severity: Literal["warning", "problem"]
    what: str
    source: str
    versions: str = ""
    cuda_from: Optional[int] = None
    cc_majors: Tuple[int, ...] = ()
    drops: Tuple[str, ...] = ()
    fix: str = ""
    instead: str = ""

    def applies(self, version: str, cuda_major: Optional[int], cc: Tuple[int, int]) -> bool:
        """The build ``version`` (for CUDA ``cuda_major``) on a GPU of compute capability ``cc`` is affected."""
        from packaging.specifiers import SpecifierSet
        from packaging.version import InvalidVersion, Version

        if self.cc_majors and cc[0] not in self.cc_majors:
            return False
        if self.cuda_from is not None and (cuda_major is None or cuda_major < self.cuda_from):
            return False
        if not self.versions:
            return True
        try:
            return SpecifierSet(self.versions).contains(Version(version), prereleases=True)
        except InvalidVersion:
            return False


class Index(Record):
    """One of the consumer's CUDA wheel indexes: its tag, the CUDA version its builds need, and the versions it
    serves (a PEP 440 specifier)."""

    tag: str
    cuda: Tuple[int, int]
    serves: str


class Consumer(Record):
    """Everything gpuboot knows about one package that loads NVIDIA libraries: one row of ``table.CONSUMER_TABLE``.

    Attributes:
        name: its distribution name, canonical (``"onnxruntime-gpu"``).
        for_name: its name for ``gpuboot doctor --for`` and ``diagnose(consumer=)``.
        imports: its top-level import names (``gpuboot hook`` runs ``ensure()`` before the first of them).
        rules: version ranges -> CUDA/cuDNN majors and libraries, each sourced, when its version tells.
        reads: how its build is read from ``(version, Requires-Dist)`` when its metadata tells instead.
        cuda_major: the CUDA major its distribution name says (``cupy-cuda12x``), when nothing else does.
        libraries: catalog names it loads, when no rule says (a build read from its metadata or binaries).
        optional: catalog names it uses when present, when no rule says.
        binaries: ``glob`` patterns, relative to the directory holding its ``.dist-info``, of the files that
            carry its GPU code and name the CUDA libraries they link (``consumers/binaries.py``): the majors
            they link are the ones it needs, whatever its version or name says.
        plain_load_on_windows: loads its CUDA DLLs with plain ``LoadLibraryA`` (searches ``PATH``, not
            ``os.add_dll_directory``): doctor checks ``PATH`` for it on Windows.
        build_arch: how to build it with native code for one architecture (``{cc}``: ``9.0``, ``{arch}``: ``90``).
        arch_fixes: known builds that carry architectures its newest builds dropped.
        pairings: versions that work together with another consumer's library pins.
        quirks: documented breakages of some of its builds on some GPUs.
        upgrade: a build for an older CUDA major than the installed wheels is fixed by upgrading to the
            versions of its newest rule (``rules[-1]``).
        chooses: the precision of ``select_device``'s ``DeviceChoice`` it decides (``"torch_dtype"``,
            ``"compute_type"``): where its GPU code cannot run, that precision is a CPU one.
        placement: a GPU its GPU code cannot run on is not chosen by ``select_device``.
        compute_types: asks the installed package which compute types CUDA device ``i`` supports (it imports
            the package), or ``None``.
        apple_gpu: asks the installed package whether it can run on Apple's GPU (MPS; it imports the package,
            on macOS only), or ``None``.
        indexes: its CUDA wheel indexes (PyTorch's), where its CPU-only build is replaced from.
        index_url: their URL, ``{tag}`` for an index's tag.
    """

    name: str
    for_name: str
    imports: Tuple[str, ...]
    rules: Tuple[Rule, ...] = ()
    reads: Optional[Reader] = None
    cuda_major: Optional[int] = None
    libraries: Tuple[str, ...] = ()
    optional: Tuple[str, ...] = ()
    binaries: Tuple[str, ...] = ()
    plain_load_on_windows: bool = False
    build_arch: str = ""
    arch_fixes: Tuple[ArchFix, ...] = ()
    pairings: Tuple[Pairing, ...] = ()
    quirks: Tuple[Quirk, ...] = ()
    upgrade: bool = False
    chooses: Chooses = ""
    placement: bool = False
    compute_types: Optional[Callable[[int], Optional[Set[str]]]] = None
    apple_gpu: Optional[Callable[[], bool]] = None
    indexes: Tuple[Index, ...] = ()
    index_url: str = ""

    def newest(self) -> Optional[Rule]:
        """The rule of its newest versions (the last), or ``None``."""
        return self.rules[-1] if self.rules else None

    def requirement_of(self, rule: Rule) -> str:
        """The pip requirement of the versions ``rule`` names (``"ctranslate2>=4.6.3"``)."""
        return f"{self.name}{rule.specifier}"

    def first_without(self, library: str) -> Optional[Rule]:
        """The oldest rule whose versions no longer require ``library`` after earlier ones did (cuDNN made
        optional), or ``None``."""
        required = False
        for rule in self.rules:
            if library in rule.libraries:
                required = True
            elif required:
                return rule
        return None

    def arch_fix(self, cc: Tuple[int, int]) -> Optional[ArchFix]:
        """The known build for a GPU of compute capability ``cc``, or ``None``."""
        return next((f for f in self.arch_fixes if f.cc_from <= cc < f.cc_below), None)

    def index_of(self, tag: str) -> Optional[str]:
        """The URL of its index ``tag``, or ``None`` for a tag it has none of."""
        return self.index_url.format(tag=tag) if any(i.tag == tag for i in self.indexes) else None
