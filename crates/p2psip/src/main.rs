//! `p2psip`: serverless SIP over a RELOAD (RFC 6940) overlay.
//!
//! It offers the wire-format tools and the overlay simulator; storage, the daemon
//! and the SIP front end arrive in later steps.

mod pcap;
mod plots;
mod render;
mod sim;
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
    /// Simulates an overlay of many nodes on a virtual clock and reports on it.
    Sim(Box<sim::SimArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Wire(args) => wire::run(args),
        Command::Sim(args) => sim::run(*args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
