//! The `command` plugin, the original ParaTest model: every file under the
//! source that matches `pattern` is a test, run with the user's `command`
//! shell template in which `{file}`, `{name}`, `{workspace}` and `{id}` are replaced.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use super::{DiscoverContext, Plugin, Registration};
use crate::error::{Error, Kind, Result};
use crate::model::{Invocation, TestCase};

pub struct CommandPlugin;

inventory::submit!(Registration {
    plugin: &CommandPlugin,
    detection_order: super::detection_order::COMMAND,
});

/// What a test runs with when `[plugin.command]` sets no `command`.
pub const DEFAULT_COMMAND: &str = "sh {file}";

/// `[plugin.command]` in `paratest.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// One glob, or a list of them.
    pattern: Option<Patterns>,
    command: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "`pattern` must be a glob string or a list of glob strings"
)]
enum Patterns {
    One(String),
    Many(Vec<String>),
}

impl Plugin for CommandPlugin {
    fn name(&self) -> &'static str {
        "command"
    }

    fn description(&self) -> &'static str {
        "files matching `pattern`, each run with a shell `command` (the original ParaTest model)"
    }

    fn discover(&self, ctx: &DiscoverContext<'_>) -> Result<Vec<TestCase>> {
        let settings = settings(ctx.settings)?;
        let patterns = if ctx.patterns.is_empty() {
            match settings.pattern {
                Some(Patterns::One(pattern)) => vec![pattern],
                Some(Patterns::Many(patterns)) => patterns,
                None => Vec::new(),
            }
        } else {
            ctx.patterns.to_vec()
        };
        if patterns.is_empty() {
            return Err(Error::usage(
                "the command plugin needs a pattern: set `pattern = \"tests/**/*.sh\"` \
                 (or a list of globs) in [plugin.command] of paratest.toml, \
                 or pass --test-pattern GLOB",
            ));
        }
        let globs = glob_set(&patterns)?;
        let template = settings.command.as_deref().unwrap_or(DEFAULT_COMMAND);
        walk(ctx.source, ctx.excluded, &globs)?
            .iter()
            .map(|file| test_case(file, template, ctx.test_args))
            .collect()
    }
}

fn settings(table: Option<&toml::Table>) -> Result<Settings> {
    let Some(table) = table else {
        return Ok(Settings::default());
    };
    Settings::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        Error::usage(format!(
            "paratest.toml: [plugin.command]: {}",
            e.message().trim_end()
        ))
    })
}

/// The globs, matched against paths relative to the source with `/`
/// separators; `*` stays inside one directory, `**` crosses them.
fn glob_set(patterns: &[String]) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let trimmed = pattern.strip_prefix("./").unwrap_or(pattern);
        let glob: Glob = GlobBuilder::new(trimmed)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| {
                Error::with_cause(Kind::Usage, format!("invalid test pattern `{pattern}`"), e)
            })?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|e| Error::with_cause(Kind::Usage, "invalid test patterns", e))
}

/// The matching files among those a workspace copy holds (the one walk of
/// [`crate::workspace::walk_source`]), in path order. A symbolic link to a
/// file counts as a file; links to directories are not followed.
fn walk(root: &Path, excluded: &[PathBuf], globs: &GlobSet) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    crate::workspace::walk_source(root, excluded, &mut |relative, entry, kind| {
        if (kind.is_file() || (kind.is_symlink() && entry.path().is_file()))
            && globs.is_match(relative)
        {
            files.push(relative.to_path_buf());
        }
        Ok(())
    })
    .map_err(|e| {
        Error::with_cause(
            Kind::CannotRun,
            format!("cannot list {} for test files", root.display()),
            e,
        )
    })?;
    Ok(files)
}

/// One file as a test: id = its path, group = its directory, name = its file name.
fn test_case(file: &Path, template: &str, test_args: &[String]) -> Result<TestCase> {
    let id = file.to_str().ok_or_else(|| {
        Error::usage(format!(
            "the test file {} has a name that is not UTF-8; rename it or narrow the pattern",
            file.display()
        ))
    })?;
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or(id);
    let stem = file.file_stem().and_then(|n| n.to_str()).unwrap_or(name);
    let group = match file.parent().and_then(Path::to_str) {
        Some("") | None => ".",
        Some(dir) => dir,
    };
    let mut line = command_line(template, id, stem);
    for arg in test_args {
        line.push(' ');
        line.push_str(&shell_words::quote(arg));
    }
    Ok(TestCase {
        id: id.to_string(),
        group: group.to_string(),
        name: name.to_string(),
        invocation: Invocation::Shell(line),
        cwd: PathBuf::new(),
        env: Vec::new(),
        ignored: false,
    })
}

