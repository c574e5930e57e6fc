//! `p2psip`: serverless SIP over a RELOAD (RFC 6940) overlay.
//!
//! For now the program offers the wire-format tools; the overlay, storage, the
//! daemon and the SIP front end arrive in later steps.

mod pcap;
mod render;
mod wire;

use clap::{Parser, Subcommand};

/// Serverless SIP: a RELOAD peer-to-peer overlay does the registrar's job.
#[derive(Parser)]
#[command(name = "p2psip", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// RELOAD wire-format tools: sample traffic and a message decoder.
    Wire(wire::WireArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Wire(args) => wire::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
