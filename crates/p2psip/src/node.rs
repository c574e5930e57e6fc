//! `p2psip peer`, `p2psip client` and the one-shot operations (`put`, `get`,
//! `stat`, `find`, `ping`, `route-query`): a node made from an enrolled data
//! directory (`p2psip enroll`), run on real sockets by reload-net.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use reload_core::ring::hash_resource_name;
use reload_core::storage::KindDef;
use reload_net::runtime::{self, LinkProtocol, NodeHandle, RuntimeConfig};
use reload_net::security::LinkSecurity;
use reload_wire::{
    DataValue, Destination, DictionaryKey, FetchReq, FindReq, KindId, MessageBody, ModelSpecifier, NodeId, PingReq,
    ResourceId, RouteQueryReq, StoredDataSpecifier, StoredDataValue, hex,
};
use serde::{Deserialize, Serialize};

/// Where a node's files are and how it runs; each field may also come from the
/// node configuration file (`--config`, TOML), the command line winning.
#[derive(Args, Clone, Debug)]
pub struct NodeArgs {
    /// The enrolled data directory (`p2psip enroll --data-dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A node configuration file (TOML) with any of: data-dir, listen, log-format,
    /// bootstrap, threads.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The address to listen on (port 0: any free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Bootstrap peers instead of the configuration document's.
    #[arg(long)]
    pub bootstrap: Vec<SocketAddr>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Threads that run the node (default 1: everything on one thread, the
    /// lightest and quickest for the overlay's own work; more help a node
    /// whose SIP front end is busy).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
}

/// How logs are written (to stderr).
#[derive(Clone, Copy, Debug, ValueEnum, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The node configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct NodeFile {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    bootstrap: Vec<SocketAddr>,
    threads: Option<u16>,
}

/// Settings once the file and the command line are merged.
pub(crate) struct Settings {
    pub(crate) data_dir: PathBuf,
    pub(crate) listen: SocketAddr,
    pub(crate) log_format: LogFormat,
    pub(crate) bootstrap: Vec<SocketAddr>,
    pub(crate) threads: u16,
}

impl NodeArgs {
    fn settings(&self, default_listen: SocketAddr) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<NodeFile>(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => NodeFile::default(),
        };
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir)
            .ok_or_else(|| anyhow!("say where the node's data directory is: --data-dir DIR"))?;
        Ok(Settings {
            data_dir,
            listen: self.listen.or(file.listen).unwrap_or(default_listen),
            log_format: self.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            bootstrap: if self.bootstrap.is_empty() {
                file.bootstrap
            } else {
                self.bootstrap.clone()
            },
            threads: self.threads.or(file.threads).unwrap_or(1).max(1),
        })
    }
}

/// `p2psip peer`.
#[derive(Args, Debug)]
pub struct PeerArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Also read operations from standard input, one JSON object per line
    /// (`{"op":"put",...}`), answering each on standard output.
    #[arg(long)]
    control: bool,
    #[command(flatten)]
    sip: crate::sip::SipArgs,
}

/// `p2psip client`.
#[derive(Args, Debug)]
pub struct ClientArgs {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    sip: crate::sip::SipArgs,
}

/// A one-shot operation: run as a client, do it, leave.
#[derive(Args, Debug)]
pub struct OneShotArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// What an operation is about.
#[derive(Args, Debug, Clone, Default, Serialize, Deserialize)]
pub struct Target {
    /// The Kind, by name (as in the configuration) or number.
    #[arg(long)]
    #[serde(default)]
    kind: Option<String>,
    /// The resource: `user:NAME` (or just NAME), `node:HEX[/I]` (a Node-ID, and the
    /// NODE-MULTIPLE iteration I), `self[/I]` (this node's Node-ID), or `id:HEX` (a
    /// Resource-ID as is).
    #[arg(long)]
    #[serde(default)]
    resource: Option<String>,
    /// The value to store (UTF-8 text).
    #[arg(long)]
    #[serde(default)]
    value: Option<String>,
    /// The value to store, from a file.
    #[arg(long)]
    #[serde(default)]
    file: Option<PathBuf>,
    /// The dictionary key (DICTIONARY Kinds).
    #[arg(long)]
    #[serde(default)]
    key: Option<String>,
    /// Lifetime of a stored value, seconds.
    #[arg(long, default_value_t = 86_400)]
    #[serde(default = "default_lifetime")]
    lifetime: u32,
    /// A Node-ID (hex) for `ping` and `route-query`.
    #[arg(long)]
    #[serde(default)]
    node: Option<String>,
}

