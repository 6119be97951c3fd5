//! One module per subcommand.

pub mod echo;
pub mod serve;
pub mod test;
