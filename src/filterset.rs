//! Filtersets (`-E EXPR`, override `filter = "..."`): nextest's expression
//! language for choosing tests, parsed once and evaluated per test.
//!
//! Grammar, loosest first (as nextest):
//! `or | + `  <  `and & -`  <  `not !`  <  `( )` and predicates
//! `test()`, `package()`, `binary()`, `binary_id()`, `kind()`, `group()`,
//! `all()`, `none()`, each taking a matcher `=exact`, `~contains`,
//! `/regex/` or `#glob` (default per predicate, as in nextest).

use std::fmt;

use crate::model::TestCase;

/// A parsed expression.
#[derive(Debug, Clone)]
pub struct Filterset {
    text: String,
    expr: Expr,
}

#[derive(Debug, Clone)]
enum Expr {
    All,
    None,
    Predicate(Field, Matcher),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// What a predicate looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Test,
    Package,
    Binary,
    BinaryId,
    Kind,
    Group,
}

impl Field {
    fn from_name(name: &str) -> Option<Field> {
        Some(match name {
            "test" => Field::Test,
            "package" => Field::Package,
            "binary" => Field::Binary,
            "binary_id" => Field::BinaryId,
            "kind" => Field::Kind,
            "group" => Field::Group,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Field::Test => "test",
            Field::Package => "package",
            Field::Binary => "binary",
            Field::BinaryId => "binary_id",
            Field::Kind => "kind",
            Field::Group => "group",
        }
    }

    /// nextest's default matcher: contains for test names, equality for
    /// kinds, glob for the rest.
    fn default_matcher(self) -> char {
        match self {
            Field::Test => '~',
            Field::Kind => '=',
            _ => '#',
        }
    }
}

#[derive(Debug, Clone)]
enum Matcher {
    Equal(String),
    Contains(String),
    Regex(regex::Regex),
    Glob(globset::GlobMatcher),
}

impl Matcher {
    fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Equal(text) => value == text,
            Matcher::Contains(text) => value.contains(text.as_str()),
            Matcher::Regex(regex) => regex.is_match(value),
            Matcher::Glob(glob) => glob.is_match(value),
        }
    }
}

/// A malformed expression: what is wrong and where (a byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub text: String,
    pub position: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    /// The expression with a caret under the position.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let column = self.text[..self.position.min(self.text.len())]
            .chars()
            .count();
        write!(
            f,
            "invalid filterset: {}\n    {}\n    {}^",
            self.message,
            self.text,
            " ".repeat(column)
        )
    }
}

/// What predicates see of one test.
#[derive(Debug, Clone, Default)]
pub struct TestFacts<'a> {
    /// The test's name inside its binary (Cargo), or its id (other plugins).
    pub test: &'a str,
    pub package: Option<&'a str>,
    pub binary: Option<String>,
    pub binary_id: Option<&'a str>,
    pub kind: Option<&'static str>,
    /// The test group from the overrides; `@global` when none.
    pub group: &'a str,
}

impl<'a> TestFacts<'a> {
    /// A Cargo test: everything follows from its binary id (`pkg`,
    /// `pkg::bin/NAME`, `pkg::example/NAME`, `pkg::bench/NAME`, `pkg::NAME`).
    pub fn cargo(test: &'a TestCase, group: &'a str) -> TestFacts<'a> {
        let binary_id = test.group.as_str();
        let (package, kind, binary) = match binary_id.split_once("::") {
            None => (binary_id, "lib", binary_id.replace('-', "_")),
            Some((package, rest)) => match rest.split_once('/') {
                Some(("bin", name)) => (package, "bin", name.to_string()),
                Some(("example", name)) => (package, "example", name.to_string()),
                Some(("bench", name)) => (package, "bench", name.to_string()),
                _ => (package, "test", rest.to_string()),
            },
        };
        TestFacts {
            test: &test.name,
            package: Some(package),
            binary: Some(binary),
            binary_id: Some(binary_id),
            kind: Some(kind),
            group,
        }
    }

    /// A test of another plugin: only its id and its test group.
    pub fn other(test: &'a TestCase, group: &'a str) -> TestFacts<'a> {
        TestFacts {
            test: &test.id,
            group,
            ..TestFacts::default()
        }
    }
}

