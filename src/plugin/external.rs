//! External plugins: an executable `paratest-plugin-NAME` on `PATH` (or the
//! shell `command` of `[plugin.NAME]`) discovers the tests and prints one
//! JSON object per line, `{"id", "group"?, "argv": [...]}` or
//! `{"id", "group"?, "shell": "..."}`; the core runs each one in a workspace.
//!
//! A plugin that also answers `serve` says so with one more line,
//! `{"capabilities": ["serve"]}`: each worker then starts `PROGRAM serve`
//! once and hands it the test ids (the protocol: [`crate::exec::session`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use super::{DiscoverContext, Plugin};
use crate::error::{Error, Kind, Result};
use crate::model::{Invocation, TestCase};

/// An external plugin found for `--plugin NAME`.
pub struct ExternalPlugin {
    /// `NAME`, leaked once so that [`Plugin::name`] can hand out a `&'static str`.
    name: &'static str,
    description: &'static str,
    program: Program,
    /// `[plugin.NAME]` without `command`, passed on as `PARATEST_PLUGIN_SETTINGS`.
    settings: toml::Table,
    /// Discovery printed `{"capabilities": ["serve"]}`.
    serves: std::sync::atomic::AtomicBool,
}

/// How the plugin is started.
#[derive(Debug, Clone)]
enum Program {
    /// `paratest-plugin-NAME` found on `PATH`, run as `PROGRAM discover`.
    Executable(PathBuf),
    /// `[plugin.NAME] command`, run as `sh -c "COMMAND discover"`.
    Shell(String),
}

