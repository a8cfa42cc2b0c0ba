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

/// Creates the domain `bench.example` as the system and returns its id.
#[allow(dead_code, reason = "not every benchmark creates its own domain")]
pub(crate) fn create_domain(ledger: &ledger::Ledger) -> ledger_events::values::ObjectId {
    use ledger::command::{Command, CreateDomain};
    let events = ledger
        .commit_blocking(ledger::CommitOrigin::system(), |tx| {
            tx.execute(&Command::CreateDomain(CreateDomain {
                name: "bench.example".parse().expect("a valid domain name"),
                description: None,
                member_tenant_id: None,
                settings: Default::default(),
            }))
        })
        .expect("the domain commits")
        .value
        .expect("a new domain is accepted");
    match &events[0] {
        ledger_events::Event::DomainCreated(d) => d.domain_id,
        other => panic!("expected DomainCreated, got {other:?}"),
    }
}
