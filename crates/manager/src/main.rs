//! The `sector-manager` binary (skeleton until the control plane lands).
//!
//! The manager will own sector numbers, tickets, seeds, chain messages, persistent-store
//! placement and the record of every sector, and serve the `Venus.*` JSON-RPC that
//! workers pull work from. None of that exists yet (issue 6), and this binary says so
//! instead of pretending: every command exits with an error naming what is missing.

use clap::Parser;

/// The sector manager of a sealcluster.
#[derive(Parser, Debug)]
#[command(name = "sector-manager", version, about)]
enum Command {
    /// Run the manager daemon.
    Daemon,
}

fn main() -> anyhow::Result<()> {
    match Command::parse() {
        Command::Daemon => anyhow::bail!(
            "the sector-manager daemon is not implemented in this build yet; \
             `sealing-worker plan walk sealer` shows the sector state machine it will serve"
        ),
    }
}