fn default_lifetime() -> u32 {
    86_400
}

/// The operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Store a value.
    Put,
    /// Fetch values.
    Get,
    /// Fetch metadata.
    Stat,
    /// Find the closest Resource-ID holding a Kind.
    Find,
    /// Ping a node or the responsible peer of a resource.
    Ping,
    /// Ask the path to a node or resource.
    RouteQuery,
    /// This node's status.
    Status,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A running node and the configuration it runs under.
pub(crate) struct Running {
    pub(crate) handle: NodeHandle,
    pub(crate) task: tokio::task::JoinHandle<()>,
    pub(crate) configuration: reload_enroll::config::Configuration,
    /// The node's credentials and trust, for the SIP front end's TLS.
    pub(crate) security: LinkSecurity,
}

/// The link protocol the configuration asks for: the first of its
/// `overlay-link-protocol`s that p2psip speaks without ICE (§6.5.1.11).
fn link_protocol(config: &reload_enroll::config::Configuration) -> anyhow::Result<LinkProtocol> {
    use reload_enroll::config::LinkProtocol as Configured;
    for p in config.effective_link_protocols() {
        match p {
            Configured::Tls | Configured::TlsTcpFhNoIce => return Ok(LinkProtocol::Tls),
            Configured::DtlsUdpSrNoIce | Configured::DtlsUdpSr => return Ok(LinkProtocol::Dtls),
            Configured::Other(_) => {}
        }
    }
    bail!(
        "the configuration's overlay-link-protocol ({}) names no link protocol p2psip speaks",
        config
            .effective_link_protocols()
            .iter()
            .map(|p| p.name().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub(crate) async fn start_node(settings: &Settings, client: bool) -> anyhow::Result<Running> {
    let identity = reload_enroll::identity::NodeIdentity::load(&settings.data_dir)
        .with_context(|| format!("loading the enrolled identity in {}", settings.data_dir.display()))?;
    let node_id = identity.node_id();
    let mut node = identity.node_config();
    node.client = client;
    let reload_enroll::identity::NodeIdentity {
        configuration,
        credentials,
        trust_anchors,
        ..
    } = identity;
    if client && !configuration.clients_permitted {
        bail!("this overlay does not permit clients (clients-permitted is false); run a peer");
    }
    let protocol = link_protocol(&configuration)?;
    let bootstrap = if settings.bootstrap.is_empty() {
        configuration.bootstrap_nodes.clone()
    } else {
        settings.bootstrap.clone()
    };
    // A bootstrap peer starts the overlay when it is the first (§6.4.2.1); it finds
    // the others through the partition check (§10.7.4.4).
    let create_overlay = !client && bootstrap.contains(&settings.listen);
    let security = LinkSecurity::new(credentials, node_id, trust_anchors);
    let storage = (!client).then(|| settings.data_dir.join("store.redb"));
    let mut seed_bytes = [0u8; 8];
    seed_bytes.copy_from_slice(&node_id.0[..8]);
    let seed = u64::from_be_bytes(seed_bytes) ^ u64::from(std::process::id());
    let (handle, task) = runtime::start(RuntimeConfig {
        node,
        security: security.clone(),
        protocol,
        listen: settings.listen,
        bootstrap,
        create_overlay,
        storage,
        seed,
    })
    .await?;
    Ok(Running {
        handle,
        task,
        configuration,
        security,
    })
}

/// The Kind an operation names: an IANA name from the configuration, a number
/// (decimal or 0x hex), or by default p2psip's data Kind.
fn kind_of(config: &reload_enroll::config::Configuration, name: Option<&str>) -> anyhow::Result<KindDef> {
    let wanted = match name {
        None => Some(reload_enroll::ca::DATA_KIND),
        Some(n) => {
            let number = match n.strip_prefix("0x").or_else(|| n.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => n.parse::<u32>().ok(),
            };
            number.map(KindId)
        }
    };
    config
        .required_kinds
        .iter()
        .find(|k| match (wanted, name) {
            (Some(id), _) => k.id == id,
            (None, Some(n)) => k.name.as_deref().is_some_and(|kn| kn.eq_ignore_ascii_case(n)),
            (None, None) => false,
        })
        .map(|k| k.kind_def())
        .ok_or_else(|| {
            anyhow!(
                "the overlay defines no Kind {}; it has: {}",
                name.unwrap_or("DATA (0xF0000001)"),
                config
                    .required_kinds
                    .iter()
                    .map(|k| k.name.clone().unwrap_or_else(|| format!("0x{:08X}", k.id.0)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// How long a node may take to join before a command gives up.
const JOIN_LIMIT: Duration = Duration::from_secs(30);

/// One operation, as the control protocol (JSON lines) carries it.
#[derive(Debug, Deserialize)]
struct Request {
    op: Op,
    #[serde(flatten)]
    target: Target,
}

/// The outcome of an operation, printed as text or JSON.
#[derive(Debug, Serialize)]
struct Outcome {
    ok: bool,
    op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    responder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hops: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    values: Vec<ValueOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected_values: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<serde_json::Value>,
    elapsed_ms: f64,
}

#[derive(Debug, Serialize)]
struct ValueOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    exists: bool,
    /// The value as text when it is UTF-8, else as hex.
    value: String,
    storage_time: u64,
    lifetime: u32,
}

impl Outcome {
    fn new(op: Op) -> Self {
        Outcome {
            ok: true,
            op,
            error: None,
            responder: None,
            hops: None,
            resource: None,
            values: Vec::new(),
            rejected_values: None,
            detail: None,
            elapsed_ms: 0.0,
        }
    }

    fn failed(op: Op, error: impl std::fmt::Display) -> Self {
        Outcome {
            ok: false,
            error: Some(error.to_string()),
            ..Outcome::new(op)
        }
    }

    fn print_text(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        if let Some(e) = &self.error {
            return writeln!(out, "{:?} failed: {e}", self.op);
        }
        if let Some(r) = &self.resource {
            writeln!(out, "resource {r}")?;
        }
        if let Some(r) = &self.responder {
            writeln!(
                out,
                "answered by {r} in {} hops, {:.1} ms",
                self.hops.unwrap_or(0),
                self.elapsed_ms
            )?;
        }
        for v in &self.values {
            let place = match (&v.key, v.index) {
                (Some(k), _) => format!("[{k}] "),
                (None, Some(i)) => format!("[{i}] "),
                _ => String::new(),
            };
            if v.exists {
                writeln!(out, "{place}{}  (lifetime {} s)", v.value, v.lifetime)?;
            } else {
                writeln!(out, "{place}(no value)")?;
            }
        }
        if let Some(n) = self.rejected_values.filter(|n| *n > 0) {
            writeln!(out, "{n} forged values were refused")?;
        }
        if let Some(d) = &self.detail {
            writeln!(out, "{}", serde_json::to_string_pretty(d).unwrap_or_default())?;
        }
        Ok(())
    }
}

/// Turns the `--resource` syntax into a Resource-ID.
fn resource_id(spec: &str, own: NodeId) -> anyhow::Result<ResourceId> {
    let node_multiple = |node: NodeId, rest: Option<&str>| -> anyhow::Result<ResourceId> {
        let mut name = node.0.to_vec();
        if let Some(i) = rest {
            let i: u8 = i.parse().with_context(|| format!("iteration {i:?} is not 0-255"))?;
            name.push(i);
        }
        Ok(hash_resource_name(&name))
    };
    if let Some(rest) = spec.strip_prefix("id:") {
        let bytes = hex::decode(rest).ok_or_else(|| anyhow!("id:{rest} is not hex"))?;
        return ResourceId::new(bytes).ok_or_else(|| anyhow!("Resource-ID longer than 255 bytes"));
    }
    if let Some(rest) = spec.strip_prefix("node:") {
        let (node, i) = match rest.split_once('/') {
            Some((n, i)) => (n, Some(i)),
            None => (rest, None),
        };
        let node = NodeId::from_hex(node).ok_or_else(|| anyhow!("node:{node} is not a 16-byte hex Node-ID"))?;
        return node_multiple(node, i);
    }
    if spec == "self" {
        return node_multiple(own, None);
    }
    if let Some(i) = spec.strip_prefix("self/") {
        return node_multiple(own, Some(i));
    }
    let name = spec.strip_prefix("user:").unwrap_or(spec);
    Ok(hash_resource_name(name.as_bytes()))
}

fn text_or_hex(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_owned(),
        _ => format!("0x{}", hex::encode(bytes)),
    }
}

/// Carries out one operation on a running node.
async fn perform(running: &Running, op: Op, target: &Target) -> Outcome {
    let started = std::time::Instant::now();
    let mut outcome = match perform_inner(running, op, target).await {
        Ok(o) => o,
        Err(e) => Outcome::failed(op, format!("{e:#}")),
    };
    outcome.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    outcome
}

async fn perform_inner(running: &Running, op: Op, target: &Target) -> anyhow::Result<Outcome> {
    let handle = &running.handle;
    let config = &running.configuration;
    let mut outcome = Outcome::new(op);
    if op == Op::Status {
        let s = handle.status().await?;
        outcome.detail = Some(serde_json::json!({
            "node_id": s.node_id.to_string(),
            "state": format!("{:?}", s.state),
            "successors": s.neighbors.successors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "predecessors": s.neighbors.predecessors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "links": s.links.iter().map(|(n, a)| format!("{n} {a}")).collect::<Vec<_>>(),
            "stored_resources": s.stored_resources,
            "stats": s.stats,
        }));
        return Ok(outcome);
    }
    if matches!(op, Op::Ping | Op::RouteQuery) {
        let destination = match (&target.node, &target.resource) {
            (Some(n), _) => {
                Destination::node(NodeId::from_hex(n).ok_or_else(|| anyhow!("--node {n} is not a Node-ID"))?)
            }
            (None, Some(r)) => Destination::resource(resource_id(r, handle.node_id())?),
            (None, None) => bail!(
                "say what to {}: --node HEX or --resource SPEC",
                if op == Op::Ping { "ping" } else { "route-query" }
            ),
        };
        let body = if op == Op::Ping {
            MessageBody::PingReq(PingReq::default())
        } else {
            MessageBody::RouteQueryReq(RouteQueryReq {
                send_update: false,
                destination: destination.clone(),
                overlay_specific_data: Vec::new(),
            })
        };
        let answer = handle.request(destination, body).await?;
        outcome.responder = Some(answer.responder.to_string());
        outcome.hops = Some(answer.hops);
        outcome.detail = serde_json::to_value(&answer.body).ok();
        return Ok(outcome);
    }
    let spec = target
        .resource
        .as_deref()
        .ok_or_else(|| anyhow!("say which resource: --resource SPEC"))?;
    let resource = resource_id(spec, handle.node_id())?;
    outcome.resource = Some(hex::encode(resource.as_bytes()));
    let kind = kind_of(config, target.kind.as_deref())?;
    match op {
        Op::Put => {
            let bytes = match (&target.value, &target.file) {
                (Some(v), None) => v.clone().into_bytes(),
                (None, Some(f)) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
                _ => bail!("give the value with exactly one of --value TEXT or --file PATH"),
            };
            let value = match kind.model {
                reload_wire::DataModel::Single => StoredDataValue::Single {
                    value: DataValue::new(bytes),
                },
                reload_wire::DataModel::Array => StoredDataValue::Array {
                    index: u32::MAX,
                    value: DataValue::new(bytes),
                },
                reload_wire::DataModel::Dictionary => {
                    let key = target
                        .key
                        .as_ref()
                        .ok_or_else(|| anyhow!("a DICTIONARY Kind needs --key"))?;
                    StoredDataValue::Dictionary {
                        key: key.clone().into_bytes(),
                        value: DataValue::new(bytes),
                    }
                }
            };
            let answer = handle.store(resource, kind.id, vec![value], target.lifetime).await?;
            outcome.responder = Some(answer.responder.to_string());
            outcome.hops = Some(answer.hops);
        }
        Op::Get | Op::Stat => {
            let model_specifier = match (kind.model, &target.key) {
                (reload_wire::DataModel::Single, _) => ModelSpecifier::Single,
                (reload_wire::DataModel::Array, _) => ModelSpecifier::Array(vec![reload_wire::ArrayRange {
                    first: 0,
                    last: u32::MAX,
                }]),
                (reload_wire::DataModel::Dictionary, Some(k)) => {
                    ModelSpecifier::Dictionary(vec![DictionaryKey(k.clone().into_bytes())])
                }
                (reload_wire::DataModel::Dictionary, None) => ModelSpecifier::Dictionary(Vec::new()),
            };
            let req = FetchReq {
                resource: resource.clone(),
                specifiers: vec![StoredDataSpecifier {
                    kind: kind.id,
                    generation: 0,
                    model_specifier,
                }],
            };
            let body = if op == Op::Get {
                MessageBody::FetchReq(req)
            } else {
                MessageBody::StatReq(req)
            };
            let answer = handle.request(Destination::resource(resource), body).await?;
            outcome.responder = Some(answer.responder.to_string());
            outcome.hops = Some(answer.hops);
            outcome.rejected_values = Some(answer.rejected_values);
            match &answer.body {
                MessageBody::FetchAns(ans) => {
                    for kr in &ans.kind_responses {
                        for v in &kr.values {
                            outcome.values.push(value_out(v));
                        }
                    }
                }
                other => outcome.detail = serde_json::to_value(other).ok(),
            }
        }
        Op::Find => {
            let body = MessageBody::FindReq(FindReq {
                resource: resource.clone(),
                kinds: vec![kind.id],
            });
            let answer = handle.request(Destination::resource(resource), body).await?;
            outcome.responder = Some(answer.responder.to_string());
            outcome.hops = Some(answer.hops);
            outcome.detail = serde_json::to_value(&answer.body).ok();
        }
        Op::Ping | Op::RouteQuery | Op::Status => {}
    }
    Ok(outcome)
}

fn value_out(v: &reload_wire::StoredData) -> ValueOut {
    let (key, index, value) = match &v.value {
        StoredDataValue::Single { value } => (None, None, value),
        StoredDataValue::Array { index, value } => (None, Some(*index), value),
        StoredDataValue::Dictionary { key, value } => (Some(text_or_hex(key)), None, value),
    };
    ValueOut {
        key,
        index,
        exists: value.exists,
        value: text_or_hex(&value.value),
        storage_time: v.storage_time,
        lifetime: v.lifetime,
    }
}

fn print(outcome: &Outcome, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string(outcome).unwrap_or_default());
    } else {
        let _ = outcome.print_text(&mut out);
    }
    let _ = out.flush();
}

/// Waits for SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Reads control requests from stdin until EOF, answering each as a JSON line.
async fn control_loop(running: &Running) {
    use tokio::io::AsyncBufReadExt;
    if let Err(e) = running.handle.joined(JOIN_LIMIT).await {
        print(
            &Outcome::failed(Op::Status, format!("could not join the overlay: {e}")),
            true,
        );
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let outcome = match serde_json::from_str::<Request>(line) {
            Ok(req) => perform(running, req.op, &req.target).await,
            Err(e) => Outcome::failed(Op::Status, format!("bad request line: {e}")),
        };
        print(&outcome, true);
    }
}

/// Readiness events the runtime takes from the OS per poll (see [`runtime`]).
const IO_EVENTS_PER_TICK: usize = 128;

/// The async runtime of a node: one thread unless asked for more. A peer's
/// work is many small messages passed between tasks; on one thread they pass
/// without waking other threads.
fn runtime(threads: u16) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(usize::from(threads));
        b
    };
    // A node waits on a few dozen sockets (its links, its listeners): 128 readiness
    // events per poll is plenty (more are simply taken on the next one), and the
    // default 1,024 would keep 12 KiB of event buffer in every process.
    builder
        .max_io_events_per_tick(IO_EVENTS_PER_TICK)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs a node until a signal (or, with a control channel, the end of stdin),
/// then leaves gracefully.
fn run_daemon(node: &NodeArgs, client: bool, control: bool, sip: &crate::sip::SipArgs) -> anyhow::Result<()> {
    let default_listen = SocketAddr::from(([127, 0, 0, 1], if client { 0 } else { 6084 }));
    let settings = node.settings(default_listen)?;
    init_logging(settings.log_format);
    runtime(settings.threads)?.block_on(async {
        let running = start_node(&settings, client).await?;
        let handle = running.handle.clone();
        println!(
            "{} {} listening on {}",
            if client { "client" } else { "peer" },
            handle.node_id(),
            handle.local_addr()
        );
        let _ = std::io::stdout().flush();
        let front = crate::sip::start(sip, &handle, running.security.clone(), &running.configuration).await?;
        if let Some(front) = &front {
            println!("sip front end listening on {}", front.udp_addr());
            tracing::info!(
                udp = %front.udp_addr(),
                tcp = %front.tcp_addr(),
                nodes = %front.overlay_addr(),
                "SIP front end: phones on UDP and TCP, other nodes over TLS"
            );
            let _ = std::io::stdout().flush();
        }
        tokio::select! {
            () = shutdown_signal() => tracing::info!("signal: leaving the overlay"),
            () = async { if control { control_loop(&running).await } else { std::future::pending().await } } => {
                tracing::info!("control input closed: leaving the overlay");
            }
        }
        handle.leave(Duration::from_secs(3)).await?;
        let _ = tokio::time::timeout(Duration::from_secs(3), running.task).await;
        Ok(())
    })
}

/// `p2psip peer`.
pub fn run_peer(args: PeerArgs) -> anyhow::Result<()> {
    run_daemon(&args.node, false, args.control, &args.sip)
}

/// `p2psip client`: stays attached and takes operations on stdin.
pub fn run_client(args: ClientArgs) -> anyhow::Result<()> {
    run_daemon(&args.node, true, true, &args.sip)
}

/// A one-shot operation as a client (§4.2).
pub fn run_once(op: Op, args: OneShotArgs) -> anyhow::Result<()> {
    let settings = args.node.settings(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    init_logging(settings.log_format);
    let outcome = runtime(settings.threads)?.block_on(async {
        let running = start_node(&settings, true).await?;
        running
            .handle
            .joined(JOIN_LIMIT)
            .await
            .context("could not attach to the overlay")?;
        let outcome = perform(&running, op, &args.target).await;
        running.handle.leave(Duration::from_secs(1)).await?;
        anyhow::Ok(outcome)
    })?;
    print(&outcome, args.json);
    if outcome.ok {
        Ok(())
    } else {
        Err(anyhow!("{}", outcome.error.unwrap_or_default()))
    }
}
