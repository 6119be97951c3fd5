//! The `dclient` command-line tool.
fn main() {}
