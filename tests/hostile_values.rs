//! Absurd values, from every layer (flags, `PARATEST_*`, `paratest.toml`),
//! are usage errors: exit 2, a message naming the option and its range,
//! never a panic, an abort or a run.

mod common;

use common::Project;

/// One hostile input: extra arguments, environment, `paratest.toml` profile
/// lines, and what the error message must name.
struct Case {
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    toml: &'static str,
    names: &'static [&'static str],
}

const fn flags(args: &'static [&'static str], names: &'static [&'static str]) -> Case {
    Case {
        args,
        env: &[],
        toml: "",
        names,
    }
}

const fn env(env: &'static [(&'static str, &'static str)], names: &'static [&'static str]) -> Case {
    Case {
        args: &[],
        env,
        toml: "",
        names,
    }
}

const fn toml(toml: &'static str, names: &'static [&'static str]) -> Case {
    Case {
        args: &[],
        env: &[],
        toml,
        names,
    }
}

const CASES: &[Case] = &[
    flags(
        &["--timeout", "18446744073709551615s"],
        &["--timeout", "7days"],
    ),
    flags(&["--timeout", "0s"], &["--timeout", "more than 0s"]),
    flags(&["--timeout", "99999999999999999999999s"], &["--timeout"]),
    flags(&["--slow-timeout", "0s"], &["--slow-timeout"]),
    flags(&["--discovery-timeout", "0s"], &["--discovery-timeout"]),
    flags(
        &["--discovery-timeout", "8days"],
        &["--discovery-timeout", "7days"],
    ),
    flags(&["--partition", "1/1000000000"], &["--partition", "100000"]),
    flags(&["--partition", "0/3"], &["--partition"]),
    flags(&["--partition", "4/3"], &["--partition", "between 1 and 3"]),
    flags(&["--partition", "1/18446744073709551616"], &["--partition"]),
    flags(&["-j", "0"], &["--workers", "between 1 and 1024"]),
    flags(&["-j", "1000000"], &["--workers", "1024"]),
    flags(&["-j", "18446744073709551616"], &["--workers"]),
    flags(
        &["--retries", "4294967295"],
        &["--retries", "between 0 and 100"],
    ),
    flags(&["--retries", "-1"], &["--retries"]),
    flags(&["-j", "-3"], &["--workers"]),
    flags(&["list", "-j", "-3"], &["--workers"]),
    flags(&["list", "-j", "0"], &["--workers", "1024"]),
    flags(&["list", "--partition", "1/1000000000"], &["--partition"]),
    env(&[("PARATEST_WORKERS", "0")], &["PARATEST_WORKERS", "1024"]),
    env(
        &[("PARATEST_TIMEOUT", "18446744073709551615s")],
        &["PARATEST_TIMEOUT", "7days"],
    ),
    env(&[("PARATEST_TIMEOUT", "0s")], &["PARATEST_TIMEOUT"]),
    env(
        &[("PARATEST_PARTITION", "1/1000000000")],
        &["PARATEST_PARTITION", "100000"],
    ),
    env(
        &[("PARATEST_RETRIES", "1000000")],
        &["PARATEST_RETRIES", "100"],
    ),
    env(
        &[("PARATEST_DISCOVERY_TIMEOUT", "0s")],
        &["PARATEST_DISCOVERY_TIMEOUT"],
    ),
    Case {
        args: &["--partition", "auto"],
        env: &[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "1000000000")],
        toml: "",
        names: &["--partition", "CI_NODE_TOTAL", "100000"],
    },
    toml("workers = 0", &["`workers` in", "paratest.toml", "1024"]),
    toml("workers = 100000", &["`workers` in", "1024"]),
    toml("workers = -1", &["workers", "paratest.toml"]),
    toml(
        "timeout = \"18446744073709551615s\"",
        &["`timeout` in", "7days"],
    ),
    toml("timeout = \"0s\"", &["`timeout` in"]),
    toml("slow-timeout = \"0s\"", &["`slow-timeout` in"]),
    toml(
        "partition = \"1/1000000000\"",
        &["`partition` in", "100000"],
    ),
    toml("retries = 100000", &["`retries` in", "100"]),
    toml("discovery-timeout = \"0s\"", &["`discovery-timeout` in"]),
];

#[test]
fn every_hostile_value_is_a_usage_error_naming_the_option() {
    let project = Project::copy("isolation-suite");
    let original = project.read("paratest.toml");
    let mut failures = Vec::new();
    for case in CASES {
        let config = original.replace(
            "[profile.default]\n",
            &format!("[profile.default]\n{}\n", case.toml),
        );
        std::fs::write(project.path.join("paratest.toml"), config).unwrap();
        let mut paratest = project.paratest().args(case.args);
        for (name, value) in case.env {
            paratest = paratest.env(name, value);
        }
        let run = paratest.run();
        let stderr = run.stderr();
        let label = format!("{:?} {:?} {:?}", case.args, case.env, case.toml);
        if run.output.status.code() != Some(2) {
            failures.push(format!(
                "{label}: exit {:?}, not 2\n{stderr}",
                run.output.status
            ));
        } else if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            failures.push(format!("{label}: panic text\n{stderr}"));
        } else if let Some(missing) = case.names.iter().find(|n| !stderr.contains(*n)) {
            failures.push(format!("{label}: message lacks `{missing}`\n{stderr}"));
        }
        // A refused value runs nothing: no test wrote its output.
        if project.path.join(".paratest/runs").exists() {
            failures.push(format!("{label}: a run started"));
            let _ = std::fs::remove_dir_all(project.path.join(".paratest"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
