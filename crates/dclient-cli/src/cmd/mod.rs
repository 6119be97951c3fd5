//! One module per subcommand.

pub mod echo;
pub mod find;
pub mod send;
pub mod test;
