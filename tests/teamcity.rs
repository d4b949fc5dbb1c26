//! `--message-format teamcity`, read back with a strict parser of the
//! service-message grammar (TeamCity's "Service Messages" page): every
//! line of stdout is one message, every value is escaped, names and
//! messages round-trip, tests are paired per flow, a flaky test passes.

mod common;

use std::collections::BTreeMap;

use common::Project;

/// One `##teamcity[NAME key='value' ...]` line.
#[derive(Debug)]
struct Message {
    name: String,
    attributes: BTreeMap<String, String>,
}

impl Message {
    fn get(&self, key: &str) -> &str {
        self.attributes
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{} has no {key}: {self:?}", self.name))
    }
}

fn java_id(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses one line, rejecting anything the grammar does not allow: an
/// unescaped quote, bracket or pipe, an unknown escape, a missing `]`.
fn parse(line: &str) -> Result<Message, String> {
    let rest = line
        .strip_prefix("##teamcity[")
        .ok_or("no ##teamcity[ prefix")?;
    let name_end = rest.find([' ', '\t', ']']).ok_or("unterminated")?;
    let name = &rest[..name_end];
    if !java_id(name) {
        return Err(format!("bad message name {name:?}"));
    }
    let mut chars = rest[name_end..].chars().peekable();
    let mut attributes = BTreeMap::new();
    loop {
        let mut spaced = false;
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
            spaced = true;
        }
        match chars.peek() {
            Some(']') => {
                chars.next();
                break;
            }
            Some(_) if !spaced => return Err("no space before an attribute".into()),
            Some(_) => {}
            None => return Err("no closing ]".into()),
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ' ' || c == '\t' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if !java_id(&key) {
            return Err(format!("bad attribute name {key:?}"));
        }
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("no = after {key}"));
        }
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        if chars.next() != Some('\'') {
            return Err(format!("{key}'s value is not quoted"));
        }
        let mut value = String::new();
        loop {
            match chars.next().ok_or(format!("{key}'s value is not closed"))? {
                '\'' => break,
                '[' | ']' => return Err(format!("unescaped bracket in {key}")),
                '\n' | '\r' => return Err(format!("raw line break in {key}")),
                '|' => match chars.next().ok_or("| at the end")? {
                    '\'' => value.push('\''),
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    '|' => value.push('|'),
                    '[' => value.push('['),
                    ']' => value.push(']'),
                    '0' if chars.next() == Some('x') => {
                        let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .map_err(|_| format!("bad |0x{hex} in {key}"))?;
                        value.push(char::from_u32(code).ok_or("not a character")?);
                    }
                    other => return Err(format!("unknown escape |{other} in {key}")),
                },
                c => value.push(c),
            }
        }
        if attributes.insert(key.clone(), value).is_some() {
            return Err(format!("{key} twice"));
        }
    }
    if chars.next().is_some() {
        return Err("text after ]".into());
    }
    Ok(Message {
        name: name.to_string(),
        attributes,
    })
}

