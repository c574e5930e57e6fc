//! `p2psip`: serverless SIP over a RELOAD (RFC 6940) overlay.
//!
//! One program for everyone involved: the overlay's operator (`ca`,
//! `enroll-server`), its users (`enroll`, `peer` and `client` with the SIP front
//! end, one-shot operations such as `put` and `get`), and its developers (`wire`,
//! `sim`, `bench`, `demo`).

mod bench;
mod bench_sip;
mod demo;
mod enroll;
mod node;
mod pcap;
mod plots;
mod render;
mod sim;
mod sip;
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
    /// The overlay's certificate authority and signed configuration document.
    Ca(enroll::CaArgs),
    /// Serves the configuration document and enrolls nodes (RFC 6940 §11.2, §11.3).
    EnrollServer(enroll::EnrollServerArgs),
    /// Enrolls this node: fetches the configuration and gets a certificate.
    Enroll(enroll::EnrollArgs),
    /// Runs a peer: joins the overlay, routes and stores for others, persists.
    Peer(node::PeerArgs),
    /// Runs a client (RFC 6940 §4.2): attached to the overlay, taking operations
    /// as JSON lines on stdin.
    Client(node::ClientArgs),
    /// Stores a value (as a client).
    Put(node::OneShotArgs),
    /// Fetches values (as a client).
    Get(node::OneShotArgs),
    /// Fetches values' metadata (as a client).
    Stat(node::OneShotArgs),
    /// Finds the closest Resource-ID holding a Kind (as a client).
    Find(node::OneShotArgs),
    /// Pings a node or a resource's responsible peer (as a client).
    Ping(node::OneShotArgs),
    /// Asks the route to a node or resource (as a client).
    RouteQuery(node::OneShotArgs),
    /// Benchmarks: `bench overlay` against OpenDHT, `bench sip` against Kamailio.
    Bench(bench::BenchArgs),
    /// Makes an overlay on loopback from nothing (CA, enrollment server, five
    /// peers) and calls from bob's phone to alice's across it.
    Demo(demo::DemoArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Wire(args) => wire::run(args),
        Command::Sim(args) => sim::run(*args),
        Command::Ca(args) => enroll::run_ca(args),
        Command::EnrollServer(args) => enroll::run_enroll_server(args),
        Command::Enroll(args) => enroll::run_enroll(args),
        Command::Peer(args) => node::run_peer(args),
        Command::Client(args) => node::run_client(args),
        Command::Put(args) => node::run_once(node::Op::Put, args),
        Command::Get(args) => node::run_once(node::Op::Get, args),
        Command::Stat(args) => node::run_once(node::Op::Stat, args),
        Command::Find(args) => node::run_once(node::Op::Find, args),
        Command::Ping(args) => node::run_once(node::Op::Ping, args),
        Command::RouteQuery(args) => node::run_once(node::Op::RouteQuery, args),
        Command::Bench(args) => bench::run(args),
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