impl ExternalPlugin {
    /// The plugin called `name`: `[plugin.NAME] command` if set, else
    /// `paratest-plugin-NAME` on `PATH`; `None` when there is neither.
    pub fn find(name: &str, settings: Option<&toml::Table>) -> Result<Option<ExternalPlugin>> {
        let mut settings = settings.cloned().unwrap_or_default();
        let program = match settings.remove("command") {
            Some(toml::Value::String(command)) if !command.trim().is_empty() => {
                Program::Shell(command)
            }
            Some(_) => {
                return Err(Error::usage(format!(
                    "paratest.toml: [plugin.{name}] command must be a non-empty string \
                     (a shell command that answers `discover`)"
                )));
            }
            None => {
                if !valid_name(name) {
                    return Err(Error::usage(format!(
                        "invalid plugin name `{name}`: use lowercase letters, digits, `-` and `_`"
                    )));
                }
                match on_path(&format!("paratest-plugin-{name}")) {
                    Some(path) => Program::Executable(path),
                    None => return Ok(None),
                }
            }
        };
        let description = match &program {
            Program::Executable(_) => format!("external plugin paratest-plugin-{name}"),
            Program::Shell(command) => format!("external plugin `{command}`"),
        };
        Ok(Some(ExternalPlugin {
            name: Box::leak(name.to_string().into_boxed_str()),
            description: Box::leak(description.into_boxed_str()),
            program,
            settings,
            serves: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// What error messages call the plugin.
    fn display(&self) -> String {
        match &self.program {
            Program::Executable(path) => format!("`{} discover`", path.display()),
            Program::Shell(command) => format!("`{command} discover`"),
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The first executable file called `program` in a `PATH` directory.
fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

impl Plugin for ExternalPlugin {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn discover(&self, ctx: &DiscoverContext<'_>) -> Result<Vec<TestCase>> {
        let mut command = match &self.program {
            Program::Executable(path) => {
                let mut command = Command::new(path);
                command.arg("discover");
                command
            }
            Program::Shell(line) => {
                let mut command = Command::new("sh");
                command.arg("-c").arg(format!("{line} discover"));
                command
            }
        };
        let settings = serde_json::to_string(&self.settings).unwrap_or_else(|_| "{}".into());
        command
            .current_dir(ctx.source)
            .env("PARATEST_SOURCE", ctx.source)
            .env("PARATEST_PLUGIN_SETTINGS", settings);
        let output = match super::capture::capture(ctx, command) {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::with_cause(
                    Kind::Usage,
                    format!("plugin `{}`: cannot start {}", self.name, self.display()),
                    e,
                ));
            }
            Err(e) => {
                return Err(Error::usage(format!(
                    "plugin `{}`: {} {e}",
                    self.name,
                    self.display()
                )));
            }
        };
        let stderr = super::capture::excerpt(&output.stderr, "    ");
        let fail = |why: String| {
            let mut message = format!("plugin `{}`: {} {why}", self.name, self.display());
            if !stderr.trim().is_empty() {
                message.push_str("\n  plugin stderr:\n");
                message.push_str(&stderr);
            }
            Error::usage(message.trim_end().to_string())
        };
        if !output.status.success() {
            return Err(fail(format!("failed ({})", output.status)));
        }
        let stdout = String::from_utf8(output.stdout)
            .map_err(|e| fail(format!("printed output that is not UTF-8 ({e})")))?;
        let (tests, serves) = parse(&stdout, self.name, ctx.test_args).map_err(&fail)?;
        self.serves
            .store(serves, std::sync::atomic::Ordering::Relaxed);
        if tests.is_empty() {
            return Err(fail(
                "printed no test: it must print one JSON object per test, one per line".into(),
            ));
        }
        Ok(tests)
    }

    /// `PROGRAM serve`, when discovery said the plugin serves.
    fn serve(&self, _tests: &[&TestCase]) -> Option<Invocation> {
        if !self.serves.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        Some(match &self.program {
            Program::Executable(path) => Invocation::Argv {
                program: path.clone(),
                args: vec!["serve".into()],
            },
            Program::Shell(line) => Invocation::Shell(format!("{line} serve")),
        })
    }
}

/// Reads the plugin's answer: the tests, and whether a capabilities line
/// said the plugin serves. Errors name the line (1-based).
fn parse(
    stdout: &str,
    plugin: &str,
    test_args: &[String],
) -> Result<(Vec<TestCase>, bool), String> {
    let mut tests = Vec::new();
    let mut serves = false;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, text) in stdout.lines().enumerate() {
        let number = index + 1;
        if text.trim().is_empty() {
            continue;
        }
        let at = |why: String| {
            format!(
                "printed a bad line {number}: {why}\n  line {number}: {}",
                super::capture::excerpt(text.as_bytes(), "").trim_end()
            )
        };
        if let Some(capabilities) = capabilities(text).map_err(at)? {
            serves |= capabilities.iter().any(|c| c == "serve");
            continue;
        }
        let test = parse_line(text, plugin, test_args).map_err(at)?;
        if let Some(first) = seen.insert(test.id.clone(), number) {
            return Err(at(format!(
                "duplicate id `{}` (first on line {first})",
                crate::report::console::printable(&test.id)
            )));
        }
        tests.push(test);
    }
    Ok((tests, serves))
}

/// The capabilities of a `{"capabilities": [...]}` line; `None` for a test's line.
fn capabilities(text: &str) -> Result<Option<Vec<String>>, String> {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str(text) else {
        return Ok(None);
    };
    let Some(list) = object.get("capabilities") else {
        return Ok(None);
    };
    if object.len() != 1 {
        return Err("a `capabilities` line has no other key".into());
    }
    list.as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|c| c.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .map(Some)
        .ok_or_else(|| "`capabilities` must be an array of strings".to_string())
}

fn parse_line(text: &str, plugin: &str, test_args: &[String]) -> Result<TestCase, String> {
    use serde_json::Value;
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON at column {}", e.column()))?;
    let Value::Object(mut object) = value else {
        return Err("expected a JSON object".into());
    };
    let string = |value: Value, key: &str| match value {
        Value::String(s) => Ok(s),
        _ => Err(format!("`{key}` must be a string")),
    };
    let id = string(object.remove("id").ok_or("missing `id`")?, "id")?;
    if id.is_empty() || id.chars().any(char::is_control) {
        return Err("`id` must be non-empty, without control characters".into());
    }
    let group = match object.remove("group") {
        Some(group) => string(group, "group")?,
        None => plugin.to_string(),
    };
    let invocation = match (object.remove("argv"), object.remove("shell")) {
        (Some(_), Some(_)) => return Err("both `argv` and `shell`: give one".into()),
        (None, None) => return Err("neither `argv` nor `shell`: give one".into()),
        (Some(argv), None) => {
            let Value::Array(items) = argv else {
                return Err("`argv` must be an array of strings".into());
            };
            let mut words = items
                .into_iter()
                .map(|item| string(item, "argv").map(OsString::from))
                .collect::<Result<Vec<_>, _>>()?;
            if words.is_empty() {
                return Err("`argv` is empty".into());
            }
            let program = PathBuf::from(words.remove(0));
            if program.as_os_str().is_empty() {
                return Err("`argv[0]` is empty".into());
            }
            words.extend(test_args.iter().map(OsString::from));
            Invocation::Argv {
                program,
                args: words,
            }
        }
        (None, Some(shell)) => {
            let mut line = string(shell, "shell")?;
            if line.trim().is_empty() {
                return Err("`shell` is empty".into());
            }
            for arg in test_args {
                line.push(' ');
                line.push_str(&shell_words::quote(arg));
            }
            Invocation::Shell(line)
        }
    };
    if let Some(key) = object.keys().next() {
        return Err(format!(
            "unknown key `{key}` (known: id, group, argv, shell)"
        ));
    }
    Ok(TestCase {
        name: id.clone(),
        id,
        group,
        invocation,
        cwd: PathBuf::new(),
        env: Vec::new(),
        ignored: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(stdout: &str) -> String {
        parse(stdout, "x", &[]).unwrap_err()
    }

    #[test]
    fn a_capabilities_line_says_the_plugin_serves() {
        let ok = "{\"id\": \"a\", \"argv\": [\"true\"]}\n";
        let (tests, serves) = parse(ok, "x", &[]).unwrap();
        assert_eq!((tests.len(), serves), (1, false));
        let with = format!("{{\"capabilities\": [\"serve\", \"later\"]}}\n{ok}");
        let (tests, serves) = parse(&with, "x", &[]).unwrap();
        assert_eq!((tests.len(), serves), (1, true));
        assert!(error(&format!("{ok}{{\"capabilities\": \"serve\"}}")).contains("array"));
    }

    #[test]
    fn reads_argv_and_shell_lines_and_skips_blank_ones() {
        let (tests, _) = parse(
            "{\"id\": \"a\", \"argv\": [\"sh\", \"a.sh\"]}\n\n  \n{\"id\": \"b\", \"group\": \"g\", \"shell\": \"exit 0\"}\n",
            "x",
            &["--v".to_string()],
        )
        .unwrap();
        assert_eq!(tests.len(), 2);
        assert_eq!(tests[0].group, "x");
        assert_eq!(
            tests[0].invocation,
            Invocation::Argv {
                program: "sh".into(),
                args: vec!["a.sh".into(), "--v".into()]
            }
        );
        assert_eq!(tests[1].group, "g");
        assert_eq!(tests[1].invocation, Invocation::Shell("exit 0 --v".into()));
    }

    #[test]
    fn every_malformed_line_names_its_number() {
        let ok = "{\"id\": \"a\", \"argv\": [\"true\"]}\n";
        for (bad, why) in [
            ("{\"id\": ", "invalid JSON"),
            ("[1]", "object"),
            ("{\"argv\": [\"true\"]}", "missing `id`"),
            ("{\"id\": 3, \"argv\": [\"true\"]}", "`id` must be a string"),
            ("{\"id\": \"b\"}", "neither"),
            (
                "{\"id\": \"b\", \"argv\": [\"true\"], \"shell\": \"true\"}",
                "both",
            ),
            ("{\"id\": \"b\", \"argv\": []}", "empty"),
            ("{\"id\": \"b\", \"argv\": [\"true\", 1]}", "`argv`"),
            (
                "{\"id\": \"b\", \"shell\": \"true\", \"cwd\": \"x\"}",
                "unknown key `cwd`",
            ),
            (
                "{\"id\": \"a\", \"shell\": \"true\"}",
                "duplicate id `a` (first on line 1)",
            ),
        ] {
            let message = error(&format!("{ok}\n{bad}\n"));
            assert!(message.contains("line 3"), "{bad}: {message}");
            assert!(message.contains(why), "{bad}: {message}");
        }
    }

    #[test]
    fn names_must_be_plain() {
        assert!(valid_name("my-plugin_2"));
        assert!(!valid_name("../x") && !valid_name("") && !valid_name("A"));
    }
}