#[test]
fn the_parser_is_strict() {
    assert!(parse("##teamcity[testStarted name='a|'b|[c|]||d|n|0x2028' flowId='w1']").is_ok());
    for bad in [
        "##teamcity[testStarted name='it's']",
        "##teamcity[testStarted name='a[b']",
        "##teamcity[testStarted name='a]b']",
        "##teamcity[testStarted name='a|b']",
        "##teamcity[testStarted name='a'",
        "##teamcity[testStarted name=a]",
        "##teamcity[testStarted name='a']x",
        "teamcity[testStarted name='a']",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn service_messages_escape_names_pair_tests_per_flow_and_pass_flaky_tests() {
    let project = Project::copy("teamcity-names");
    let marks = project.scratch("marks");
    let run = project
        .paratest()
        .args([
            "run",
            "-j",
            "2",
            "--retries",
            "1",
            "--message-format",
            "teamcity",
        ])
        .env("FLAKY_MARKS", &marks)
        .run()
        .expect(1);
    let messages: Vec<Message> = run
        .stdout()
        .lines()
        .map(|line| parse(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(run.stderr().contains("Summary ["), "human text on stderr");
    assert_eq!(messages[0].name, "testRetrySupport");
    assert_eq!(messages[0].get("enabled"), "true");

    // Per flow: suites open and close, each test inside one, started and
    // finished once per attempt.
    let mut open_suite: BTreeMap<String, String> = BTreeMap::new();
    let mut running: BTreeMap<String, String> = BTreeMap::new();
    // name -> per attempt: failed?
    let mut attempts: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    let mut failures: BTreeMap<String, &Message> = BTreeMap::new();
    let mut outputs: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut suites = std::collections::BTreeSet::new();
    for message in &messages[1..] {
        let flow = message.get("flowId").to_string();
        match message.name.as_str() {
            "testSuiteStarted" => {
                assert!(!open_suite.contains_key(&flow), "nested suite in {flow}");
                suites.insert(message.get("name").to_string());
                open_suite.insert(flow, message.get("name").to_string());
            }
            "testSuiteFinished" => {
                assert_eq!(
                    open_suite.remove(&flow).as_deref(),
                    Some(message.get("name"))
                );
            }
            "testStarted" => {
                assert!(open_suite.contains_key(&flow), "test outside a suite");
                assert!(!running.contains_key(&flow), "two tests at once in {flow}");
                running.insert(flow, message.get("name").to_string());
                attempts
                    .entry(message.get("name").to_string())
                    .or_default()
                    .push(false);
            }
            "testFailed" | "testStdOut" | "testStdErr" => {
                let name = message.get("name");
                assert_eq!(
                    running.get(&flow).map(String::as_str),
                    Some(name),
                    "{message:?}"
                );
                if message.name == "testFailed" {
                    *attempts.get_mut(name).unwrap().last_mut().unwrap() = true;
                    failures.insert(name.to_string(), message);
                } else {
                    outputs.insert(
                        (message.name.clone(), name.to_string()),
                        message.get("out").into(),
                    );
                }
            }
            "testFinished" => {
                assert_eq!(running.remove(&flow).as_deref(), Some(message.get("name")));
                message
                    .get("duration")
                    .parse::<u64>()
                    .expect("duration in whole ms");
            }
            other => panic!("unexpected message {other}"),
        }
    }
    assert!(
        open_suite.is_empty() && running.is_empty(),
        "everything closed"
    );
    assert_eq!(
        suites.into_iter().collect::<Vec<_>>(),
        ["tests", "tests/group [a|b]'s"]
    );
    let expected: BTreeMap<String, Vec<bool>> = [
        ("it's [quoted] | piped.sh", vec![false]),
        ("passes.sh", vec![false]),
        ("flaky |retry|.sh", vec![true, false]),
        ("fails 'hard' [1].sh", vec![true, true]),
    ]
    .into_iter()
    .map(|(name, failed)| (name.to_string(), failed))
    .collect();
    assert_eq!(attempts, expected, "names round-trip; flaky passes at last");

    let failed = failures["fails 'hard' [1].sh"];
    assert_eq!(failed.get("message"), "exit status 1");
    let details = failed.get("details");
    assert!(
        details.contains("err: line one 'q' [b] |p\nerr: line two\nerr: before\u{2028}after"),
        "{details:?}"
    );
    let out = &outputs[&("testStdOut".to_string(), "fails 'hard' [1].sh".to_string())];
    assert_eq!(out, "out: it's [here] | now");
    assert!(outputs.contains_key(&("testStdErr".to_string(), "fails 'hard' [1].sh".to_string())));
    assert!(
        !outputs.keys().any(|(_, name)| name == "passes.sh"),
        "output of failures only"
    );
}

/// Every line of a run's stdout, parsed strictly.
fn messages_of(run: &common::Run) -> Vec<Message> {
    run.stdout()
        .lines()
        .map(|line| parse(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// TeamCity reads a flow as sequential: at most one test is open in a flow
/// at any time, and each test finishes in the flow it started in.
fn assert_one_open_test_per_flow(messages: &[Message]) {
    let mut running: BTreeMap<String, String> = BTreeMap::new();
    for message in messages {
        match message.name.as_str() {
            "testStarted" => {
                let flow = message.get("flowId").to_string();
                if let Some(open) = running.get(&flow) {
                    panic!(
                        "{} started in {flow} while {open} is open: {messages:#?}",
                        message.get("name")
                    );
                }
                running.insert(flow, message.get("name").to_string());
            }
            "testFinished" => {
                let flow = message.get("flowId");
                assert_eq!(
                    running.remove(flow).as_deref(),
                    Some(message.get("name")),
                    "finished in {flow}"
                );
            }
            _ => {}
        }
    }
    assert!(running.is_empty(), "left open: {running:?}");
}

#[test]
fn the_tests_of_a_cargo_batch_never_overlap_in_their_flow() {
    let project = Project::copy("cargo-batches");
    // Timings say the tests are short: the third run batches them (see
    // tests/batches.rs).
    for _ in 0..2 {
        project
            .paratest()
            .args(["-j", "1"])
            .env("RUST_BACKTRACE", "0")
            .run();
    }
    let run = project
        .paratest()
        .args(["-j", "1", "--message-format", "teamcity"])
        .env("RUST_BACKTRACE", "0")
        .run()
        .expect(1);
    let messages = messages_of(&run);
    assert_one_open_test_per_flow(&messages);
    let started: Vec<&Message> = messages
        .iter()
        .filter(|m| m.name == "testStarted")
        .collect();
    // As many as the fixture's tests (tests/batches.rs counts them the same way).
    let tests = project
        .paratest()
        .args(["list", "--message-format", "json"])
        .run()
        .expect(0)
        .stdout()
        .lines()
        .count();
    assert_eq!(started.len(), tests, "every test once");
    let failed: Vec<&str> = messages
        .iter()
        .filter(|m| m.name == "testFailed")
        .map(|m| m.get("name"))
        .collect();
    assert_eq!(failed, ["tests::panics"]);
    // Real durations, not the time between two messages told together.
    assert!(
        messages
            .iter()
            .filter(|m| m.name == "testFinished")
            .all(|m| m.get("duration").parse::<u64>().is_ok())
    );
}

#[test]
fn a_pytest_file_is_one_teamcity_test_per_pytest_test_with_its_own_traceback() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("teamcity-pytest");
    let run = project
        .paratest()
        .args(["run", "-j", "2", "--message-format", "teamcity"])
        .run()
        .expect(1);
    let messages = messages_of(&run);
    assert_one_open_test_per_flow(&messages);
    let named = |kind: &str| -> Vec<&str> {
        messages
            .iter()
            .filter(|m| m.name == kind)
            .map(|m| m.get("name"))
            .collect()
    };
    let mut started = named("testStarted");
    started.sort_unstable();
    assert_eq!(
        started,
        [
            "TestGroup::test_in_class",
            "test_fails_deep",
            "test_passes",
            "test_skipped"
        ]
    );
    assert_eq!(named("testFailed"), ["test_fails_deep"]);
    assert_eq!(named("testIgnored"), ["test_skipped"]);
    let ignored = messages.iter().find(|m| m.name == "testIgnored").unwrap();
    assert!(
        ignored.get("message").contains("not on this machine"),
        "{ignored:?}"
    );
    let failed = messages.iter().find(|m| m.name == "testFailed").unwrap();
    assert!(
        failed.get("message").contains("the value is not two"),
        "the case's own message: {failed:?}"
    );
    let details = failed.get("details");
    assert!(
        details.contains("helper_that_breaks(3)") && details.contains("def helper_that_breaks"),
        "the traceback, not pytest's progress: {details:?}"
    );
    assert!(
        !details.contains("[100%]") && !details.contains("test_passes"),
        "nothing of the other tests: {details:?}"
    );
    let out = messages
        .iter()
        .find(|m| m.name == "testStdOut")
        .expect("the failing test's output");
    assert_eq!(out.get("name"), "test_fails_deep");
    assert_eq!(out.get("out").trim_end(), "printed by test_fails_deep");
    // Every pytest test is in its file's suite.
    let suites: std::collections::BTreeSet<&str> = messages
        .iter()
        .filter(|m| m.name == "testSuiteStarted")
        .map(|m| m.get("name"))
        .collect();
    assert_eq!(suites.len(), 1, "{suites:?}");
}
