//! The pace of a stream's far end, which decides whether compressing pays.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How fast the far end of a stream takes what it is sent, told by the stream's sink.
///
/// Compressing pays while the link is the narrow part: a 20 Mbit/s link carries a 2:1 image
/// twice as fast compressed. When the hosts take the stream as fast as a local `docker load`
/// could (here ~110 MB/s on loopback), the link is not the narrow part any more and
/// compression only costs CPU on both ends, so blocks go uncompressed until the rate drops
/// again. The rate counts raw bytes: wire bytes scaled by the stream's ratio so far.
///
/// The rate alone decides late when compressing is what holds the stream back: the hosts then
/// take compressed bytes as fast as the controller makes them, and the raw rate is the
/// compressor's, which can sit below the fast mark however fast the link is (gzip on two busy
/// cores: 116 of 176 MB compressed before the switch, a second lost). So the sink also tells
/// how full the fullest host queue is: when every host has taken all but the newest frame, the
/// link and the hosts wait for the controller, and a block sent as it is gets there sooner
/// than a compressed one. Once the link is the narrow part, the queues fill and the rate
/// decides again; on a slow link they are full from the first frames on.
#[derive(Default)]
pub struct Pace {
    state: Mutex<PaceState>,
}

#[derive(Default)]
struct PaceState {
    /// (when, wire bytes the slowest host had taken, raw bytes they stand for).
    samples: VecDeque<(Instant, u64, u64)>,
    /// Stored blocks while the link is this fast...
    fast: bool,
    /// ...once a rate has been measured at all.
    measured: bool,
    /// Frames waiting in the fullest host queue at the last sample.
    queued: u64,
}

/// The first bytes a link takes fill its buffers (the SSH window, the sockets) at once: they
/// tell nothing of its speed.
const PACE_BURST: u64 = 8 * 1024 * 1024;
/// The span of samples the rate is taken over.
const PACE_WINDOW: Duration = Duration::from_secs(1);
const PACE_MIN_SPAN: Duration = Duration::from_millis(100);
/// At most this many frames waiting in the fullest host queue: the hosts wait on the controller.
const STARVING: u64 = 1;
/// Raw MB/s above which blocks are stored, and below which they are compressed again.
const FAST_RAW: f64 = 40e6;
const SLOW_RAW: f64 = 20e6;

impl Pace {
    /// Records that the slowest receiver has taken `wire` bytes, standing for `raw` bytes of
    /// the archive, since the stream began, and has `queued` frames still waiting.
    pub fn taken(&self, wire: u64, raw: u64, queued: u64) {
        self.taken_at(Instant::now(), wire, raw, queued);
    }

    fn taken_at(&self, now: Instant, wire: u64, raw: u64, queued: u64) {
        let mut state = self.state.lock().expect("pace lock");
        if wire < PACE_BURST {
            return;
        }
        state.queued = queued;
        // `raw` is an estimate from the ratio so far, which can dip: the count never goes back.
        let raw = state.samples.back().map_or(raw, |last| raw.max(last.2));
        state.samples.push_back((now, wire, raw));
        while state.samples.len() > 2 && now.duration_since(state.samples[1].0) >= PACE_WINDOW {
            state.samples.pop_front();
        }
        let (first, last) = (state.samples[0], state.samples[state.samples.len() - 1]);
        let span = last.0.duration_since(first.0);
        if span < PACE_MIN_SPAN {
            return;
        }
        let rate = last.2.saturating_sub(first.2) as f64 / span.as_secs_f64();
        // The first rate is of compressed blocks, which may be what holds the stream back: any
        // rate that is not slow is worth a try of stored blocks, and a link that cannot take
        // those as fast turns slow again at the next measure.
        let fast_mark = if state.measured { FAST_RAW } else { SLOW_RAW };
        state.measured = true;
        if rate >= fast_mark {
            state.fast = true;
        } else if rate < SLOW_RAW {
            state.fast = false;
        }
    }