impl Filterset {
    pub fn parse(text: &str) -> Result<Filterset, ParseError> {
        let mut parser = Parser { text, position: 0 };
        let expr = parser.or()?;
        parser.skip_space();
        if parser.position < text.len() {
            return Err(parser.error("expected `and`, `or`, `-` or the end of the expression"));
        }
        Ok(Filterset {
            text: text.to_string(),
            expr,
        })
    }

    /// The predicates a plugin's tests cannot answer, named, for its error.
    pub fn check_plugin(&self, plugin: &str) -> Result<(), String> {
        if plugin == "cargo" {
            return Ok(());
        }
        let mut fields = Vec::new();
        self.expr.fields(&mut fields);
        match fields
            .into_iter()
            .find(|f| !matches!(f, Field::Test | Field::Group))
        {
            Some(field) => Err(format!(
                "filterset `{}`: `{}()` needs Cargo tests; the `{plugin}` plugin's tests have only `test()` (the test id) and `group()`",
                self.text,
                field.name()
            )),
            None => Ok(()),
        }
    }

    /// Whether this expression uses `group()` (not allowed in an override's filter).
    pub fn uses_group(&self) -> bool {
        let mut fields = Vec::new();
        self.expr.fields(&mut fields);
        fields.contains(&Field::Group)
    }

    pub fn matches(&self, facts: &TestFacts<'_>) -> bool {
        self.expr.eval(facts)
    }
}

