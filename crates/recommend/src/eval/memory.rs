//! Peak memory of a fit, measured like the baseline: RSS sampled every 5 ms from
//! `/proc/self/statm` while the fit runs; the delta is the peak minus the RSS just before.
//!
//! Unlike the baseline we cannot fork a fresh child per model (no `unsafe`), so fits run
//! in-process one after another, and pages glibc's allocator kept from earlier fits (tuning
//! fits, other algorithms) can be reused and hide part of a later fit's need. Run with
//! `MALLOC_MMAP_THRESHOLD_=131072`, which makes glibc return every large block to the OS on
//! free, for deltas that compare with the baseline's; the report also gives each model's
//! persisted size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Resident set size in bytes, if the platform exposes it.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // Linux pages are 4 KiB on every platform this runs on in practice.
    Some(pages * 4096)
}

/// Samples RSS in a background thread until stopped.
pub struct PeakRss {
    start: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl PeakRss {
    /// Starts sampling.
    pub fn start() -> Self {
        let start = rss_bytes().unwrap_or(0);
        let peak = Arc::new(AtomicU64::new(start));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = rss_bytes() {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            start,
            peak,
            stop,
            handle: Some(handle),
        }
    }

    /// Stops sampling; returns `(peak, peak - start)` in MiB.
    pub fn finish(mut self) -> (f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            // A panicked sampler only loses samples.
            let _ = h.join();
        }
        if let Some(rss) = rss_bytes() {
            self.peak.fetch_max(rss, Ordering::Relaxed);
        }
        let peak = self.peak.load(Ordering::Relaxed);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        (mib(peak), mib(peak.saturating_sub(self.start)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_allocation_shows_in_the_delta() {
        if rss_bytes().is_none() {
            return;
        }
        let sampler = PeakRss::start();
        // Still alive when `finish` takes its last sample.
        let block = vec![1u8; 64 << 20];
        let (peak, delta) = sampler.finish();
        assert!(block.iter().step_by(4096).all(|&b| b == 1));
        assert!(delta >= 60.0 && peak >= delta, "{peak} {delta}");
    }
}
