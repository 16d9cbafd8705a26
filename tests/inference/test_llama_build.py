"""The installed llama.cpp build runs on any CPU of its architecture, not just the one that compiled it.

A build made with llama.cpp's default GGML_NATIVE (-march=native) on a Xeon with AMX uses AMX tiles and
AVX-512; pip's wheel cache carries such a wheel to other machines, where it dies with SIGILL on the first
prompt. `make install` builds with a fixed flag set instead (see the Makefile). `llama_print_system_info()`
lists the ISA features the CPU backend was *compiled* with (ggml's `ggml_cpu_has_avx512()` and friends test
`__AVX512F__`, `__AMX_INT8__`... at compile time), so a native build on an AVX-512/AMX machine shows
`AVX512 = 1` / `AMX_INT8 = 1` here and fails this test.
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys

import pytest

X86_ISA = {"SSE3", "SSSE3", "AVX", "AVX_VNNI", "AVX2", "F16C", "FMA", "BMI2", "AVX512", "AVX512_VBMI",
           "AVX512_VNNI", "AVX512_BF16", "AMX_INT8"}
PORTABLE_X86 = {"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"}  # every x86-64 CPU with AVX2 has these


def cpu_features() -> dict[str, str]:
    # in a subprocess: loading llama.cpp's libraries is exactly what the server process never does
    info = subprocess.run([sys.executable, "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
                          capture_output=True, text=True, timeout=120, check=True).stdout
    cpu = re.search(r"CPU : (.*?)(?:\n|$|[A-Z]+ : )", info)
    assert cpu, f"no CPU backend in llama_print_system_info(): {info!r}"
    return dict(re.findall(r"(\w+) = (\w+)", cpu.group(1)))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the x86-64 flag set")
def test_installed_llama_cpp_is_built_for_any_avx2_cpu() -> None:
    features = cpu_features()
    isa = {name for name, value in features.items() if name in X86_ISA and value == "1"}
    assert "AVX2" in isa and "FMA" in isa, features
    assert isa <= PORTABLE_X86, f"built for a newer CPU than AVX2 (native build?): {sorted(isa - PORTABLE_X86)}"
