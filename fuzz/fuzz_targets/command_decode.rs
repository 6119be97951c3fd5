//! `CommandSet::decode` then `Command::from_command_set` on arbitrary bytes: never panic;
//! what decodes re-encodes to bytes that decode to the same command set and command.
#![no_main]

use dclient_proto::dimse::command::{Command, CommandSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cs) = CommandSet::decode(data) else { return };
    let again = CommandSet::decode(&cs.encode()).expect("our encoding of a command set decodes");
    assert_eq!(cs, again, "command set changed in a round trip");
    // Rendering every element must not panic either.
    let _ = cs.values();
    let Ok(cmd) = Command::from_command_set(&cs) else { return };
    let again = Command::decode(&cmd.encode()).expect("our encoding of a command decodes");
    assert_eq!(cmd, again, "command changed in a round trip");
});
