//! Brute-force protection for logins: failed logins are counted per source and
//! per target account, and a source or target that reached its limit within
//! its window is answered 429 before any work.
//!
//! - A source is one IPv4 address, all of 127.0.0.0/8 together (a local
//!   client can bind any of them), or one IPv6 /64 (what a client is routed).
//!   IPv4-mapped IPv6 addresses count as the IPv4 address.
//! - A target is the account a Basic login names (the fallback administrator
//!   included), or, for a name no account has, that name: guessing spread
//!   over many sources still meets the target's limit.
//! - A success never forgives failures, its own source's or anyone else's:
//!   otherwise any valid credential would let its holder guess others'
//!   passwords without limit, one success between rounds.
//! - A slot is taken before the argon2 work of an attempt, atomically with the
//!   check, and attempts in flight count against the limit: 30 guesses sent at
//!   once from a new address get at most `max_failures` answers other than 429.
//!
//! Limits and how to change them: docs/operations.md, "Limits".

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How many failures a key may have within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max_failures: u32,
    pub window: Duration,
}

/// Where a login attempt comes from, as the limiter counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    V4(u32),
    /// The upper 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl Source {
    pub(crate) fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V4(a) if a.is_loopback() => Source::V4(u32::from(std::net::Ipv4Addr::LOCALHOST)),
            IpAddr::V4(a) => Source::V4(u32::from(a)),
            IpAddr::V6(a) => Source::V6Prefix((u128::from(a) >> 64) as u64),
        }
    }
}

/// What an attempt is aimed at: a keyed digest of the account id or login
/// name (names are not kept in memory).
pub(crate) type Target = [u8; 16];

#[derive(Debug)]
struct Tally {
    failures: u32,
    in_flight: u32,
    since: Instant,
}

impl Tally {
    /// Starts a new window once the old one has passed.
    fn refresh(&mut self, now: Instant, window: Duration) {
        if now.saturating_duration_since(self.since) >= window {
            self.failures = 0;
            self.since = now;
        }
    }

    /// Whether one more attempt may start now.
    fn verdict(&self, budget: Budget, now: Instant) -> Verdict {
        if self.failures >= budget.max_failures {
            let left = budget.window.saturating_sub(now.saturating_duration_since(self.since));
            return Verdict::Blocked(left.as_secs().max(1));
        }
        if self.failures.saturating_add(self.in_flight) >= budget.max_failures { Verdict::Busy } else { Verdict::Free }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Free,
    /// Full only with attempts in flight: wait for one to end.
    Busy,
    /// Failures reached the limit: retry after this many seconds.
    Blocked(u64),
}

/// How long an attempt waits for attempts in flight to end before it is
/// answered 429 (an argon2 check takes tens of milliseconds).
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// Keys remembered at most per map. Only keys with failures in their window,
/// or attempts in flight, are kept. When a map is full, expired keys go
/// first, then the tenth with the fewest failures: filling the map with
/// sources or names of one failure each neither refuses new clients nor
/// forgets a key that is close to its limit.
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
struct Tallies {
    sources: HashMap<Source, Tally>,
    targets: HashMap<Target, Tally>,
}

pub(crate) struct LoginLimiter {
    source: Budget,
    target: Budget,
    tallies: Mutex<Tallies>,
    /// Signalled whenever an attempt ends.
    ended: Condvar,
}

/// A slot taken by [`LoginLimiter::begin`]. Dropped without
/// [`Attempt::succeeded`], it counts as a failure (a panic during the check
/// too).
pub(crate) struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    source: Source,
    target: Option<Target>,
    now: Instant,
    succeeded: std::cell::Cell<bool>,
}

impl Attempt<'_> {
    pub(crate) fn succeeded(self) {
        self.abandon();
    }

    /// Ends the attempt, when it drops, as no failure (the check could not
    /// be made: the server was busy).
    pub(crate) fn abandon(&self) {
        self.succeeded.set(true);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let failed = !self.succeeded.get();
        let mut tallies = self.limiter.lock();
        let now = self.now;
        end(&mut tallies.sources, self.source, failed, self.limiter.source.window, now);
        if let Some(target) = self.target {
            end(&mut tallies.targets, target, failed, self.limiter.target.window, now);
        }
        drop(tallies);
        self.limiter.ended.notify_all();
    }
}

/// Ends an attempt of `key`: no longer in flight, one more failure if it failed.
fn end<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Tally>, key: K, failed: bool, window: Duration, now: Instant) {
    let Some(tally) = map.get_mut(&key) else { return };
    tally.in_flight = tally.in_flight.saturating_sub(1);
    if failed {
        tally.refresh(now, window);
        tally.failures = tally.failures.saturating_add(1);
    }
    if tally.failures == 0 && tally.in_flight == 0 {
        map.remove(&key);
    }
}

