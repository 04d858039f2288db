//! Errors that end a run with exit code 2. Every one names the file (or argument) it is about.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// A capture file could not be opened or is not a capture we can read.
    Input { file: String, problem: String },
    /// A command-line value is wrong (e.g. a BPF expression libpcap rejects).
    Usage(String),
    /// Writing an output failed.
    Output { file: String, problem: String },
    /// The reader of our standard output went away (`exflow ... | head`): not an error.
    BrokenPipe,
}

impl Error {
    pub fn input(file: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Input {
            file: file.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input { file, problem } => write!(f, "{file}: {problem}"),
            Error::Usage(m) => f.write_str(m),
            Error::Output { file, problem } => write!(f, "{file}: {problem}"),
            Error::BrokenPipe => f.write_str("broken pipe"),
        }
    }
}

impl std::error::Error for Error {}
