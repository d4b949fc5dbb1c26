//! Scale benchmark (issue 3): with 100,000 synthetic tests, how long do
//! building the queue, a 10-way partition and loading / saving the timings
//! file take? Run with `cargo bench --bench scale`.

use std::time::{Duration, Instant};

use cargo_paratest::model::{Invocation, TestCase};
use cargo_paratest::schedule::{longest_first, partition, timings::Timings};

const TESTS: usize = 100_000;

fn main() {
    let tests: Vec<TestCase> = (0..TESTS)
        .map(|i| {
            let group = format!("crate::suite_{}", i % 97);
            let name = format!("tests::case_{i:06}");
            TestCase::new(
                format!("{group} {name}"),
                group,
                name,
                Invocation::Shell(String::new()),
            )
        })
        .collect();
    // Five samples per test, skewed like real suites: most tests short, a few long.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let samples = tests.iter().flat_map(|t| {
        let base = if next() % 50 == 0 { 5_000 } else { 50 } + next() % 200;
        (0..5).map(move |k| {
            (
                t.id.clone(),
                Duration::from_millis(base + k),
                1_700_000_000 + k,
            )
        })
    });
    let timings = Timings::from_durations(samples.collect::<Vec<_>>());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("timings.json");
    let ((), save) = time(|| timings.save_to(&path).unwrap());
    let size = std::fs::metadata(&path).unwrap().len();
    let (loaded, load) = time(|| Timings::load(&path));
    assert!(loaded.1.is_none() && loaded.0.len() == TESTS);
    let (expected, expect) = time(|| loaded.0.expected_durations(&tests));
    let (order, queue) = time(|| longest_first(&tests, &expected, 0..tests.len()));
    let (shards, split) = time(|| partition::shard_of(&tests, &expected, 10));
    let (plan, planning) =
        time(|| partition::plan(&order.iter().map(|&i| expected[i]).collect::<Vec<_>>(), 8));

    let loads = partition::shard_loads(&expected, &shards, 10);
    let mean = loads.iter().sum::<Duration>().as_secs_f64() / 10.0;
    let max = loads.iter().max().unwrap().as_secs_f64();
    println!("{TESTS} tests, timings file {:.1} MB", size as f64 / 1e6);
    println!("  save timings file      {:>8.1} ms", ms(save));
    println!("  load timings file      {:>8.1} ms", ms(load));
    println!("  expected durations     {:>8.1} ms", ms(expect));
    println!("  longest-first queue    {:>8.1} ms", ms(queue));
    println!(
        "  10-way partition (LPT) {:>8.1} ms   balance max/mean {:.4}",
        ms(split),
        max / mean
    );
    println!(
        "  8-worker plan          {:>8.1} ms   makespan/lower bound {:.4}",
        ms(planning),
        plan.ratio()
    );
    let total = expect + queue + split;
    println!(
        "verdict: queue + partition {:.0} ms, load + save {:.0} ms (goal: well under 1 s each): {}",
        ms(total),
        ms(load + save),
        if total < Duration::from_secs(1) && load + save < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
}

fn time<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = work();
    (value, start.elapsed())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
