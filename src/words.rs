//! Counted nouns for messages: "1 test", "2 tests", never "1 tests".

/// `n` and `noun`, plural unless `n` is 1 (every noun we count takes `-s`).
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_is_singular() {
        assert_eq!(super::count(1, "test"), "1 test");
        assert_eq!(super::count(0, "worker"), "0 workers");
        assert_eq!(super::count(3, "sample"), "3 samples");
    }
}
