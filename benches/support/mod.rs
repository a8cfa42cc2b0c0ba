//! Shared by the benchmarks: percentiles of measured samples, kept in an HDR
//! histogram (three significant digits, so a reported figure is within 0.1%).

/// Samples are recorded in thousandths of their unit, so fractional
/// milliseconds or microseconds keep three decimals.
const SCALE: f64 = 1000.0;

/// The `p` quantile (0.0 to 1.0) of `samples`, in their unit; 0 for none.
pub(crate) fn percentile(samples: Vec<f64>, p: f64) -> f64 {
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits is a valid precision");
    for sample in samples {
        histogram.record((sample.max(0.0) * SCALE).round() as u64).expect("the histogram resizes to fit");
    }
    histogram.value_at_quantile(p) as f64 / SCALE
}

/// The median of `samples`.
#[allow(dead_code, reason = "not every benchmark reports a bare median")]
pub(crate) fn median(samples: Vec<f64>) -> f64 {
    percentile(samples, 0.5)
}
