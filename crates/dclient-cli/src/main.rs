//! `dclient`: the command-line DICOM client. One file per subcommand under `cmd/`; this file
//! parses arguments, sets up logging, and maps errors to exit statuses: 0 when everything
//! asked for succeeded, 1 when the peer refused or an item failed, 2 for bad usage or input
//! found before anything was sent.

#![forbid(unsafe_code)]

/// `println!` that never panics: when standard output is a closed pipe (`dclient find ... |
/// head`), the process ends quietly with status 0, as if it had received SIGPIPE.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::common::write_stdout_line(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics: a closed standard error loses the line, nothing else.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::common::write_stderr_line(format_args!($($arg)*)) };
}

mod cmd;
mod common;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A DICOM network client: echo, test, find, get, move, send, storage commitment, worklist
/// and MPPS against any PACS.
#[derive(Debug, Parser)]
#[command(name = "dclient", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// C-ECHO: check that a peer answers DICOM.
    Echo(cmd::echo::Args),
    /// Negotiate an association, print each presentation context's outcome, release.
    Test(cmd::test::Args),
    /// C-FIND: query a peer at the patient, study, series or image level.
    Find(cmd::find::Args),
    /// C-STORE: send files and folders (recursively) to a peer.
    Send(cmd::send::Args),
    /// C-GET: retrieve instances into a folder on the same association.
    Get(cmd::retrieve::GetArgs),
    /// C-MOVE: have the peer send instances to an AE it knows.
    Move(cmd::retrieve::MoveArgs),
    /// Run the built-in SCP (storage, find, get, move, echo) on a folder until Ctrl-C.
    Serve(cmd::serve::Args),
    /// Storage Commitment: ask the peer to commit to keeping instances (N-ACTION, then the
    /// N-EVENT-REPORT); exit 0 only when all are committed.
    Commit(cmd::commit::Args),
    /// Copy an archive, verified and resumable: folder to peer, peer to folder, peer to
    /// peer (SRC and DEST each AE@HOST:PORT or a folder); --status shows where jobs stand.
    Copy(cmd::copy::Args),
    /// Modality Worklist C-FIND: the scheduled procedure steps.
    Worklist(cmd::worklist::Args),
    /// Modality Performed Procedure Step: start (N-CREATE), complete or discontinue (N-SET).
    Mpps(cmd::mpps::Args),
    /// Every operation against built-in SCPs in a temporary folder, step by step.
    Demo(cmd::demo::Args),
    /// Print a `serve --users` line for NAME with the password (read from standard input)
    /// hashed.
    HashPassword(cmd::hash_password::Args),
}

impl Command {
    fn common(&self) -> &common::Common {
        match self {
            Command::Echo(a) => &a.common,
            Command::Test(a) => &a.common,
            Command::Find(a) => &a.common,
            Command::Send(a) => &a.common,
            Command::Get(a) => &a.common,
            Command::Move(a) => &a.common,
            Command::Serve(a) => &a.common,
            Command::Commit(a) => &a.common,
            Command::Copy(a) => &a.common,
            Command::Worklist(a) => &a.common,
            Command::Mpps(a) => a.common(),
            Command::Demo(a) => &a.common,
            Command::HashPassword(a) => &a.common,
        }
    }

    fn run(&self) -> anyhow::Result<common::Outcome> {
        match self {
            Command::Echo(a) => cmd::echo::run(a),
            Command::Test(a) => cmd::test::run(a),
            Command::Find(a) => cmd::find::run(a),
            Command::Send(a) => cmd::send::run(a),
            Command::Get(a) => cmd::retrieve::run_get(a),
            Command::Move(a) => cmd::retrieve::run_move(a),
            Command::Serve(a) => cmd::serve::run(a),
            Command::Commit(a) => cmd::commit::run(a),
            Command::Copy(a) => cmd::copy::run(a),
            Command::Worklist(a) => cmd::worklist::run(a),
            Command::Mpps(a) => cmd::mpps::run(a),
            Command::Demo(a) => cmd::demo::run(a),
            Command::HashPassword(a) => cmd::hash_password::run(a),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server logs each association and operation by default.
    let base = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    common::init_logging_at(cli.command.common(), base);
    match cli.command.run() {
        Ok(common::Outcome::Success) => ExitCode::SUCCESS,
        Ok(common::Outcome::Failed) => ExitCode::from(1),
        Err(e) => {
            errln!("dclient: {}", common::one_line(&e));
            ExitCode::from(common::exit_status(&e))
        }
    }
}
