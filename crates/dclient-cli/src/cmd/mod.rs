//! One module per subcommand.

pub mod echo;
pub mod test;
