//! Per-runner rate limits (seed 004's limiter, as token buckets): lines per second and bytes
//! per second. A limited runner reads less, so it lags behind its files (visible as
//! `lag_bytes` and state `limited` in its status); nothing is dropped.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines_per_second: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<u64>,
}

impl RateLimitConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.lines_per_second == Some(0) || self.bytes_per_second == Some(0) {
            return Err(
                "rate_limit: a limit must be at least 1 per second (omit it for no limit)".into(),
            );
        }
        Ok(())
    }
}

/// A token bucket holding at most one second of allowance. It may go into debt (a read can
/// overshoot its allowance by a read buffer); the debt is paid back before the next read.
struct Bucket {
    rate: f64,
    tokens: f64,
}

impl Bucket {
    fn new(rate: u64) -> Bucket {
        // Start with a small allowance: the measured rate must not begin with a burst.
        Bucket {
            rate: rate as f64,
            tokens: (rate as f64 / 10.0).max(1.0),
        }
    }

    fn refill(&mut self, elapsed: f64) {
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
    }

    /// How long until at least one token is available.
    fn wait(&self) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }
}

pub struct RateLimiter {
    lines: Option<Bucket>,
    bytes: Option<Bucket>,
    last: Instant,
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> RateLimiter {
        RateLimiter {
            lines: config.lines_per_second.map(Bucket::new),
            bytes: config.bytes_per_second.map(Bucket::new),
            last: Instant::now(),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.lines.is_none() && self.bytes.is_none()
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        for bucket in [&mut self.lines, &mut self.bytes].into_iter().flatten() {
            bucket.refill(elapsed);
        }
    }

    /// How long to wait before reading again (zero: read now).
    pub fn wait(&mut self) -> Duration {
        self.refill();
        [&self.lines, &self.bytes]
            .into_iter()
            .flatten()
            .map(Bucket::wait)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// The most lines and bytes the next read may take.
    pub fn allowance(&mut self, max_lines: usize, max_bytes: usize) -> (usize, usize) {
        self.refill();
        // Reads of at most 1/20 s of allowance keep the flow smooth rather than bursty.
        let cap = |bucket: &Option<Bucket>, max: usize| match bucket {
            Some(bucket) => (bucket.tokens.min(bucket.rate / 20.0).max(1.0) as usize).min(max),
            None => max,
        };
        (cap(&self.lines, max_lines), cap(&self.bytes, max_bytes))
    }

    /// Account for what a read took.
    pub fn spend(&mut self, lines: u64, bytes: u64) {
        if let Some(bucket) = &mut self.lines {
            bucket.tokens -= lines as f64;
        }
        if let Some(bucket) = &mut self.bytes {
            bucket.tokens -= bytes as f64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_is_bounded_and_debt_makes_it_wait() {
        let mut limiter = RateLimiter::new(RateLimitConfig {
            lines_per_second: Some(100),
            bytes_per_second: None,
        });
        let (lines, bytes) = limiter.allowance(4096, 1 << 20);
        assert!(lines <= 100 && bytes == 1 << 20, "{lines}");
        limiter.spend(500, 0);
        assert!(
            limiter.wait() > Duration::from_secs(3),
            "a debt of 400 lines at 100/s"
        );
        assert!(RateLimiter::new(RateLimitConfig::default()).is_unlimited());
        assert!(
            RateLimitConfig {
                lines_per_second: Some(0),
                bytes_per_second: None
            }
            .validate()
            .is_err()
        );
    }
}