impl Expr {
    fn fields(&self, out: &mut Vec<Field>) {
        match self {
            Expr::All | Expr::None => {}
            Expr::Predicate(field, _) => out.push(*field),
            Expr::Not(inner) => inner.fields(out),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.fields(out);
                b.fields(out);
            }
        }
    }

    fn eval(&self, facts: &TestFacts<'_>) -> bool {
        match self {
            Expr::All => true,
            Expr::None => false,
            Expr::Not(inner) => !inner.eval(facts),
            Expr::And(a, b) => a.eval(facts) && b.eval(facts),
            Expr::Or(a, b) => a.eval(facts) || b.eval(facts),
            Expr::Predicate(field, matcher) => {
                let value = match field {
                    Field::Test => Some(facts.test),
                    Field::Package => facts.package,
                    Field::Binary => facts.binary.as_deref(),
                    Field::BinaryId => facts.binary_id,
                    Field::Kind => facts.kind,
                    Field::Group => Some(facts.group),
                };
                value.is_some_and(|value| matcher.matches(value))
            }
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    position: usize,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.position, message)
    }

    fn error_at(&self, position: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            text: self.text.to_string(),
            position,
            message: message.into(),
        }
    }

    fn rest(&self) -> &str {
        &self.text[self.position..]
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.position = self.text.len() - trimmed.len();
    }

    /// Eats `word` when it stands alone (not the start of a longer name).
    fn eat_word(&mut self, word: &str) -> bool {
        self.skip_space();
        let rest = self.rest();
        if rest.starts_with(word)
            && !rest[word.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '(')
        {
            self.position += word.len();
            true
        } else {
            false
        }
    }

    fn eat(&mut self, symbol: char) -> bool {
        self.skip_space();
        if self.rest().starts_with(symbol) {
            self.position += symbol.len_utf8();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.eat_word("or") || self.eat('|') || self.eat('+') {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        loop {
            if self.eat_word("and") || self.eat('&') {
                let right = self.unary()?;
                left = Expr::And(Box::new(left), Box::new(right));
            } else if self.eat('-') {
                let right = self.unary()?;
                left = Expr::And(Box::new(left), Box::new(Expr::Not(Box::new(right))));
            } else {
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat_word("not") || self.eat('!') {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat('(') {
            let inner = self.or()?;
            if !self.eat(')') {
                return Err(self.error("expected `)`"));
            }
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, ParseError> {
        self.skip_space();
        let start = self.position;
        let name_len = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        if name_len == 0 {
            return Err(self.error(if self.rest().is_empty() {
                "expected a predicate such as `test(...)`, the expression ends here"
            } else {
                "expected a predicate such as `test(...)`, `not` or `(`"
            }));
        }
        let name = &self.text[start..start + name_len];
        self.position += name_len;
        if !self.eat('(') {
            return Err(self.error(format!("expected `(` after `{name}`")));
        }
        let expr = match name {
            "all" | "none" => {
                if !self.eat(')') {
                    return Err(self.error(format!("`{name}()` takes no argument")));
                }
                if name == "all" { Expr::All } else { Expr::None }
            }
            _ => {
                let Some(field) = Field::from_name(name) else {
                    return Err(self.error_at(
                        start,
                        format!(
                            "unknown predicate `{name}()`; known: test, package, binary, binary_id, kind, group, all, none"
                        ),
                    ));
                };
                let matcher = self.matcher(field)?;
                Expr::Predicate(field, matcher)
            }
        };
        Ok(expr)
    }

    /// The argument up to the closing `)`, which it consumes.
    fn matcher(&mut self, field: Field) -> Result<Matcher, ParseError> {
        self.skip_space();
        let start = self.position;
        let explicit = self
            .rest()
            .chars()
            .next()
            .filter(|c| matches!(c, '=' | '~' | '/' | '#'));
        if let Some(c) = explicit {
            self.position += c.len_utf8();
        }
        let kind = explicit.unwrap_or(field.default_matcher());
        if kind == '/' {
            // The regex ends at the first unescaped `/`; `\/` is a slash.
            let mut pattern = String::new();
            let mut chars = self.rest().char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err(self.error_at(start, "the regex has no closing `/`")),
                    Some((i, '/')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '/')) => pattern.push('/'),
                        Some((_, other)) => {
                            pattern.push('\\');
                            pattern.push(other);
                        }
                        None => pattern.push('\\'),
                    },
                    Some((_, c)) => pattern.push(c),
                }
            };
            self.position += end + 1;
            let regex = regex::Regex::new(&pattern)
                .map_err(|e| self.error_at(start, format!("invalid regex: {e}")))?;
            if !self.eat(')') {
                return Err(self.error("expected `)` after the regex"));
            }
            return Ok(Matcher::Regex(regex));
        }
        let Some(end) = self.rest().find(')') else {
            return Err(self.error_at(start, "expected `)`: the argument is not closed"));
        };
        let value = self.rest()[..end].trim().to_string();
        self.position += end + 1;
        Ok(match kind {
            '=' => Matcher::Equal(value),
            '~' => Matcher::Contains(value),
            _ => Matcher::Glob(
                globset::Glob::new(&value)
                    .map_err(|e| self.error_at(start, format!("invalid glob: {e}")))?
                    .compile_matcher(),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Invocation, TestCase};

    fn case(binary_id: &str, name: &str) -> TestCase {
        TestCase::new(
            format!("{binary_id} {name}"),
            binary_id,
            name,
            Invocation::Shell(String::new()),
        )
    }

    fn selects(expr: &str, binary_id: &str, name: &str) -> bool {
        let test = case(binary_id, name);
        Filterset::parse(expr)
            .unwrap()
            .matches(&TestFacts::cargo(&test, "@global"))
    }

    #[test]
    fn predicates_and_operators() {
        assert!(selects("test(doubles)", "alpha", "tests::doubles"));
        assert!(selects("test(=tests::doubles)", "alpha", "tests::doubles"));
        assert!(!selects("test(=doubles)", "alpha", "tests::doubles"));
        assert!(selects("package(al*)", "alpha::alpha_it", "x"));
        assert!(selects(
            "kind(test) & binary(alpha_it)",
            "alpha::alpha_it",
            "x"
        ));
        assert!(selects("kind(lib)", "alpha", "x"));
        assert!(selects("kind(bin) and binary(=tool)", "p::bin/tool", "x"));
        assert!(selects("all() - test(/^y/)", "p", "x"));
        assert!(!selects("not all() or none()", "p", "x"));
        assert!(selects("(test(a) | test(x)) & !test(z)", "p", "x"));
        assert!(selects("binary_id(p::*)", "p::it", "x"));
        assert!(selects(r"test(/a\/b/)", "p", "a/b"));
    }

    #[test]
    fn errors_point_at_the_problem() {
        for (text, position) in [
            ("test(foo", 5),
            ("test(a) &", 9),
            ("tset(a)", 0),
            ("test(a) test(b)", 8),
            ("test(/[/)", 5),
            ("(test(a)", 8),
        ] {
            let error = Filterset::parse(text).unwrap_err();
            assert_eq!(error.position, position, "{text}: {error}");
            let shown = error.to_string();
            let caret = shown.lines().last().unwrap();
            assert_eq!(caret.find('^'), Some(4 + position), "{shown}");
        }
    }
}
