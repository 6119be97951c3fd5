//! One module per subcommand.

pub mod commit;
pub mod copy;
pub mod demo;
pub mod echo;
pub mod find;
pub mod hash_password;
pub mod mpps;
pub mod retrieve;
pub mod send;
pub mod serve;
pub mod test;
pub mod worklist;
