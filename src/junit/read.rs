//! Reads JUnit XML written by other tools (and by us) tolerantly (merging
//! is [`super::merge`]).
//!
//! Read: ours, nextest, pytest, Maven Surefire (root `<testsuite>`),
//! jest-junit, and whatever else is close: missing attributes get defaults,
//! unknown elements and attributes are skipped, nested suites are flattened,
//! times may carry thousands separators, timestamps may lack a time zone,
//! invalid UTF-8 is replaced. Only XML that is not well formed is an error,
//! and the error names the file and the position.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// A JUnit file as read: the suites with their cases, nothing else.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadReport {
    /// The root `<testsuites name>`, if any.
    pub name: Option<String>,
    /// In file order; nested suites are flattened, containers without cases dropped.
    pub suites: Vec<ReadSuite>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadSuite {
    pub name: String,
    /// The `timestamp` attribute as written (see [`parse_timestamp`]).
    pub timestamp: Option<String>,
    /// Seconds, from the `time` attribute.
    pub time: Option<f64>,
    pub cases: Vec<ReadCase>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadCase {
    pub name: String,
    pub classname: Option<String>,
    /// The `file` attribute (pytest's xunit1 reports), if any.
    pub file: Option<String>,
    /// Seconds, from the `time` attribute.
    pub time: Option<f64>,
    pub outcome: ReadOutcome,
    /// `message` of the first `<failure>`/`<error>`/`<skipped>`.
    pub message: Option<String>,
    /// `type` of that element.
    pub ty: Option<String>,
    /// Text of that element (usually the stack trace).
    pub detail: Option<String>,
    pub system_out: Option<String>,
    pub system_err: Option<String>,
    /// `<flakyFailure>`, `<flakyError>`, `<rerunFailure>`, `<rerunError>`, in order.
    pub reruns: Vec<ReadRerun>,
}

/// What the testcase's first status element says; no element means passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadOutcome {
    #[default]
    Passed,
    Failed,
    Error,
    Skipped,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadRerun {
    pub kind: RerunKind,
    pub message: Option<String>,
    pub ty: Option<String>,
    pub stack_trace: Option<String>,
    pub system_out: Option<String>,
    pub system_err: Option<String>,
    /// Loose text inside the element (Surefire before 2.22.1 put the trace there).
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerunKind {
    FlakyFailure,
    FlakyError,
    RerunFailure,
    RerunError,
}

impl RerunKind {
    fn from_element(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"flakyFailure" => RerunKind::FlakyFailure,
            b"flakyError" => RerunKind::FlakyError,
            b"rerunFailure" => RerunKind::RerunFailure,
            b"rerunError" => RerunKind::RerunError,
            _ => return None,
        })
    }

    pub fn is_error(self) -> bool {
        matches!(self, RerunKind::FlakyError | RerunKind::RerunError)
    }
}

/// Why a report could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{}: malformed XML at byte {position} (line {line}, column {column}): {message}",
        path.display()
    )]
    Malformed {
        path: PathBuf,
        /// Byte offset from the start of the file.
        position: u64,
        /// 1-based.
        line: usize,
        /// 1-based, in bytes.
        column: usize,
        message: String,
    },
    #[error(
        "{}: not a JUnit report: the root element is <{root}>, not <testsuites> or <testsuite>",
        path.display()
    )]
    NotJunit { path: PathBuf, root: String },
}

/// Reads one JUnit XML file.
pub fn read_report(path: &Path) -> Result<ReadReport, ReadError> {
    let bytes = fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_report(&bytes, path)
}

/// Parses JUnit XML held in memory; `path` is only used in errors and as the
/// fallback name of a suite that has none.
pub fn parse_report(bytes: &[u8], path: &Path) -> Result<ReadReport, ReadError> {
    Parser::new(bytes, path).run()
}

/// Reads a `timestamp` attribute: RFC 3339, or a date-time without time zone
/// (jest-junit, older pytest), which is taken as UTC.
pub fn parse_timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time);
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc().fixed_offset())
}

/// Reads `time="1,234.5"` as seconds. Commas are thousands separators, as in
/// the schema's SUREFIRE_TIME; junk, negative or infinite values are absent.
fn parse_time(text: &str) -> Option<f64> {
    let time: f64 = text.trim().replace(',', "").parse().ok()?;
    (time.is_finite() && time >= 0.0).then_some(time)
}

