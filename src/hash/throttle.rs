//! `max_rate`: paces reading to at most a number of bytes per second, over every thread
//! and every target that shares the throttle.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Throttle {
    bytes_per_second: u64,
    /// When pacing began, and the bytes read since.
    read: Mutex<(Instant, u64)>,
}

impl Throttle {
    /// A throttle of `bytes_per_second` (at least 1).
    pub fn new(bytes_per_second: u64) -> Throttle {
        Throttle {
            bytes_per_second: bytes_per_second.max(1),
            read: Mutex::new((Instant::now(), 0)),
        }
    }

    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Counts `bytes` just read and sleeps until reading them is within the rate: the
    /// bytes counted since the throttle last fell idle took at least `bytes / rate` seconds.
    pub fn pace(&self, bytes: u64) {
        let rate = self.bytes_per_second as f64;
        let due = {
            let mut read = self.read.lock().expect("throttle lock");
            let now = Instant::now();
            // Time spent idle earns no credit for a burst later.
            if read.0 + Duration::from_secs_f64(read.1 as f64 / rate) < now {
                *read = (now, 0);
            }
            read.1 += bytes;
            read.0 + Duration::from_secs_f64(read.1 as f64 / rate)
        };
        let wait = due.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}
