"""Precision policy: the torch dtype and the CTranslate2 ``compute_type`` for a device, each rule with its source.

torch dtype
    * bfloat16 from CC 8.0 (Ampere): bf16 tensor cores (CUDA C Programming
      Guide, "Arithmetic Instructions" throughput table; NVIDIA A100 whitepaper).
    * float16 from CC 7.0 (Volta tensor cores) and on CC 6.0 / 6.2 (full-rate
      fp16: P100, Jetson TX2).
    * float32 on CC 6.1 (GTX 10xx: fp16 runs at 1/64 of the fp32 rate, same
      throughput table) and older.

CTranslate2 ``compute_type`` (CTranslate2 src/cuda/utils.cc, src/types.cc)
    * int8 needs CC major > 6 or CC == 6.1 (dp4a: so not 6.0 nor 6.2);
      efficient float16 needs fp16 tensor cores, CC >= 7.0; bfloat16 needs
      CC >= 8.0.  ``CT2_CUDA_ALLOW_FP16=1`` (CTranslate2's environment
      variable) allows float16 without tensor cores, and is honoured.
    * Tensor cores are judged by the chip, from the PCI device id NVML
      reports: TU116 and TU117 (GTX 16xx, GTX 1650, T400-T1200, MX450...)
      are CC 7.5 without them.
    * ``auto``: float16 where efficient -- the released Whisper weights are
      float16 (Systran's conversions are saved in float16), so nothing is
      lost -- else int8 (CC 6.1), else float32.
    * ``speed`` / ``memory``: int8_float16 where efficient (CTranslate2's own
      ``auto`` puts it first: int8 weights halve memory vs float16), else
      int8, else float32.
    * ``accuracy``: no int8 quantization: float16 (bfloat16 is not chosen:
      CTranslate2's ``auto`` never picks it and Whisper was trained in fp16),
      else float32.
    * Quirks of a CTranslate2 build are its consumer row's (``Consumer.quirks``:
      CC 12.0 with ctranslate2 < 4.7 fails int8 GEMMs, CTranslate2 #1865): the
      caller passes the compute types they break as ``avoid``.  GTX 16xx
      (TU116/TU117, CC 7.5 without tensor cores) give garbage "!" output in
      float16 (whisper-diarization #327): int8 instead.
    * Reconciled with what the installed CTranslate2 says the GPU supports
      (``supported``: ``Consumer.compute_types``) when the caller asked it.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Literal, Mapping, Optional, Set, Tuple

from .device import Device

__all__ = ["torch_dtype_for", "compute_type_for", "lacks_tensor_cores", "NO_TENSOR_CORE_IDS", "ComputeType",
           "COMPUTE_TYPES", "Ct2Device", "TorchDtype"]

#: A compute type CTranslate2 accepts, or "auto" (CTranslate2 docs, "Quantization").
ComputeType = Literal["auto", "default", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16",
                      "float16", "bfloat16", "float32"]
COMPUTE_TYPES: Tuple[ComputeType, ...] = ("auto", "default", "int8", "int8_float32", "int8_float16",
                                          "int8_bfloat16", "int16", "float16", "bfloat16", "float32")
#: Where CTranslate2 runs (``WhisperModel(device=)``).
Ct2Device = Literal["cuda", "cpu"]
#: The torch dtype chosen, as its ``torch.<name>`` attribute.
TorchDtype = Literal["bfloat16", "float16", "float32"]


#: PCI device ids of the Turing chips without tensor cores: TU117 (0x1F80-0x1FFF:
#: GTX 1650 0x1F82, GTX 1650 Ti mobile 0x1F95, T400 0x1FB2, T600 0x1FB1, T1000
#: 0x1FB0, ...) and TU116 (0x2180-0x21FF: GTX 1660 Ti 0x2182, GTX 1660 0x2184,
#: GTX 1650 SUPER 0x2187, GTX 1660 SUPER 0x21C4, ...).  Source: the PCI ID
#: Repository (pci-ids.ucw.cz, vendor 10de), where NVIDIA allocates each chip a
#: block of ids; TU106 (RTX 2060/2070) is 0x1F00-0x1F7F and has tensor cores.
NO_TENSOR_CORE_IDS: Tuple[Tuple[int, int], ...] = ((0x1F80, 0x1FFF), (0x2180, 0x21FF))


def lacks_tensor_cores(device: Device) -> bool:
    """True for a CC 7.x chip without fp16 tensor cores (TU116/TU117), judged
    by the PCI device id NVML reports; by the name (``GTX 16``) only when the
    driver gave no device id."""
    if device.compute_capability[0] != 7:
        return False
    if device.pci_device_id:
        return any(lo <= device.pci_device_id <= hi for lo, hi in NO_TENSOR_CORE_IDS)
    return bool(re.search(r"GTX\s*16\d\d", device.name, re.IGNORECASE))


def torch_dtype_for(cc: Tuple[int, int], prefer: str = "auto") -> TorchDtype:
    """torch dtype for compute capability ``cc`` (rules in the module doc).
    ``prefer="accuracy"`` always gives float32."""
    if prefer == "accuracy":
        return "float32"
    if cc >= (8, 0):
        return "bfloat16"
    if cc >= (7, 0) or cc in ((6, 0), (6, 2)):
        return "float16"
    return "float32"


def _allow_fp16(environ: Optional[Mapping[str, str]]) -> bool:
    env = os.environ if environ is None else environ
    return env.get("CT2_CUDA_ALLOW_FP16", "").strip().lower() in ("1", "true", "yes", "on")


def _ct2_capabilities(device: Device, environ: Optional[Mapping[str, str]] = None
                      ) -> Tuple[bool, bool, bool, List[str]]:
    """(int8, float16, bfloat16) support by CTranslate2's rules and the GPU's quirks, with notes."""
    cc = device.compute_capability
    notes: List[str] = []
    int8 = cc[0] > 6 or cc == (6, 1)
    fp16 = cc[0] >= 7
    bf16 = cc[0] >= 8
    if lacks_tensor_cores(device):
        fp16 = False
        chip = f"PCI id {device.pci_device_id:#06x}" if device.pci_device_id else "its name"
        notes.append(f"no float16: a TU116/TU117 chip ({chip}) has no tensor cores and gives garbage output "
                     "in float16 (whisper-diarization #327)")
    if not fp16 and cc >= (5, 3) and _allow_fp16(environ):
        fp16 = True
        notes.append("float16 allowed by CT2_CUDA_ALLOW_FP16=1")
    return int8, fp16, bf16, notes


def compute_type_for(device: Optional[Device], prefer: str = "auto", *, avoid: Optional[Mapping[str, str]] = None,
                     supported: Optional[Set[str]] = None,
                     environ: Optional[Mapping[str, str]] = None) -> Tuple[ComputeType, str]:
    """CTranslate2 compute type for ``device`` (``None``: the CPU) and the reason.

    ``avoid`` maps the compute types the installed build breaks on this GPU to why (its row's quirks);
    ``supported``, when given, is what ``ctranslate2.get_supported_compute_types`` returned; the choice falls
    back along the same order until it is in it.
    """
    chain: List[ComputeType]
    if device is None:
        chain = ["float32"] if prefer == "accuracy" else ["int8", "int8_float32", "float32"]
        why = ("float32: no quantization asked" if prefer == "accuracy" else
               "int8: CTranslate2's fastest CPU type (faster-whisper README: int8 1.54x faster than "
               "float32 for small on an i7-12700K)")
    else:
        int8, fp16, _bf16, notes = _ct2_capabilities(device, environ)
        chain = []
        if prefer in ("speed", "memory"):
            if int8 and fp16:
                chain.append("int8_float16")
            if int8:
                chain.append("int8")
            if fp16:
                chain.append("float16")
        elif prefer == "accuracy":
            if fp16:
                chain.append("float16")
        else:  # auto
            if fp16:
                chain.append("float16")
            if int8:
                chain.append("int8")
        chain.append("float32")
        why_not: Dict[str, List[str]] = {}
        for t in chain:
            if t in (avoid or {}):
                why_not.setdefault((avoid or {})[t], []).append(t)
        chain = [t for t in chain if t not in (avoid or {})]
        notes += [f"no {', '.join(types)}: {reason}" for reason, types in why_not.items()]
        cc = f"CC {device.compute_capability[0]}.{device.compute_capability[1]}"
        first = chain[0]
        why = {
            "float16": f"float16: {cc} has fp16 tensor cores and Whisper's released weights are float16",
            "int8_float16": f"int8_float16: {cc}, int8 weights with fp16 compute (fastest, least memory)",
            "int8": f"int8: {cc} has int8 (dp4a) but no efficient float16",
            "float32": f"float32: {cc} has neither efficient float16 nor int8",
        }[first]
        if notes:
            why += "; " + "; ".join(notes)
    if supported is not None:
        for ctype in chain:
            if ctype in supported:
                if ctype != chain[0]:
                    why += f"; {chain[0]} not in ctranslate2's supported types, using {ctype}"
                return ctype, why
        known = sorted(t for t in supported if t in COMPUTE_TYPES)
        fallback: ComputeType = "float32" if "float32" in supported or not known else known[0]
        return fallback, why + f"; none preferred is supported, using {fallback}"
    return chain[0], why