/// Which output field a text-capturing element fills.
#[derive(Debug, Clone, Copy)]
enum Field {
    StackTrace,
    SystemOut,
    SystemErr,
}

/// One open element the parser cares about.
enum Frame {
    Testsuites,
    Suite,
    Case(ReadCase),
    /// `<failure>`/`<error>`/`<skipped>`; `first` when it set the outcome.
    Status {
        first: bool,
        text: String,
    },
    Rerun(ReadRerun, String),
    Capture(Field, String),
    /// Anything else (`properties`, unknown elements): its content is skipped.
    Ignored,
}

struct Parser<'a> {
    bytes: &'a [u8],
    path: &'a Path,
    report: ReadReport,
    stack: Vec<Frame>,
    /// Index in `report.suites` of each open `<testsuite>`, innermost last.
    open_suites: Vec<usize>,
    /// Suites that held nested suites: dropped at the end if they have no case.
    containers: Vec<usize>,
    root_seen: bool,
}

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8], path: &'a Path) -> Self {
        Parser {
            bytes,
            path,
            report: ReadReport::default(),
            stack: Vec::new(),
            open_suites: Vec::new(),
            containers: Vec::new(),
            root_seen: false,
        }
    }

    fn run(mut self) -> Result<ReadReport, ReadError> {
        let mut reader = Reader::from_reader(self.bytes);
        // Foreign writers leave bare `&` in text; that is no reason to refuse a report.
        reader.config_mut().allow_dangling_amp = true;
        loop {
            let start = reader.buffer_position();
            let event = match reader.read_event() {
                Ok(event) => event,
                Err(err) => return Err(self.malformed(reader.error_position(), err.to_string())),
            };
            match event {
                Event::Start(element) => {
                    let frame = self.open(&element, start)?;
                    self.stack.push(frame);
                }
                Event::Empty(element) => {
                    let frame = self.open(&element, start)?;
                    self.close(frame);
                }
                Event::End(_) => {
                    // quick-xml has checked the end name matches.
                    if let Some(frame) = self.stack.pop() {
                        self.close(frame);
                    }
                }
                Event::Text(text) => {
                    self.push_text(&normalize_eols(&String::from_utf8_lossy(&text)))
                }
                Event::CData(data) => {
                    self.push_text(&normalize_eols(&String::from_utf8_lossy(&data)))
                }
                Event::GeneralRef(reference) => {
                    let name = String::from_utf8_lossy(&reference);
                    match resolve_entity(&name) {
                        Some(c) => self.push_text(c.encode_utf8(&mut [0; 4])),
                        None => self.push_text(&format!("&{name};")),
                    }
                }
                Event::Eof => break,
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
        if !self.stack.is_empty() {
            return Err(self.malformed(
                self.bytes.len() as u64,
                "unexpected end of file: elements are not closed (truncated file?)".to_owned(),
            ));
        }
        if !self.root_seen {
            return Err(self.malformed(0, "no root element".to_owned()));
        }
        let containers = self.containers;
        let mut index = 0;
        self.report.suites.retain(|suite| {
            let keep = !suite.cases.is_empty() || !containers.contains(&index);
            index += 1;
            keep
        });
        Ok(self.report)
    }

    fn malformed(&self, position: u64, message: String) -> ReadError {
        let before = &self.bytes[..(position as usize).min(self.bytes.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        ReadError::Malformed {
            path: self.path.to_owned(),
            position,
            line,
            column: before.len() - line_start + 1,
            message,
        }
    }

    fn open(&mut self, element: &BytesStart<'_>, start: u64) -> Result<Frame, ReadError> {
        let name = element.local_name();
        let name = name.as_ref();
        let attributes = attributes(element)
            .map_err(|message| self.malformed(start, format!("bad attribute: {message}")))?;
        let attribute = |key: &str| {
            attributes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, value)| value.clone())
        };
        if !self.root_seen {
            self.root_seen = true;
            if name != b"testsuites" && name != b"testsuite" {
                return Err(ReadError::NotJunit {
                    path: self.path.to_owned(),
                    root: String::from_utf8_lossy(name).into_owned(),
                });
            }
        }
        let parent = self.stack.last();
        let frame = match (parent, name) {
            (None, b"testsuites") => {
                self.report.name = attribute("name");
                Frame::Testsuites
            }
            (None | Some(Frame::Testsuites | Frame::Suite), b"testsuite") => {
                if let Some(&outer) = self.open_suites.last() {
                    self.containers.push(outer);
                }
                self.report.suites.push(ReadSuite {
                    name: attribute("name")
                        .filter(|name| !name.is_empty())
                        .unwrap_or_else(|| self.fallback_suite_name()),
                    timestamp: attribute("timestamp"),
                    time: attribute("time").as_deref().and_then(parse_time),
                    cases: Vec::new(),
                });
                self.open_suites.push(self.report.suites.len() - 1);
                Frame::Suite
            }
            (Some(Frame::Testsuites | Frame::Suite), b"testcase") => Frame::Case(ReadCase {
                name: attribute("name").unwrap_or_default(),
                classname: attribute("classname"),
                file: attribute("file"),
                time: attribute("time").as_deref().and_then(parse_time),
                ..ReadCase::default()
            }),
            (Some(Frame::Case(_)), b"failure" | b"error" | b"skipped") => {
                let Some(Frame::Case(case)) = self.stack.last_mut() else {
                    unreachable!("matched above")
                };
                let first = case.outcome == ReadOutcome::Passed;
                if first {
                    case.outcome = match name {
                        b"failure" => ReadOutcome::Failed,
                        b"error" => ReadOutcome::Error,
                        _ => ReadOutcome::Skipped,
                    };
                    case.message = attribute("message");
                    case.ty = attribute("type");
                }
                Frame::Status {
                    first,
                    text: String::new(),
                }
            }
            (Some(Frame::Case(_)), _) if RerunKind::from_element(name).is_some() => Frame::Rerun(
                ReadRerun {
                    kind: RerunKind::from_element(name).expect("checked in the guard"),
                    message: attribute("message"),
                    ty: attribute("type"),
                    stack_trace: None,
                    system_out: None,
                    system_err: None,
                    text: None,
                },
                String::new(),
            ),
            (Some(Frame::Case(_) | Frame::Rerun(..)), b"system-out") => {
                Frame::Capture(Field::SystemOut, String::new())
            }
            (Some(Frame::Case(_) | Frame::Rerun(..)), b"system-err") => {
                Frame::Capture(Field::SystemErr, String::new())
            }
            (Some(Frame::Rerun(..)), b"stackTrace") => {
                Frame::Capture(Field::StackTrace, String::new())
            }
            _ => Frame::Ignored,
        };
        Ok(frame)
    }

    /// A suite without a name (or cases outside any suite) is named after the file.
    fn fallback_suite_name(&self) -> String {
        self.path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "unnamed".to_owned())
    }

    fn close(&mut self, frame: Frame) {
        match frame {
            Frame::Testsuites | Frame::Ignored => {}
            Frame::Suite => {
                self.open_suites.pop();
            }
            Frame::Case(case) => {
                let index = match self.open_suites.last() {
                    Some(&index) => index,
                    None => {
                        // A testcase right under <testsuites>: give it a suite.
                        let name = self
                            .report
                            .name
                            .clone()
                            .unwrap_or_else(|| self.fallback_suite_name());
                        match self
                            .report
                            .suites
                            .iter()
                            .position(|suite| suite.name == name)
                        {
                            Some(index) => index,
                            None => {
                                self.report.suites.push(ReadSuite {
                                    name,
                                    ..ReadSuite::default()
                                });
                                self.report.suites.len() - 1
                            }
                        }
                    }
                };
                self.report.suites[index].cases.push(case);
            }
            Frame::Status { first, text } => {
                if let (true, Some(Frame::Case(case))) = (first, self.stack.last_mut()) {
                    case.detail = non_blank(text);
                }
            }
            Frame::Rerun(mut rerun, text) => {
                rerun.text = non_blank(text);
                if let Some(Frame::Case(case)) = self.stack.last_mut() {
                    case.reruns.push(rerun);
                }
            }
            Frame::Capture(field, text) => {
                let slot = match (self.stack.last_mut(), field) {
                    (Some(Frame::Case(case)), Field::SystemOut) => &mut case.system_out,
                    (Some(Frame::Case(case)), Field::SystemErr) => &mut case.system_err,
                    (Some(Frame::Rerun(rerun, _)), Field::SystemOut) => &mut rerun.system_out,
                    (Some(Frame::Rerun(rerun, _)), Field::SystemErr) => &mut rerun.system_err,
                    (Some(Frame::Rerun(rerun, _)), Field::StackTrace) => &mut rerun.stack_trace,
                    _ => return,
                };
                // Some writers emit several <system-out> per testcase: keep them all.
                match (slot.as_mut(), non_blank(text)) {
                    (Some(existing), Some(more)) => existing.push_str(&more),
                    (None, more) => *slot = more,
                    (Some(_), None) => {}
                }
            }
        }
    }

    fn push_text(&mut self, text: &str) {
        // Text anywhere else (indentation, ignored elements) is dropped.
        if let Some(
            Frame::Status { text: buffer, .. }
            | Frame::Rerun(_, buffer)
            | Frame::Capture(_, buffer),
        ) = self.stack.last_mut()
        {
            buffer.push_str(text);
        }
    }
}

