//! Token buckets per key (an account name, a client address), with a bound on how
//! many keys are remembered.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket per key: `burst` attempts at once, refilled at `burst` per minute.
#[derive(Debug)]
pub(crate) struct RateLimiter<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
    burst: f64,
    per_second: f64,
    max_keys: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `per_minute` attempts a minute per key (at least 1), remembering at most
    /// `max_keys` keys.
    pub(crate) fn new(per_minute: u32, max_keys: usize) -> Self {
        let burst = f64::from(per_minute.max(1));
        RateLimiter {
            buckets: Mutex::new(HashMap::new()),
            burst,
            per_second: burst / 60.0,
            max_keys: max_keys.max(1),
        }
    }

    fn refilled(&self, b: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        (b.tokens + elapsed * self.per_second).min(self.burst)
    }

    /// Takes one token for `key` at `now`; if there is none, how long until there is.
    ///
    /// When `max_keys` keys are remembered, keys whose buckets have refilled are
    /// forgotten (they are as good as new); if none has, a new key is refused for a
    /// while rather than memory growing without bound.
    pub(crate) fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            let burst = self.burst;
            buckets.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + elapsed * self.per_second < burst
            });
            if buckets.len() >= self.max_keys {
                return Err(Duration::from_secs_f64(1.0 / self.per_second));
            }
        }
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*b, now);
        if tokens >= 1.0 {
            *b = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *b = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_then_refilled() {
        let limiter = RateLimiter::new(10, 100);
        let t = Instant::now();
        for _ in 0..10 {
            assert!(limiter.check(&"alice", t).is_ok());
        }
        let wait = limiter.check(&"alice", t).unwrap_err();
        assert!(
            wait > Duration::from_secs(5) && wait <= Duration::from_secs(6),
            "{wait:?}"
        );
        assert!(limiter.check(&"bob", t).is_ok(), "keys are separate");
        assert!(limiter.check(&"alice", t + Duration::from_secs(7)).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = RateLimiter::new(2, 3);
        let t = Instant::now();
        for k in 0..3 {
            limiter.check(&k, t).unwrap();
        }
        // Three busy keys: a fourth is refused for now...
        assert!(limiter.check(&3, t).is_err());
        // ...and accepted once the others have refilled and are forgotten.
        assert!(limiter.check(&3, t + Duration::from_secs(60)).is_ok());
        assert!(limiter.buckets.lock().unwrap_or_else(|e| e.into_inner()).len() <= 3);
    }
}
