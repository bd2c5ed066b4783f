//! Thread pools. candle runs quantized matmuls on its own spinning pool
//! (`CANDLE_NUM_THREADS`) and f32 matmuls and other ops on rayon (`RAYON_NUM_THREADS`);
//! both read the variables once, when first used, so they are set here before any model work.
//! Measured on 2 idle vCPUs (BENCHMARKS.md): both pools at 2 gave the best prefill (f32) and
//! generation (Q8_0); rayon at 1 halved f32 prefill, candle at 1 halved generation. The
//! spinning pool suffers badly when another busy process shares the cores (generation fell
//! to ~4 tokens/s during a compile), so `--threads` lets a user leave cores free.

/// Caps both pools at `threads` (default: the number of available cores).
/// Must run before the first tensor operation; later calls have no effect on the pools.
pub fn configure_threads(threads: Option<usize>) -> usize {
    let n = threads
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Safe in edition 2021; done at start-up before other threads read the environment.
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
    n
}