    /// Whether a rate has been measured since the stream began.
    pub fn measured(&self) -> bool {
        self.state.lock().expect("pace lock").measured
    }

    /// Whether the hosts, past the first burst, wait for the controller's next frame.
    pub fn starved(&self) -> bool {
        let state = self.state.lock().expect("pace lock");
        !state.samples.is_empty() && state.queued <= STARVING
    }

    /// Whether a rate has been measured and it is not fast: the link is the narrow part.
    pub fn slow(&self) -> bool {
        let state = self.state.lock().expect("pace lock");
        state.measured && !state.fast
    }

    /// Whether the link is fast enough right now that compressing would only cost time.
    pub fn fast(&self) -> bool {
        self.state.lock().expect("pace lock").fast
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_turns_fast_and_slow_with_hysteresis() {
        let pace = Pace::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(!pace.fast() && !pace.slow(), "nothing known: compress");
        // The first bytes fill buffers and are not counted.
        pace.taken_at(at(10), 4 << 20, 8 << 20, 8);
        assert!(!pace.fast());
        // 100 MB/s of raw bytes: fast.
        pace.taken_at(at(100), 10 << 20, 20_000_000, 8);
        pace.taken_at(at(300), 20 << 20, 40_000_000, 8);
        assert!(pace.fast());
        // 30 MB/s: between the thresholds, it stays as it was.
        pace.taken_at(at(1400), 30 << 20, 70_000_000, 8);
        pace.taken_at(at(2400), 40 << 20, 100_000_000, 8);
        assert!(pace.fast());
        // 2.5 MB/s, as on a 20 Mbit/s link: compress again.
        pace.taken_at(at(3400), 41 << 20, 102_500_000, 8);
        pace.taken_at(at(4400), 42 << 20, 105_000_000, 8);
        assert!(!pace.fast() && pace.slow());
        // An estimate that dips counts as no progress, never as a negative one.
        pace.taken_at(at(4500), 43 << 20, 90_000_000, 8);
        assert!(!pace.fast());
    }

    #[test]
    fn a_first_rate_that_is_not_slow_tries_stored_blocks() {
        let pace = Pace::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 30 MB/s while compressing: maybe the compressor's limit, so stored blocks are tried...
        pace.taken_at(at(0), 8 << 20, 20_000_000, 8);
        pace.taken_at(at(1000), 12 << 20, 50_000_000, 8);
        assert!(pace.fast());
        // ...and a link that takes them at 30 MB/s keeps them, being no slower stored.
        pace.taken_at(at(2000), 40 << 20, 80_000_000, 8);
        pace.taken_at(at(3000), 68 << 20, 110_000_000, 8);
        assert!(pace.fast());
        // Stored blocks at 12 MB/s: the link is the narrow part, compress again.
        pace.taken_at(at(4000), 80 << 20, 122_000_000, 8);
        pace.taken_at(at(5000), 92 << 20, 134_000_000, 8);
        assert!(!pace.fast() && pace.slow());
        // From now on only a rate above the fast mark stores again.
        pace.taken_at(at(6000), 102 << 20, 164_000_000, 8);
        pace.taken_at(at(7000), 112 << 20, 194_000_000, 8);
        assert!(!pace.fast());
    }

    #[test]
    fn hosts_waiting_for_frames_get_them_stored_once_past_the_burst() {
        let pace = Pace::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        pace.taken_at(at(10), 4 << 20, 8 << 20, 0);
        assert!(!pace.starved(), "the first burst tells nothing");
        // 12 MB/s of raw bytes, every queue empty: the compressor holds the stream back.
        pace.taken_at(at(100), 9 << 20, 18_000_000, 0);
        pace.taken_at(at(1100), 12 << 20, 30_000_000, 1);
        assert!(pace.starved() && !pace.fast());
        // The queues fill: the link is the narrow part again, and the rate decides.
        pace.taken_at(at(2100), 13 << 20, 32_000_000, 8);
        assert!(!pace.starved() && pace.slow());
    }
}
