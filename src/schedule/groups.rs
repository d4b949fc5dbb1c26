//! Test groups (`[test-groups.NAME]`): which queued test may start, given
//! the groups of the tests running now. A group's `max-threads` caps how
//! many of its tests run at once over all workers; an `exclusive` group's
//! test runs with nothing else beside it.

use crate::config::TestGroup;

/// The limits of every test and what is running, by test index.
#[derive(Debug, Clone, Default)]
pub struct GroupLimits {
    /// Index into `limits` of each test's group; `None` = no group.
    group_of: Vec<Option<usize>>,
    limits: Vec<TestGroup>,
    /// Tests running now, per group.
    running: Vec<usize>,
    /// Tests running now, in all.
    total: usize,
    /// An exclusive test is running.
    exclusive_running: bool,
}

impl GroupLimits {
    /// `group_of[index]` names each test's group (`None`: no group);
    /// `groups` looks a name up in `[test-groups]`.
    pub fn new<'a>(
        group_of: impl IntoIterator<Item = Option<&'a str>>,
        groups: &std::collections::BTreeMap<String, TestGroup>,
    ) -> GroupLimits {
        let names: Vec<&String> = groups.keys().collect();
        let group_of = group_of
            .into_iter()
            .map(|name| name.and_then(|name| names.iter().position(|n| *n == name)))
            .collect();
        GroupLimits {
            group_of,
            limits: groups.values().copied().collect(),
            running: vec![0; groups.len()],
            total: 0,
            exclusive_running: false,
        }
    }

    /// Whether any test has a group: without one, nothing is ever held back.
    pub fn is_active(&self) -> bool {
        self.group_of.iter().any(Option::is_some)
    }

    fn exclusive(&self, index: usize) -> bool {
        self.group_of
            .get(index)
            .copied()
            .flatten()
            .is_some_and(|g| self.limits[g].exclusive == Some(true))
    }

    /// Whether the test may start now.
    pub fn can_start(&self, index: usize) -> bool {
        if self.exclusive_running {
            return false;
        }
        if self.exclusive(index) && self.total > 0 {
            return false;
        }
        match self.group_of.get(index).copied().flatten() {
            Some(group) => self.limits[group]
                .max_threads
                .is_none_or(|max| self.running[group] < max),
            None => true,
        }
    }

    pub fn started(&mut self, index: usize) {
        self.total += 1;
        if self.exclusive(index) {
            self.exclusive_running = true;
        }
        if let Some(group) = self.group_of.get(index).copied().flatten() {
            self.running[group] += 1;
        }
    }

    pub fn finished(&mut self, index: usize) {
        self.total = self.total.saturating_sub(1);
        if self.exclusive(index) {
            self.exclusive_running = false;
        }
        if let Some(group) = self.group_of.get(index).copied().flatten() {
            self.running[group] = self.running[group].saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(groups: &[(&str, TestGroup)], of: &[Option<&str>]) -> GroupLimits {
        let map = groups.iter().map(|(n, g)| (n.to_string(), *g)).collect();
        GroupLimits::new(of.iter().copied(), &map)
    }

    #[test]
    fn max_threads_and_exclusive() {
        let one = TestGroup {
            max_threads: Some(1),
            exclusive: None,
        };
        let alone = TestGroup {
            max_threads: None,
            exclusive: Some(true),
        };
        let mut l = limits(
            &[("db", one), ("solo", alone)],
            &[Some("db"), Some("db"), None, Some("solo")],
        );
        assert!(l.can_start(0));
        l.started(0);
        assert!(!l.can_start(1), "db holds one at a time");
        assert!(l.can_start(2));
        assert!(!l.can_start(3), "exclusive waits for the others");
        l.finished(0);
        assert!(l.can_start(1) && l.can_start(3));
        l.started(3);
        assert!(
            !l.can_start(1) && !l.can_start(2),
            "nothing beside an exclusive test"
        );
        l.finished(3);
        assert!(l.can_start(2));
    }
}
