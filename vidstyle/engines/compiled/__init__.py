"""Compiled once per machine: a style network ahead-of-time compiled, kept in the user's cache.

`torch.compile` fuses the elementwise passes between the convolutions (norm, ReLU, padding,
residual adds) but recompiles in every process, tens of seconds before the first frame.
AOTInductor (`torch._inductor.aoti_compile_and_package`) writes the same compiled graph as
a package, a zip holding a shared library and the weights, that a later process loads in
about a second. So the first run of a network at a frame size on a machine compiles, and
every later one loads the package.

A package is code: loading it runs its shared library. So an entry is loaded only if

* its key matches: network (class and parameter shapes), a hash of the weights, the frame
  bucket, the batch, the precision, the library versions and the processor (a package built
  for another CPU's instruction set or another GPU would crash or be slow);
* its manifest's sha256 matches the package's bytes (a truncated or corrupted file);
* it lives in the user's own cache folder, owned by this user and writable by no one else.

Anything else (missing, corrupt, stale, unreadable) is deleted and rebuilt; a package that
fails to build or load leaves the network running eagerly, with a warning. After building,
the package's output is compared against the float32 eager network's on the same input
before it is kept (`required_psnr`), so a miscompiled graph never becomes an entry.

Building takes a minute on a quiet 2-core CPU (the 26-style network at 640x480) and four
or more on a busy one, so `compile = "auto"`, the default, never makes a run wait for it:
on a cache miss the network is exported (seconds) and handed to a detached builder process
at the lowest CPU priority, the run goes on eagerly, and it switches to the package if the
build ends before the run does; every later run starts compiled. `"on"` builds in the foreground and
waits. One builder per entry at a time: the job folder is the lock.

int8 (CPU, bf16 runs, torchao installed): the builder also makes an int8 package (PT2E
static quantization for x86 from torchao, oneDNN/VNNI kernels, bf16 between them),
calibrated on the run's first frame and three variants of it, and keeps it instead of the
bf16 one only if it clears the same PSNR bar on that frame *and* on a frame the calibration
did not see, and is faster. Johnson's network (the named styles) at 640x480 on this
project's 2-core AVX512-BF16 machine: builds recorded int8 at 1.53-1.68x eager, 41 dB from
float32 (46-59 dB on other clips' frames), and the README's first command took 79-80 s
against 105-110 s uncompiled; the 26-style network falls to 20 dB in int8 and keeps its
bf16 package (docs/benchmarks.md, "int8").

Shape buckets: frames are padded (reflect) up to multiples of `BUCKET` pixels, so one
package serves every frame size that rounds to the same bucket; the padding is cropped off.

The modules, each using only those above it: `key` (what a package depends on), `cache`
(where entries live, which are trusted, loading one), `build` (export, compile, check,
int8), `builder` (the background process), `runtime` (`CompiledNetwork`, what the fast
engine calls).
"""

from vidstyle.engines.compiled.build import psnr
from vidstyle.engines.compiled.cache import compiled_cache_folder
from vidstyle.engines.compiled.key import bucket_size
from vidstyle.engines.compiled.runtime import CompiledNetwork

__all__ = ["CompiledNetwork", "bucket_size", "compiled_cache_folder", "psnr"]
