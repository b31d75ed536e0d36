"""An unmodified ``tensorflow[and-cuda]`` finding its GPU libraries, on a host whose driver answers (stub
``libcuda``/NVML compiled against NVIDIA's headers, in a private mount namespace: tests/driver_host.py).

TensorFlow looks for ``libcudart.so.12``, ``libcudnn.so.9`` and the rest with ``dlopen`` by name, and its own
libraries carry a RUNPATH into ``$ORIGIN/../nvidia/<lib>/lib``.  Three layouts of the same real wheels:

* as pip installs them (the wheels beside TensorFlow): today's release finds them itself -- gpuboot is not needed;
* the NVIDIA wheels in another directory on ``sys.path`` (``PYTHONPATH``, ``pip install --target``, a second site
  directory: the layout of tensorflow #63362's reports): TensorFlow alone cannot load them ("Could not load dynamic
  library 'libcudnn.so.9'", "Error loading CUDA libraries");
* the same, with ``gpuboot hook install``: the unmodified program finds every one, from that directory.

The split layout is made with bind mounts inside the namespace: nothing is copied, and the environment outside is
untouched.  TensorFlow goes on to fail later in device set-up, where the stub driver stops answering (it has no GPU
behind it); what is checked is what its loader logged and what the process had mapped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from driver_host import namespaces_available, run, stub_cuda, stub_nvml
from helpers import require_real

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # the whole tier (pyproject's markers)

TF_ENV = Path(os.environ.get("GPUBOOT_TF_ENV", Path.home() / ".cache" / "gpuboot-tests" / "tensorflow-and-cuda"))


def tf_env() -> Path:
    """A venv with ``tensorflow[and-cuda]`` as the index serves it today (about 3 GB of wheels, made once)."""
    python = TF_ENV / "bin" / "python"
    if (TF_ENV / "ready").exists():
        return python
    if os.environ.get("GPUBOOT_REQUIRE_REAL") != "1" and not os.environ.get("GPUBOOT_TF_ENV"):
        pytest.skip("the TensorFlow environment is built under CI (GPUBOOT_REQUIRE_REAL=1) or GPUBOOT_TF_ENV")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(TF_ENV)], check=True, capture_output=True)
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "tensorflow[and-cuda]", "packaging", "nvidia-ml-py", "platformdirs"], capture_output=True,
                          text=True, timeout=2400)
    if proc.returncode != 0:
        require_real(f"tensorflow[and-cuda] ({proc.stderr.strip()[-400:]})")
    (TF_ENV / "ready").write_text("")
    return python


#: The scenario, run as root in the namespace: make the layout, run the unmodified program, report.
SCENARIO = """
import json, os, subprocess, sys
python, site, split, src, maps = sys.argv[2:7]
layout, hook = sys.argv[7], sys.argv[8]
if layout == "split":
    os.makedirs(os.path.join(split, "nvidia"), exist_ok=True)
    subprocess.run(["mount", "--bind", os.path.join(site, "nvidia"), os.path.join(split, "nvidia")], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", os.path.join(site, "nvidia")], check=True)
env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0", TF_CPP_VMODULE="dso_loader=2", GPUBOOT_HOOK=hook,
           GPUBOOT_TEST_MAPS=maps, PYTHONPATH=os.pathsep.join([split, src] if layout == "split" else [src]))
program = ("import tensorflow as tf\\ntry:\\n    tf.config.list_physical_devices('GPU')\\n"
           "except Exception as e:\\n    print('stopped:', e)")
proc = subprocess.run([python, "-c", program], capture_output=True, text=True, env=env, timeout=600)
text = open(maps).read() if os.path.exists(maps) else ""
mapped = sorted({l.split(None, 5)[5] for l in text.splitlines() if len(l.split(None, 5)) == 6 and "/nvidia/" in l})
print(json.dumps({"rc": proc.returncode, "log": [l for l in proc.stderr.splitlines() if "dso_loader" in l
                  or "Error loading CUDA" in l or "gpuboot hook" in l], "mapped": mapped, "out": proc.stdout[-500:]}))
"""

MAPS_PTH = ("import os, atexit; os.environ.get('GPUBOOT_TEST_MAPS') and atexit.register(lambda p=os.environ["
            "'GPUBOOT_TEST_MAPS']: open(p, 'w').write(open('/proc/self/maps').read()))\n")


@pytest.fixture(scope="module")
def tensorflow(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    namespaces_available()
    python = tf_env()
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "00-gpuboot-test-maps.pth").write_text(MAPS_PTH)
    tmp = tmp_path_factory.mktemp("tf")
    libs = [stub_cuda(tmp / "cuda"), stub_nvml(tmp / "nvml")]
    out: Dict[str, Any] = {}
    hook = site / "gpuboot-hook.pth"
    try:
        for name, layout, hooked in (("beside", "beside", "0"), ("split", "split", "0"), ("split+hook", "split", "1")):
            if hooked == "1":
                env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
                subprocess.run([str(python), "-m", "gpuboot", "hook", "install", "--site", str(site)], check=True,
                               capture_output=True, env=env)
            run_dir = tmp / name.replace("+", "-")
            out[name] = run(run_dir, libdirs=libs, kernel_module="550.54.14", nodes=["nvidiactl", "nvidia0",
                                                                                     "nvidia-uvm"],
                            code=SCENARIO, args=[str(python), str(site), str(run_dir / "split"), str(ROOT / "src"),
                                                 str(run_dir / "maps"), layout, hooked])
    finally:
        if hook.exists():
            hook.unlink()
    return out


def test_todays_release_finds_its_wheels_beside_it(tensorflow: Dict[str, Any]) -> None:
    beside = tensorflow["beside"]
    assert not [line for line in beside["log"] if "Could not load dynamic library" in line], beside["log"]
    assert not [line for line in beside["log"] if "Error loading CUDA libraries" in line]
    assert any("libcudnn.so.9" in p for p in beside["mapped"])  # found through its own RUNPATH


def test_split_from_its_wheels_it_cannot_load_them(tensorflow: Dict[str, Any]) -> None:
    split = tensorflow["split"]
    assert any("Could not load dynamic library 'libcudnn.so.9'" in line for line in split["log"]), split["log"]
    assert any("Error loading CUDA libraries" in line for line in split["log"])
    assert not [p for p in split["mapped"] if "libcudnn.so.9" in p or "libcudart.so.12" in p]


def test_with_the_hook_the_unmodified_program_finds_them(tensorflow: Dict[str, Any]) -> None:
    hooked = tensorflow["split+hook"]
    assert not [line for line in hooked["log"] if "Could not load dynamic library" in line], hooked["log"]
    assert not [line for line in hooked["log"] if "Error loading CUDA libraries" in line]
    for soname in ("libcudart.so.12", "libcublas.so.12", "libcudnn.so.9", "libcufft.so.11", "libcusolver.so.11",
                   "libcusparse.so.12"):
        found = [p for p in hooked["mapped"] if p.endswith("/" + soname)]
        assert found and "/split/nvidia/" in found[0], (soname, hooked["mapped"])
