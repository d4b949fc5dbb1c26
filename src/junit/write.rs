//! Writes JUnit XML that validates against the Jenkins xUnit schema
//! (`../shared/junit/junit-10.xsd`): a `quick_junit::Report` serialized,
//! then every element stripped of the attributes the schema does not list
//! (`quick-junit` always writes `skipped` on `<testsuites>`, which the schema
//! forbids); text made XML-safe and bounded. Knows nothing of runs.

use std::io;
use std::path::Path;

use quick_junit::Report;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, Writer};

/// The most text kept from one output stream of one attempt, in bytes.
pub const OUTPUT_LIMIT: usize = 64 * 1024;
/// `type` of a failure that is not a timeout.
pub const FAILURE_TYPE: &str = "test failure";
/// `type` of a failure because the test ran past `--timeout`.
pub const TIMEOUT_TYPE: &str = "timeout";
/// `type` of an error: the framework failed the test outside its body.
pub const ERROR_TYPE: &str = "test error";
/// `type` of a skip that is an expected failure (pytest's own word).
pub const XFAIL_TYPE: &str = "pytest.xfail";
/// `type` of the `<error>` of a test cut short by Ctrl-C or SIGTERM.
pub const INTERRUPTED_TYPE: &str = "interrupted";
/// `type` of the `<error>` of a run that could not happen.
pub const CANNOT_RUN_TYPE: &str = "cannot run";

/// Serializes `report` and drops every attribute the Jenkins xUnit schema
/// does not allow on its element, so the text validates whatever the
/// `Report` holds.
pub fn to_xml(report: &Report) -> io::Result<String> {
    let raw = report.to_string().map_err(io::Error::other)?;
    keep_schema_attributes(&raw)
}

/// Writes `report` to `path` through a temporary file in the same directory
/// and a rename, so a reader never sees half a report; creates the parent
/// directory.
pub fn write_xml(path: &Path, report: &Report) -> io::Result<()> {
    let xml = to_xml(report)?;
    crate::atomic::write(path, |writer| writer.write_all(xml.as_bytes()))
}

/// Removes the characters XML 1.0 forbids (C0 controls other than tab, line
/// feed and carriage return; U+FFFE; U+FFFF).
///
/// `quick-junit`'s `XmlString` already drops the C0 controls but keeps
/// U+FFFE/U+FFFF, which make a document ill-formed (see the tests).
pub fn xml_safe(text: &str) -> String {
    text.chars().filter(|&c| is_xml_char(c)).collect()
}

pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Keeps at most `limit` bytes of `text`: its head and its tail, with a line
/// `[... N bytes cut; full log: FULL_AT ...]` in between.
pub fn bound_text(text: &str, limit: usize, full_at: &str) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    splice(text, text, text.len() as u64, limit, full_at)
}

/// Joins the start of `head` and the end of `tail` (two windows of a text of
/// `total_len` bytes) around the cut marker, in at most `limit` bytes.
pub fn splice(head: &str, tail: &str, total_len: u64, limit: usize, full_at: &str) -> String {
    // The marker is at most 54 bytes plus the path: "\n[... ", 20 digits,
    // " bytes cut; full log: ", " ...]\n".
    let marker_budget = 64 + full_at.len();
    let head_budget = (limit / 4).min(limit.saturating_sub(marker_budget));
    let tail_budget = limit.saturating_sub(head_budget + marker_budget);
    let head = head_part(head, head_budget);
    let tail = tail_part(tail, tail_budget);
    let cut = total_len.saturating_sub((head.len() + tail.len()) as u64);
    let newline = if head.is_empty() || head.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    format!("{head}{newline}[... {cut} bytes cut; full log: {full_at} ...]\n{tail}")
}

/// The first `budget` bytes of a text being cut, ending at a line end when
/// one is near.
fn head_part(text: &str, budget: usize) -> &str {
    let mut end = budget.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    match head.rfind('\n') {
        Some(i) if i >= end / 2 => &head[..=i],
        _ => head,
    }
}

