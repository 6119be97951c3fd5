//! One module per subcommand.

pub mod echo;
pub mod send;
pub mod test;
