//! One module per subcommand.

pub mod demo;
pub mod echo;
pub mod find;
pub mod hash_password;
pub mod retrieve;
pub mod send;
pub mod serve;
pub mod test;
