"""PoW kernel: wasm (wasmtime) against native, built from the same C source, in one run.

tutorialapp's kernel (wasm_apps/tutorialapp/pow.c with common/sha256.c) is compiled twice with clang -O2:
natively as a shared library called through ctypes, and for wasm32-wasi as a reactor module run by
wasmtime-py, plain, with fuel metering, with epoch interruption (a ticker thread as in the wasm
environment), and with both. Every variant searches the same nonces (difficulty 256: none qualifies, so
the whole range is hashed). The variants take turns, `--repeats` rounds, and each one's fastest run counts,
so a busy machine slows all of them alike. Prints hashes per second and wasm/native.

    python bench/pow_native_vs_wasm.py [--nonces N] [--repeats R]
"""

from __future__ import annotations

import argparse
import ctypes
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import wasmtime

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "wasm_apps" / "tutorialapp" / "pow.c", REPO / "wasm_apps" / "common" / "sha256.c"]
INCLUDES = ["-I", str(REPO / "wasm_apps" / "common"), "-I", str(REPO / "wasm_apps" / "tutorialapp")]
DIFFICULTY = 256  # no digest has 256 leading zero bits: every nonce of the range is hashed
GOAL = 1.25
EPOCH_TICK_S = 0.01

# The entry point both builds export: search [start, end) of "benchmark" + nonce; -1 when none qualifies.
DRIVER = """
#include <stdint.h>
#include <string.h>
#include "pow.h"

#ifdef __wasm__
__attribute__((export_name("pow_bench")))
#endif
int64_t pow_bench(int64_t difficulty, int64_t start, int64_t end) {
    pow_text text;
    int64_t found;
    pow_prepare(&text, "benchmark", strlen("benchmark"));
    return pow_search(&text, difficulty, start, end, &found) ? found : -1;
}
"""

Kernel = Callable[[int, int, int], int]


@dataclass(frozen=True)
class Result:
    name: str
    seconds: float


def build(workdir: Path) -> tuple[Path, Path]:
    """Compile the driver and kernel natively (shared library) and to wasm (reactor module)."""
    driver = workdir / "driver.c"
    driver.write_text(DRIVER)
    sources = [str(driver), *map(str, SOURCES)]
    native, wasm = workdir / "pow.so", workdir / "pow.wasm"
    common = ["clang", "-O2", "-std=c11", *INCLUDES]
    subprocess.run([*common, "-fPIC", "-shared", "-o", str(native), *sources], check=True)
    subprocess.run(
        [
            *common,
            "--target=wasm32-wasi",
            "-mexec-model=reactor",
            "-Wl,--strip-all",
            "-o",
            str(wasm),
            *sources,
        ],
        check=True,
    )
    return native, wasm


def native_kernel(library: Path) -> Kernel:
    function = ctypes.CDLL(str(library)).pow_bench
    function.argtypes = [ctypes.c_int64] * 3
    function.restype = ctypes.c_int64

    def run(difficulty: int, start: int, end: int) -> int:
        return int(function(difficulty, start, end))

    return run


class WasmKernel:
    """The wasm build on one engine configuration; a fresh store per call, as the environment does."""

    def __init__(self, module: Path, *, fuel: bool, epoch: bool) -> None:
        config = wasmtime.Config()
        config.consume_fuel = fuel
        config.epoch_interruption = epoch
        self.fuel, self.epoch = fuel, epoch
        self.engine = wasmtime.Engine(config)
        self.module = wasmtime.Module.from_file(self.engine, str(module))
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        self._stop = threading.Event()
        if epoch:
            threading.Thread(target=self._tick, daemon=True).start()

    def _tick(self) -> None:
        while not self._stop.wait(EPOCH_TICK_S):
            self.engine.increment_epoch()

    def close(self) -> None:
        self._stop.set()

    def __call__(self, difficulty: int, start: int, end: int) -> int:
        store = wasmtime.Store(self.engine)
        store.set_wasi(wasmtime.WasiConfig())
        if self.fuel:
            store.set_fuel(2**62)
        if self.epoch:
            store.set_epoch_deadline(1_000_000)  # ticks of EPOCH_TICK_S: far beyond any run here
        instance = self.linker.instantiate(store, self.module)
        exports = instance.exports(store)
        initialize, bench = exports["_initialize"], exports["pow_bench"]
        assert isinstance(initialize, wasmtime.Func) and isinstance(bench, wasmtime.Func)
        initialize(store)
        found = bench(store, difficulty, start, end)
        assert isinstance(found, int)
        return found


def best_times(kernels: dict[str, Kernel], nonces: int, repeats: int) -> list[Result]:
    """Each kernel's fastest run over `repeats` rounds in which every kernel runs once, in turn."""
    best = dict.fromkeys(kernels, float("inf"))
    for _ in range(repeats):
        for name, kernel in kernels.items():
            began = time.perf_counter()
            found = kernel(DIFFICULTY, 0, nonces)
            best[name] = min(best[name], time.perf_counter() - began)
            assert found == -1
    return [Result(name, seconds) for name, seconds in best.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nonces", type=int, default=1_000_000, help="nonces hashed per run")
    parser.add_argument(
        "--repeats", type=int, default=7, help="rounds of runs; each variant's fastest counts"
    )
    args = parser.parse_args(argv)
    if not shutil.which("clang"):
        print(
            "clang is missing: run scripts/build_wasm_apps (as root it installs the toolchain)",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="pow-bench-") as tmp:
        native, wasm = build(Path(tmp))
        wasm_kernels = {
            "wasm": WasmKernel(wasm, fuel=False, epoch=False),
            "wasm + fuel": WasmKernel(wasm, fuel=True, epoch=False),
            "wasm + epoch": WasmKernel(wasm, fuel=False, epoch=True),
            "wasm + fuel + epoch": WasmKernel(wasm, fuel=True, epoch=True),
        }
        kernels: dict[str, Kernel] = {"native clang -O2": native_kernel(native), **wasm_kernels}
        try:
            answers = {name: kernel(12, 0, 100_000) for name, kernel in kernels.items()}
            assert len(set(answers.values())) == 1, f"the builds disagree: {answers}"
            results = best_times(kernels, args.nonces, args.repeats)
        finally:
            for kernel in wasm_kernels.values():
                kernel.close()
    baseline = results[0].seconds
    print(f"PoW kernel, {args.nonces} sha256 nonces per run, best of {args.repeats} interleaved rounds")
    print(f"{'variant':<22}{'seconds':>10}{'Mhash/s':>10}{'x native':>10}")
    for result in results:
        rate = args.nonces / result.seconds / 1e6
        print(f"{result.name:<22}{result.seconds:>10.4f}{rate:>10.3f}{result.seconds / baseline:>10.3f}")
    ratio = results[-1].seconds / baseline
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"wasm + fuel + epoch / native = {ratio:.3f}x (goal <= {GOAL}x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
