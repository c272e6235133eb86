//! The one way an error is printed whole. By convention an error's message
//! does not repeat its cause: the cause is its `source()`, and whoever
//! prints the error for a person (main's last line, the logs) prints the
//! chain with [`Chain`].

use std::error::Error;
use std::fmt;

/// Displays an error and its causes, outermost first, joined by ": ". A
/// cause whose text is already in the line (a library error that repeats
/// its own cause) is not written twice.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = cause.source();
        }
        f.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::Chain;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn causes_follow_the_error_once_each() {
        let error = Outer(Middle(std::io::Error::other("inner")));
        assert_eq!(Chain(&error).to_string(), "outer: middle: inner");
    }
}
