//! Which discovered tests a run takes, by `cargo test`'s rules: name
//! filters (substrings, or exact with `--exact`), `--skip PATTERN`, and
//! `--ignored` / `--include-ignored`, from our own flags and, for libtest,
//! from the arguments after `--` as well (as nextest reads them).

use crate::cli::SelectArgs;
use crate::config::IgnoredMode;
use crate::error::{Error, Result};
use crate::libtest;
use crate::model::TestCase;

/// The selection of one `run` or `list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub filters: Vec<String>,
    pub skip: Vec<String>,
    pub exact: bool,
    pub ignored: IgnoredMode,
    /// The arguments after `--` that are not selection: for every test process.
    pub test_args: Vec<String>,
}

impl Selection {
    /// Our flags, plus the libtest selection arguments after `--` when the
    /// plugin runs libtest tests (`cargo`); other plugins get `--` as is.
    pub fn new(select: &SelectArgs, test_args: &[String], libtest_args: bool) -> Result<Selection> {
        let mut selection = Selection {
            filters: select.filters.clone(),
            skip: select.skip.clone(),
            exact: select.exact,
            ignored: IgnoredMode::Skip,
            test_args: test_args.to_vec(),
        };
        let (mut ignored, mut include_ignored) = (select.ignored, select.include_ignored);
        if libtest_args {
            let split = libtest::split_test_args(test_args);
            selection.filters.extend(split.filters);
            selection.skip.extend(split.skip);
            selection.exact |= split.exact;
            ignored |= split.ignored;
            include_ignored |= split.include_ignored;
            selection.test_args = split.pass_on;
        }
        if ignored && include_ignored {
            return Err(Error::usage(
                "--ignored and --include-ignored cannot be used together",
            ));
        }
        selection.ignored = if ignored {
            IgnoredMode::Only
        } else if include_ignored {
            IgnoredMode::Include
        } else {
            IgnoredMode::Skip
        };
        Ok(selection)
    }

    /// Whether `pattern` picks `test`: its name or its id contains it (or
    /// equals it, with `--exact`).
    fn picks(&self, pattern: &str, test: &TestCase) -> bool {
        if self.exact {
            test.name == pattern || test.id == pattern
        } else {
            test.name.contains(pattern) || test.id.contains(pattern)
        }
    }

    /// Whether `test` is in the run (run, or reported as skipped).
    pub fn matches(&self, test: &TestCase) -> bool {
        let by_name = self.filters.is_empty() || self.filters.iter().any(|f| self.picks(f, test));
        let skipped = self.skip.iter().any(|s| self.picks(s, test));
        by_name && !skipped && (self.ignored != IgnoredMode::Only || test.ignored)
    }

    /// Whether a selected test is reported as skipped instead of run.
    pub fn skipped(&self, test: &TestCase) -> bool {
        test.ignored && self.ignored == IgnoredMode::Skip
    }

    /// Why nothing was selected, for the "no tests to run" message.
    pub fn why_empty(&self, selected: usize) -> String {
        let mut reasons = Vec::new();
        if !self.filters.is_empty() {
            reasons.push(format!(
                "no test name matches {}",
                quoted_list(&self.filters)
            ));
        }
        if !self.skip.is_empty() {
            reasons.push(format!("--skip {}", quoted_list(&self.skip)));
        }
        if self.ignored == IgnoredMode::Only {
            reasons.push("--ignored keeps only ignored tests".to_string());
        }
        if selected > 0 {
            reasons.push(if selected == 1 {
                "the 1 test selected is ignored".to_string()
            } else {
                format!("the {selected} tests selected are all ignored")
            });
        }
        let mut text = if reasons.is_empty() {
            "the plugin found no test".to_string()
        } else {
            reasons.join("; ")
        };
        // `cargo paratest lsit` makes `lsit` a filter: say what it could have meant.
        let subcommands: Vec<&str> = crate::cli::SUBCOMMANDS
            .iter()
            .copied()
            .filter(|s| *s != "help")
            .collect();
        let near = |word: &str| {
            subcommands
                .iter()
                .copied()
                .filter(|sub| strsim::damerau_levenshtein(word, sub) <= 2)
                .min_by_key(|sub| strsim::damerau_levenshtein(word, sub))
        };
        if let Some((word, meant)) = self
            .filters
            .iter()
            .find_map(|f| near(f).map(|sub| (f, sub)))
        {
            text.push_str(&format!(
                "\n  note: `{word}` was read as a test filter, not a subcommand; \
                 did you mean `{meant}`? (subcommands: {})",
                subcommands.join(", ")
            ));
        } else if let Some(word) = self.filters.first().filter(|word| {
            !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        }) {
            // A word such as `archive` or `completions` from another tool's
            // habits: it matched nothing as a filter; say it is not a command.
            text.push_str(&format!(
                "\n  note: `{word}` was read as a test filter: it is not a subcommand \
                 (subcommands: {})",
                subcommands.join(", ")
            ));
        }
        text
    }
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
