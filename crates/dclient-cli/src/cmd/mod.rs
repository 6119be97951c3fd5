//! One module per subcommand.

pub mod echo;
pub mod find;
pub mod test;
pub mod retrieve;