/// `None` for text that is only the indentation between elements.
fn non_blank(text: String) -> Option<String> {
    (!text.trim().is_empty()).then_some(text)
}

/// XML 1.0 line ends: CR LF and lone CR read as LF.
fn normalize_eols(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The five predefined entities and character references; `None` for
/// anything else (kept literally by the caller).
fn resolve_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// An element's attributes as (local name, value) with entities resolved,
/// lossy about encoding and lenient about duplicates.
fn attributes(element: &BytesStart<'_>) -> Result<Vec<(String, String)>, String> {
    let mut attributes = Vec::new();
    for attribute in element.attributes().with_checks(false) {
        let attribute = attribute.map_err(|err| err.to_string())?;
        let key = String::from_utf8_lossy(attribute.key.local_name().as_ref()).into_owned();
        let raw = String::from_utf8_lossy(&attribute.value);
        attributes.push((key, unescape_attribute(&raw)));
    }
    Ok(attributes)
}

/// Resolves references and applies attribute-value normalization (tab, CR,
/// LF read as spaces); an unknown or broken reference stays as written.
fn unescape_attribute(raw: &str) -> String {
    let mut value = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        value.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let resolved = rest
            .find(';')
            .filter(|&end| end <= 12)
            .and_then(|end| Some((resolve_entity(&rest[1..end])?, end)));
        match resolved {
            Some((c, end)) => {
                value.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                value.push('&');
                rest = &rest[1..];
            }
        }
    }
    value.push_str(rest);
    value.replace("\r\n", " ").replace(['\t', '\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::merge::merge;
    use crate::junit::write::write_xml;
    use crate::report::junit_file::test_support::assert_schema_valid;
    use std::time::Duration;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/junit")
            .join(name)
    }

    fn read(name: &str) -> ReadReport {
        read_report(&fixture(name)).unwrap_or_else(|err| panic!("{err}"))
    }

    fn counts(suite: &ReadSuite) -> [usize; 4] {
        let count = |outcome| suite.cases.iter().filter(|c| c.outcome == outcome).count();
        [
            suite.cases.len(),
            count(ReadOutcome::Failed),
            count(ReadOutcome::Error),
            count(ReadOutcome::Skipped),
        ]
    }

    #[test]
    fn reads_nextest() {
        let report = read("nextest.xml");
        assert_eq!(report.name.as_deref(), Some("nextest-run"));
        let names: Vec<&str> = report.suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["shop::cart", "shop::bin/shop-cli"]);
        let cart = &report.suites[0];
        assert_eq!(counts(cart), [4, 1, 0, 1]);
        let flaky = cart
            .cases
            .iter()
            .find(|c| c.name == "cart::tests::checkout_retries")
            .unwrap();
        assert_eq!(flaky.outcome, ReadOutcome::Passed);
        assert_eq!(flaky.reruns.len(), 1);
        assert_eq!(flaky.reruns[0].kind, RerunKind::FlakyFailure);
        assert!(
            flaky.reruns[0]
                .system_err
                .as_deref()
                .unwrap()
                .contains("panicked at")
        );
        let failed = cart
            .cases
            .iter()
            .find(|c| c.outcome == ReadOutcome::Failed)
            .unwrap();
        assert_eq!(failed.reruns.len(), 2);
        assert!(
            failed
                .reruns
                .iter()
                .all(|r| r.kind == RerunKind::RerunFailure)
        );
        assert_eq!(failed.message.as_deref(), Some("code=101"));
        assert!(parse_timestamp(cart.timestamp.as_deref().unwrap()).is_some());
    }

    #[test]
    fn reads_pytest() {
        let report = read("pytest.xml");
        assert_eq!(report.suites.len(), 1);
        let suite = &report.suites[0];
        assert_eq!(suite.name, "pytest");
        assert_eq!(counts(suite), [6, 1, 1, 2]);
        let skipped = suite.cases.iter().find(|c| c.name == "test_read").unwrap();
        assert_eq!(
            skipped.classname.as_deref(),
            Some("tests.test_io.TestFiles")
        );
        assert_eq!(skipped.message.as_deref(), Some("needs network"));
        assert_eq!(skipped.ty.as_deref(), Some("pytest.skip"));
        let error = suite
            .cases
            .iter()
            .find(|c| c.outcome == ReadOutcome::Error)
            .unwrap();
        assert!(
            error
                .message
                .as_deref()
                .unwrap()
                .contains("\"FileNotFoundError")
        );
        let failed = suite
            .cases
            .iter()
            .find(|c| c.outcome == ReadOutcome::Failed)
            .unwrap();
        assert!(
            failed
                .detail
                .as_deref()
                .unwrap()
                .contains(">       assert 1 / 0\n")
        );
        assert!(parse_timestamp(suite.timestamp.as_deref().unwrap()).is_some());
    }

    #[test]
    fn reads_surefire_with_root_testsuite_and_properties() {
        let report = read("surefire/TEST-com.example.shop.CartTest.xml");
        assert_eq!(report.name, None);
        assert_eq!(report.suites.len(), 1);
        let suite = &report.suites[0];
        assert_eq!(suite.name, "com.example.shop.CartTest");
        assert_eq!(counts(suite), [4, 1, 0, 1]);
        assert_eq!(suite.time, Some(1234.5), "thousands separator");
        let flaky = suite
            .cases
            .iter()
            .find(|c| c.name == "totalWithDiscount")
            .unwrap();
        assert_eq!(flaky.outcome, ReadOutcome::Passed);
        assert_eq!(flaky.reruns[0].kind, RerunKind::FlakyFailure);
        assert!(
            flaky.reruns[0]
                .stack_trace
                .as_deref()
                .unwrap()
                .contains("AssertionFailedError")
        );
    }

    #[test]
    fn reads_jest_junit_with_zoneless_timestamps() {
        let report = read("jest-junit.xml");
        assert_eq!(report.suites.len(), 2);
        assert_eq!(counts(&report.suites[0]), [3, 1, 0, 1]);
        let timestamp = report.suites[0].timestamp.as_deref().unwrap();
        assert_eq!(timestamp, "2025-03-14T09:30:12");
        assert_eq!(
            parse_timestamp(timestamp).unwrap().to_rfc3339(),
            "2025-03-14T09:30:12+00:00"
        );
        let failed = report.suites[0]
            .cases
            .iter()
            .find(|c| c.outcome == ReadOutcome::Failed)
            .unwrap();
        assert_eq!(
            failed.message, None,
            "jest-junit writes no message attribute"
        );
        assert!(
            failed
                .detail
                .as_deref()
                .unwrap()
                .contains("expect(received).toBe(expected)")
        );
    }

    #[test]
    fn tolerates_missing_attributes_nesting_entities_and_bad_bytes() {
        let xml = b"<testsuites><testsuite name='outer'><testsuite name='inner'>\
            <testcase name='a &amp; b &#x41;&#66; &nbsp;' time='oops'>\
            <failure>x &lt; y &unknown; \xff</failure><error message='second'/></testcase>\
            <testcase/></testsuite></testsuite><testcase name='loose'/></testsuites>";
        let report = parse_report(xml, Path::new("dir/odd.xml")).unwrap();
        let names: Vec<&str> = report.suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["inner", "odd"],
            "empty container dropped, loose case gets a suite"
        );
        let case = &report.suites[0].cases[0];
        assert_eq!(case.name, "a & b AB &nbsp;");
        assert_eq!(case.time, None);
        assert_eq!(case.outcome, ReadOutcome::Failed, "the first status wins");
        assert_eq!(case.detail.as_deref(), Some("x < y &unknown; \u{FFFD}"));
        assert_eq!(report.suites[0].cases[1].name, "");
    }

    #[test]
    fn malformed_file_names_file_and_position() {
        let path = fixture("malformed-truncated.xml");
        let err = read_report(&path).unwrap_err();
        let ReadError::Malformed { position, line, .. } = &err else {
            panic!("expected malformed, got {err}")
        };
        let len = fs::metadata(&path).unwrap().len();
        assert_eq!(*position, len);
        assert!(*line > 10);
        let text = err.to_string();
        assert!(text.contains("malformed-truncated.xml"), "{text}");
        assert!(text.contains(&format!("byte {len}")), "{text}");

        let err = parse_report(
            b"<testsuites>\n  <testsuite name='a'>\n  </testcase>\n",
            Path::new("x.xml"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("x.xml: malformed XML at byte 38 (line 3, column 3)"),
            "{text}"
        );

        let err = parse_report(b"<html/>", Path::new("page.xml")).unwrap_err();
        assert!(matches!(err, ReadError::NotJunit { .. }), "{err}");
        let err = parse_report(b"", Path::new("empty.xml")).unwrap_err();
        assert!(err.to_string().contains("no root element"), "{err}");
    }

    #[test]
    fn merge_joins_shards_and_recomputes_counts() {
        let inputs: Vec<(PathBuf, ReadReport)> = ["shard-1.xml", "shard-2.xml"]
            .into_iter()
            .map(|name| (fixture(name), read(name)))
            .collect();
        let merged = merge(&inputs).unwrap();
        assert_eq!(merged.name.as_deref(), Some("paratest-run"));
        let suites: Vec<(&str, usize, usize, usize, usize)> = merged
            .test_suites
            .iter()
            .map(|s| (s.name.as_str(), s.tests, s.failures, s.errors, s.skipped))
            .collect();
        assert_eq!(
            suites,
            [("demo::cli", 2, 1, 0, 0), ("demo::lib", 5, 1, 0, 1)]
        );
        assert_eq!((merged.tests, merged.failures, merged.errors), (7, 2, 0));
        let lib = &merged.test_suites[1];
        let names: Vec<&str> = lib.test_cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "tests::adds",
                "tests::always_fails",
                "tests::flaky_network",
                "tests::ignored_slow",
                "tests::subtracts"
            ]
        );
        assert_eq!(lib.time, Some(Duration::from_millis(12 + 43 + 300 + 20)));
        assert_eq!(
            lib.timestamp.unwrap().to_rfc3339(),
            "2023-11-14T22:13:21+00:00",
            "earliest of the two shards"
        );
    }

    #[test]
    fn merge_rejects_a_test_in_two_files() {
        let inputs = vec![
            (fixture("shard-1.xml"), read("shard-1.xml")),
            (PathBuf::from("copy/shard-1.xml"), read("shard-1.xml")),
        ];
        let err = merge(&inputs).unwrap_err();
        assert!(
            err.contains(&fixture("shard-1.xml").display().to_string()),
            "{err}"
        );
        assert!(err.contains("copy/shard-1.xml"), "{err}");
        assert!(err.contains("appears in both"), "{err}");
    }

    #[test]
    fn merged_foreign_reports_validate_against_the_schema() {
        let names = [
            "shard-1.xml",
            "shard-2.xml",
            "nextest.xml",
            "pytest.xml",
            "surefire/TEST-com.example.shop.CartTest.xml",
            "jest-junit.xml",
        ];
        let inputs: Vec<(PathBuf, ReadReport)> = names
            .iter()
            .map(|name| (fixture(name), read(name)))
            .collect();
        let merged = merge(&inputs).unwrap();
        assert_eq!(merged.name, None, "the inputs disagree on a name");
        let expected_tests: usize = inputs
            .iter()
            .flat_map(|(_, report)| &report.suites)
            .map(|suite| suite.cases.len())
            .sum();
        assert_eq!(merged.tests, expected_tests);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("merged.xml");
        write_xml(&out, &merged).unwrap();
        assert_schema_valid(&out);
        // What we wrote reads back to the same cases and attempts.
        let again = read_report(&out).unwrap();
        let reruns = |report: &ReadReport| -> usize {
            report
                .suites
                .iter()
                .flat_map(|s| &s.cases)
                .map(|c| c.reruns.len())
                .sum()
        };
        assert_eq!(
            reruns(&again),
            inputs.iter().map(|(_, r)| reruns(r)).sum::<usize>()
        );
        assert_eq!(
            again.suites.iter().map(|s| s.cases.len()).sum::<usize>(),
            expected_tests
        );
    }
}