/// The last `budget` bytes of a text being cut, starting at a line start
/// when one is near.
pub(crate) fn tail_part(text: &str, budget: usize) -> &str {
    let mut start = text.len().saturating_sub(budget);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let tail = &text[start..];
    match tail.find('\n') {
        Some(i) if start > 0 && i < tail.len() / 2 => &tail[i + 1..],
        _ => tail,
    }
}

/// Attributes the Jenkins xUnit schema (junit-10.xsd) allows on each element.
fn schema_attributes(element: &[u8]) -> &'static [&'static [u8]] {
    match element {
        b"testsuites" => &[b"name", b"time", b"tests", b"failures", b"errors"],
        b"testsuite" => &[
            b"name",
            b"tests",
            b"failures",
            b"errors",
            b"group",
            b"time",
            b"skipped",
            b"timestamp",
            b"hostname",
            b"id",
            b"package",
            b"file",
            b"log",
            b"url",
        ],
        // `file` and `line` are not in the schema: they are only ever written
        // where the project asked pytest for them (`junit_family = xunit1`).
        b"testcase" => &[b"name", b"time", b"classname", b"group", b"file", b"line"],
        b"failure" | b"error" | b"skipped" | b"rerunFailure" | b"rerunError" | b"flakyFailure"
        | b"flakyError" => &[b"type", b"message"],
        b"property" => &[b"name", b"value"],
        _ => &[],
    }
}

/// Copies the XML event by event, keeping only schema attributes; text is
/// copied as already escaped.
fn keep_schema_attributes(xml: &str) -> io::Result<String> {
    let mut reader = Reader::from_str(xml);
    let mut writer = Writer::new(Vec::with_capacity(xml.len()));
    loop {
        let event = reader.read_event().map_err(io::Error::other)?;
        match event {
            Event::Eof => break,
            Event::Start(element) => writer.write_event(Event::Start(filtered(&element)?))?,
            Event::Empty(element) => writer.write_event(Event::Empty(filtered(&element)?))?,
            other => writer.write_event(other)?,
        }
    }
    String::from_utf8(writer.into_inner()).map_err(io::Error::other)
}

fn filtered(element: &BytesStart<'_>) -> io::Result<BytesStart<'static>> {
    let name = element.name();
    let allowed = schema_attributes(name.as_ref());
    let mut kept = BytesStart::new(String::from_utf8_lossy(name.as_ref()).into_owned());
    for attribute in element.attributes() {
        let attribute = attribute.map_err(io::Error::other)?;
        if allowed.contains(&attribute.key.as_ref()) {
            kept.push_attribute(attribute);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_junit_keeps_non_characters_so_we_strip_them() {
        // quick-junit drops C0 controls itself ...
        assert_eq!(quick_junit::XmlString::new("a\u{1}b").as_str(), "ab");
        // ... but not U+FFFE/U+FFFF, which XML 1.0 forbids: hence `xml_safe`.
        assert_eq!(
            quick_junit::XmlString::new("a\u{FFFF}b").as_str(),
            "a\u{FFFF}b"
        );
        assert_eq!(
            xml_safe("a\u{0}\u{1}\t\n\r\u{FFFE}\u{FFFF}b\u{10000}"),
            "a\t\n\rb\u{10000}"
        );
    }

    #[test]
    fn bound_text_keeps_head_tail_and_says_what_was_cut() {
        let text: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let bounded = bound_text(&text, 4096, "/logs/x.out");
        assert!(bounded.len() <= 4096, "{}", bounded.len());
        assert!(bounded.starts_with("line 0\n"));
        assert!(bounded.ends_with("line 9999\n"));
        let marker = bounded
            .lines()
            .find(|line| line.starts_with("[... "))
            .unwrap();
        assert!(marker.ends_with("bytes cut; full log: /logs/x.out ...]"));
        let cut: usize = marker[5..].split(' ').next().unwrap().parse().unwrap();
        assert_eq!(cut + bounded.len() - marker.len() - 1, text.len());
        assert_eq!(bound_text("short", 4096, "x"), "short");
    }
}