/// Makes room for a new key of `map`; `false` only when every key has an
/// attempt in flight.
fn room<K: Clone + std::hash::Hash + Eq>(map: &mut HashMap<K, Tally>, window: Duration, now: Instant) -> bool {
    if map.len() < MAX_TRACKED {
        return true;
    }
    map.retain(|_, t| t.in_flight > 0 || now.saturating_duration_since(t.since) < window);
    if map.len() >= MAX_TRACKED {
        let mut idle: Vec<(u32, Instant, K)> =
            map.iter().filter(|(_, t)| t.in_flight == 0).map(|(k, t)| (t.failures, t.since, k.clone())).collect();
        let evict = (MAX_TRACKED / 10).min(idle.len());
        if evict > 0 {
            idle.select_nth_unstable_by_key(evict - 1, |(failures, since, _)| (*failures, *since));
            for (_, _, key) in idle.into_iter().take(evict) {
                map.remove(&key);
            }
        }
    }
    map.len() < MAX_TRACKED
}

impl LoginLimiter {
    pub(crate) fn new(source: Budget, target: Budget) -> Self {
        LoginLimiter { source, target, tallies: Mutex::new(Tallies::default()), ended: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, Tallies> {
        self.tallies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Seconds until `source` may try again, if its failures reached the
    /// limit. For checks that cost nothing (a cached login, a generated
    /// secret's digest), which need no slot.
    pub(crate) fn source_blocked(&self, source: Source, now: Instant) -> Option<u64> {
        let mut tallies = self.lock();
        let tally = tallies.sources.get_mut(&source)?;
        tally.refresh(now, self.source.window);
        match tally.verdict(self.source, now) {
            Verdict::Blocked(retry) => Some(retry),
            Verdict::Free | Verdict::Busy => None,
        }
    }

    /// Takes a slot for one attempt from `source` at `target`, or answers the
    /// seconds to wait: when either has reached its limit of failures, or the
    /// limiter cannot track one more key. When they are full only with
    /// attempts in flight, it waits (blocking, at most [`BUSY_WAIT`]) for one
    /// to end: a client's burst of first logins is served, while guesses sent
    /// at once meet the failures of those before them.
    pub(crate) fn begin(&self, source: Source, target: Option<Target>, now: Instant) -> Result<Attempt<'_>, u64> {
        let started = Instant::now();
        let mut guard = self.lock();
        loop {
            let at = now + started.elapsed();
            let tallies = &mut *guard;
            let verdict = self.verdict(tallies, source, target, at)?;
            match verdict {
                Verdict::Free => {
                    let fresh = || Tally { failures: 0, in_flight: 0, since: at };
                    tallies.sources.entry(source).or_insert_with(fresh).in_flight += 1;
                    if let Some(t) = target {
                        tallies.targets.entry(t).or_insert_with(fresh).in_flight += 1;
                    }
                    return Ok(Attempt {
                        limiter: self,
                        source,
                        target,
                        now: at,
                        succeeded: std::cell::Cell::new(false),
                    });
                }
                Verdict::Blocked(retry) => return Err(retry),
                Verdict::Busy => {
                    let Some(left) = BUSY_WAIT.checked_sub(started.elapsed()) else { return Err(1) };
                    guard = self.ended.wait_timeout(guard, left).unwrap_or_else(PoisonError::into_inner).0;
                }
            }
        }
    }

    /// The verdict of the source and target together (the worse of the two),
    /// refreshing their windows; `Err` when a new key cannot be tracked.
    fn verdict(
        &self,
        tallies: &mut Tallies,
        source: Source,
        target: Option<Target>,
        at: Instant,
    ) -> Result<Verdict, u64> {
        if !tallies.sources.contains_key(&source) && !room(&mut tallies.sources, self.source.window, at) {
            return Err(1);
        }
        if let Some(t) = target
            && !tallies.targets.contains_key(&t)
            && !room(&mut tallies.targets, self.target.window, at)
        {
            return Err(1);
        }
        let mut verdict = match tallies.sources.get_mut(&source) {
            Some(tally) => {
                tally.refresh(at, self.source.window);
                tally.verdict(self.source, at)
            }
            None => Verdict::Free,
        };
        if let Some(tally) = target.and_then(|t| tallies.targets.get_mut(&t)) {
            tally.refresh(at, self.target.window);
            verdict = verdict.max(tally.verdict(self.target, at));
        }
        Ok(verdict)
    }

    /// Counts one failure of a check that took no slot (a wrong API key, a
    /// malformed header).
    pub(crate) fn record_failure(&self, source: Source, now: Instant) {
        let mut tallies = self.lock();
        if !tallies.sources.contains_key(&source) && !room(&mut tallies.sources, self.source.window, now) {
            return;
        }
        let tally = tallies.sources.entry(source).or_insert(Tally { failures: 0, in_flight: 0, since: now });
        tally.refresh(now, self.source.window);
        tally.failures = tally.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(max_failures: u32) -> Budget {
        Budget { max_failures, window: Duration::from_secs(60) }
    }

    fn source(ip: &str) -> Source {
        Source::of(ip.parse().unwrap())
    }

    #[test]
    fn sources_are_addresses_loopback_as_one_and_ipv6_by_64() {
        assert_eq!(source("127.0.0.1"), source("127.5.6.7"));
        assert_eq!(source("::ffff:192.0.2.1"), source("192.0.2.1"));
        assert_ne!(source("192.0.2.1"), source("192.0.2.2"));
        assert_eq!(source("2001:db8:1:2::1"), source("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(source("2001:db8:1:2::1"), source("2001:db8:1:3::1"));
    }

    #[test]
    fn attempts_in_flight_count_against_the_limit() {
        let limiter = LoginLimiter::new(budget(3), budget(100));
        let (a, t0) = (source("192.0.2.1"), Instant::now());
        let held: Vec<_> = (0..3).map(|_| limiter.begin(a, None, t0).unwrap()).collect();
        std::thread::scope(|s| {
            // A fourth attempt waits for one of the three in flight to end.
            let fourth = s.spawn(|| limiter.begin(a, None, t0).map(|_| ()));
            drop(held);
            assert!(fourth.join().unwrap().is_err(), "three failures: the waiting attempt is refused");
        });
        assert!(limiter.begin(a, None, t0).err().is_some_and(|s| s > 1), "three failures: blocked for the window");
        assert!(limiter.begin(a, None, t0 + Duration::from_secs(61)).is_ok(), "the window passes");
    }

    #[test]
    fn a_burst_of_right_logins_waits_for_slots_instead_of_failing() {
        let limiter = LoginLimiter::new(budget(3), budget(100));
        let (a, t0) = (source("192.0.2.9"), Instant::now());
        let held: Vec<_> = (0..3).map(|_| limiter.begin(a, None, t0).unwrap()).collect();
        std::thread::scope(|s| {
            let fourth = s.spawn(|| limiter.begin(a, None, t0).map(Attempt::succeeded));
            held.into_iter().for_each(Attempt::succeeded);
            assert_eq!(fourth.join().unwrap(), Ok(()), "served once the three in flight succeeded");
        });
    }

    #[test]
    fn a_full_table_forgets_the_fewest_failures_and_refuses_no_one() {
        let limiter = LoginLimiter::new(budget(5), budget(100));
        let t0 = Instant::now();
        let close = source("203.0.113.1");
        for _ in 0..4 {
            limiter.record_failure(close, t0);
        }
        for i in 0..MAX_TRACKED as u32 {
            limiter.record_failure(Source::V4(0x0a00_0000 + i), t0);
        }
        assert!(limiter.begin(source("198.51.100.200"), None, t0).is_ok(), "a new client is not refused");
        drop(limiter.begin(close, None, t0).unwrap());
        assert!(limiter.source_blocked(close, t0).is_some(), "four failures were kept, and the fifth counted");
    }

    #[test]
    fn a_success_forgives_nothing_and_targets_are_limited_across_sources() {
        let limiter = LoginLimiter::new(budget(3), budget(4));
        let (victim, mine) = ([1u8; 16], [2u8; 16]);
        let t0 = Instant::now();
        for i in 0..4 {
            let from = source(&format!("198.51.100.{i}"));
            drop(limiter.begin(from, Some(victim), t0).unwrap());
            limiter.begin(from, Some(mine), t0).unwrap().succeeded();
        }
        assert!(limiter.begin(source("203.0.113.9"), Some(victim), t0).is_err(), "four failures from four sources");
        assert!(limiter.begin(source("203.0.113.9"), Some(mine), t0).is_ok(), "other targets go on");
        let (a, t1) = (source("192.0.2.7"), Instant::now());
        for _ in 0..2 {
            drop(limiter.begin(a, Some([9; 16]), t1).unwrap());
            limiter.begin(a, Some(mine), t1).unwrap().succeeded();
        }
        drop(limiter.begin(a, Some([9; 16]), t1).unwrap());
        assert!(limiter.source_blocked(a, t1).is_some(), "successes between failures do not reset them");
    }
}
