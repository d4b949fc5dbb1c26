//! Words for messages: counted nouns ("1 test", "2 tests", never "1 tests")
//! and durations, each written one way wherever it appears.
//!
//! Durations come in four spellings, by what the reader does with them:
//! - [`seconds`] `1.234s`: measured times in columns (console, summaries, `list`);
//! - [`short_seconds`] `2.5s`, `5s`: a measured time in prose (JUnit messages);
//! - [`tenths`] `1.2s`: a rough elapsed time (progress lines);
//! - [`limit`] `1m 30s`: a configured limit, in the humantime syntax it is written in.

use std::time::Duration;

/// `n` and `noun`, plural unless `n` is 1 (every noun we count takes `-s`).
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `1.234s`: a measured time, always three decimals so that columns align.
pub fn seconds(duration: Duration) -> String {
    format!("{:.3}s", duration.as_secs_f64())
}

/// `2.5s`, `5s`: a measured time in milliseconds at most, without trailing zeros.
pub fn short_seconds(duration: Duration) -> String {
    let text = format!("{:.3}", duration.as_secs_f64());
    format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
}

/// `1.2s`: a rough elapsed time.
pub fn tenths(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// `90s` as `1m 30s`: a limit, spelt as settings are written.
pub fn limit(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular() {
        assert_eq!(count(1, "test"), "1 test");
        assert_eq!(count(0, "worker"), "0 workers");
        assert_eq!(count(3, "sample"), "3 samples");
    }

    #[test]
    fn each_duration_spelling() {
        let d = Duration::from_millis(2500);
        assert_eq!(seconds(d), "2.500s");
        assert_eq!(short_seconds(d), "2.5s");
        assert_eq!(short_seconds(Duration::from_secs(5)), "5s");
        assert_eq!(tenths(d), "2.5s");
        assert_eq!(limit(Duration::from_secs(90)), "1m 30s");
    }
}