/// The shell line of one test. The test's own values are known now and are
/// inserted shell-quoted; the worker's (`{workspace}`, `{id}`, ...) are only
/// known at run time, so they become double-quoted references to the
/// `PARATEST_*` variables every test process gets. Those are replaced in the
/// user's template first, so that a file named `{id}.sh` is never expanded twice.
fn command_line(template: &str, file: &str, stem: &str) -> String {
    let mut template = template.to_string();
    // `{test}` is the file, known now; it is substituted below.
    for (placeholder, variable) in crate::hooks::PLACEHOLDERS
        .iter()
        .filter(|(placeholder, _)| *placeholder != "{test}")
    {
        template = template.replace(placeholder, &format!("\"${variable}\""));
    }
    crate::hooks::substitute(
        &template,
        &[
            ("{file}", file.to_string()),
            ("{name}", stem.to_string()),
            ("{test}", file.to_string()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_values_are_quoted_and_worker_values_are_variables() {
        assert_eq!(
            command_line(
                "bash {file} --name {name} -w {id} {workspace} {test}",
                "t/a b;x {id}.sh",
                "a b;x {id}"
            ),
            "bash 't/a b;x {id}.sh' --name 'a b;x {id}' -w \"$PARATEST_WORKER\" \
             \"$PARATEST_WORKSPACE\" 't/a b;x {id}.sh'"
        );
    }

    #[test]
    fn settings_reject_unknown_keys_and_bad_patterns() {
        let table: toml::Table = toml::from_str("pattern = \"*.sh\"\ncomand = \"x\"").unwrap();
        let err = settings(Some(&table)).unwrap_err();
        assert!(err.to_string().contains("comand"), "{err}");
        assert_eq!(err.exit_code(), 2);
        let table: toml::Table = toml::from_str("pattern = 3").unwrap();
        let err = settings(Some(&table)).unwrap_err();
        assert!(err.to_string().contains("glob"), "{err}");
        let table: toml::Table = toml::from_str("pattern = [\"a/*.sh\", \"b/**\"]").unwrap();
        assert!(matches!(
            settings(Some(&table)).unwrap().pattern,
            Some(Patterns::Many(p)) if p.len() == 2
        ));
    }

    #[test]
    fn star_stays_in_one_directory() {
        let globs = glob_set(&["./t/*.sh".to_string()]).unwrap();
        assert!(globs.is_match("t/a.sh"));
        assert!(!globs.is_match("t/sub/a.sh"));
        let globs = glob_set(&["t/**/*.sh".to_string()]).unwrap();
        assert!(globs.is_match("t/a.sh") && globs.is_match("t/sub/a.sh"));
    }

    #[test]
    fn walk_is_sorted_and_skips_what_is_never_copied() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "b.sh",
            "a/z.sh",
            "a/b.sh",
            "target/t.sh",
            "x/.git/h.sh",
            "a/c.txt",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let globs = glob_set(&["**/*.sh".to_string()]).unwrap();
        let files = walk(dir.path(), &[], &globs).unwrap();
        let files: Vec<_> = files.iter().map(|f| f.to_str().unwrap()).collect();
        assert_eq!(files, ["a/b.sh", "a/z.sh", "b.sh"]);
    }

    /// The command plugin finds a test exactly where a workspace copy has
    /// the file: one walk, one skip policy (build output, VCS, caches, the
    /// log directory), so a test never names a file its workspace lacks.
    #[test]
    fn discovery_sees_the_files_a_workspace_copy_holds() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        for file in [
            "a.sh",
            "deep/b.sh",
            "target/t.sh",
            ".git/h.sh",
            ".paratest/p.sh",
            "sub/.paratest/kept.sh",
            "sub/target/kept.sh",
            "sub/.git/no.sh",
            "py/__pycache__/no.sh",
            "cache/CACHEDIR.TAG",
            "cache/no.sh",
            "logs/no.sh",
        ] {
            let path = source.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let excluded = [source.join("logs")];
        let copy = dir.path().join("copy");
        crate::workspace::copy_tree(&source, &copy, &excluded).unwrap();
        let mut copied = Vec::new();
        let mut stack = vec![copy.clone()];
        while let Some(at) = stack.pop() {
            for entry in std::fs::read_dir(at).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let relative = path.strip_prefix(&copy).unwrap();
                    copied.push(relative.to_str().unwrap().to_string());
                }
            }
        }
        copied.sort();
        let globs = glob_set(&["**".to_string()]).unwrap();
        let found: Vec<String> = walk(&source, &excluded, &globs)
            .unwrap()
            .iter()
            .map(|f| f.to_str().unwrap().to_string())
            .collect();
        assert_eq!(found, copied);
        assert_eq!(
            found,
            [
                "a.sh",
                "deep/b.sh",
                "sub/.paratest/kept.sh",
                "sub/target/kept.sh"
            ]
        );
    }
}
