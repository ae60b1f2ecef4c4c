//! Reports derived from run events: terminal, Markdown summary, JUnit, JSON.
