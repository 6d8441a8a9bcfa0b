//! The `bciops` binary: parse, dispatch, map errors to exit codes. Nothing else.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc, which hands every allocation over 128 KiB back to the
/// kernel when it is freed: a served JSON request (a 330 KB body, 130 KB trial buffers) then
/// paid page faults and cross-core TLB shootdowns that cost more CPU than its inference.
/// (This replaced re-executing `serve` with `MALLOC_MMAP_THRESHOLD_=65536`, which kept glibc's
/// heaps from fragmenting by mapping every such buffer afresh.) mimalloc v2, not v3: under a
/// 180 s soak at 8 connections v3's resident memory grew from 208 to 270 MiB, v2's stayed
/// flat. Measured with `scripts/bench/serve.sh` (see docs/design.md, "Serving speed").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    bciops::cli::main()
}
