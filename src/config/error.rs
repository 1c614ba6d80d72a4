//! Configuration errors that name the file, the line, the key and the fix, collected rather than
//! returned one at a time, so `patchbay check` can list every problem in one go.

use std::fmt;

/// One problem in the configuration or the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in, or `environment` for variables.
    pub file: String,
    /// The 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// The dotted key, e.g. `integration.payments-api.timeout`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it, when there is a clear fix.
    pub fix: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}: {}", self.file, self.key, self.message)?,
            None => write!(f, "{}: {}: {}", self.file, self.key, self.message)?,
        }
        if let Some(fix) = &self.fix {
            write!(f, " (fix: {fix})")?;
        }
        Ok(())
    }
}

/// Every problem found while loading, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(
            f,
            "{count} configuration problem{}:",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.0 {
            writeln!(f, "  {error}")?;
        }
        Ok(())
    }
}

/// Collects errors for one file, turning byte offsets into line numbers.
pub(crate) struct Diagnostics {
    file: String,
    line_starts: Vec<usize>,
    pub(crate) errors: Vec<ConfigError>,
}

impl Diagnostics {
    pub(crate) fn new(file: impl Into<String>, source: &str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Diagnostics {
            file: file.into(),
            line_starts,
            errors: Vec::new(),
        }
    }

    /// The 1-based line holding byte `offset`.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// Records a problem at `offset` (a span start), or with no line when `None`.
    pub(crate) fn error(
        &mut self,
        offset: Option<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
        fix: Option<String>,
    ) {
        let line = offset.map(|at| self.line_of(at));
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            key: key.into(),
            message: message.into(),
            fix,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_from_one() {
        let diagnostics = Diagnostics::new("f", "a\nbb\n\nc");
        assert_eq!(diagnostics.line_of(0), 1);
        assert_eq!(diagnostics.line_of(2), 2);
        assert_eq!(diagnostics.line_of(5), 3);
        assert_eq!(diagnostics.line_of(6), 4);
    }
}
