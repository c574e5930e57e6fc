//! `p2psip demo`: an overlay on loopback from nothing, and a call across it.
//!
//! Everything is real: a CA and a signed configuration document, an HTTPS
//! enrollment server, five peers on TLS links, alice's and bob's nodes with SIP
//! front ends, and the built-in phone playing both users. The demo exits 0 only
//! if bob's call to alice completes (INVITE, 180, 200, ACK, MESSAGE, BYE).

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use reload_enroll::ca::{CaDir, CaInit};
use reload_enroll::client::{EnrollOptions, ServerTrust};
use reload_enroll::server::{EnrollmentServer, ServerOptions};
use reload_sip::frontend::Frontend;
use reload_sip::phone::{Phone, PhoneConfig, PhoneEventKind};
use reload_sip::usage::{APP_SIPS, SIP_REGISTRATION, aor_resource};
use reload_trust::KeyType;
use reload_wire::{
    AppAttach, ApplicationId, Destination, FetchReq, MessageBody, ModelSpecifier, NodeId, StoredDataSpecifier,
};

use crate::node::{LogFormat, Running, Settings, start_node};
use crate::sip::SipArgs;

/// The overlay the demo makes.
const OVERLAY: &str = "demo.p2psip.test";
/// How long each peer may take to join.
const JOIN_LIMIT: Duration = Duration::from_secs(30);

/// `p2psip demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the overlay running after the call and print how to point a real
    /// softphone (Linphone, baresip) at it; stop with Ctrl-C.
    #[arg(long)]
    serve: bool,
    /// Keep the demo's files here instead of a temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Prints a step with the time since the start.
struct Clock(Instant);

impl Clock {
    fn step(&self, text: impl AsRef<str>) {
        let t = self.0.elapsed().as_secs_f64();
        println!("[{t:7.3} s] {}", text.as_ref());
        let _ = std::io::stdout().flush();
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn short(id: NodeId) -> String {
    id.to_string().chars().take(8).collect()
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir().context("making a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(demo(&dir, args.serve))
}

async fn demo(dir: &Path, serve: bool) -> anyhow::Result<()> {
    let clock = Clock(Instant::now());
    println!("p2psip demo: SIP calls over a RELOAD overlay on loopback, with no SIP server anywhere");

    // The operator's part: a CA, a configuration, an enrollment server.
    let bootstrap = free_addr()?;
    let ca_dir = dir.join("ca");
    let mut init = CaInit::new(OVERLAY);
    init.bootstrap = vec![bootstrap];
    let ca = CaDir::init(&ca_dir, &init).context("making the overlay's CA")?;
    let mut options = ServerOptions::new(&ca_dir);
    options.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = EnrollmentServer::start(options)
        .await
        .context("starting the enrollment server")?;
    let url = format!("https://{}/.well-known/reload-config", server.local_addr());
    let enroll_url = format!("https://{}/enroll", server.local_addr());
    ca.update_configuration(|c| c.enrollment_servers = vec![enroll_url.clone()])
        .context("naming the enrollment server in the configuration")?;
    clock.step(format!(
        "CA and signed configuration for overlay {OVERLAY}; enrollment server on {url}"
    ));

    // Users enroll: five peers, two of them alice's and bob's.
    let users = ["peer0", "peer1", "peer2", "alice", "bob"];
    let mut data = HashMap::new();
    for user in users {
        let password = format!("{user}-enroll-{:08x}", rand_u32());
        ca.add_user(user, &password, true).context("adding an account")?;
        let data_dir = dir.join(user);
        reload_enroll::client::enroll(&EnrollOptions {
            config_url: url.clone(),
            user: user.to_owned(),
            password,
            data_dir: data_dir.clone(),
            trust: ServerTrust::Roots(vec![ca.root_der().to_vec()]),
            key_type: KeyType::EcdsaP256,
            node_ids: 1,
        })
        .await
        .with_context(|| format!("enrolling {user}"))?;
        data.insert(user, data_dir);
    }
    clock.step(format!(
        "enrolled {}: a certificate each, user@{OVERLAY} and a Node-ID",
        users.join(", ")
    ));

    // Five peers on TLS links; peer0 listens on the bootstrap address.
    let mut running: HashMap<&str, Running> = HashMap::new();
    for user in users {
        let listen = if user == "peer0" {
            bootstrap
        } else {
            SocketAddr::from(([127, 0, 0, 1], 0))
        };
        let settings = Settings {
            data_dir: data[user].clone(),
            listen,
            log_format: LogFormat::Text,
            bootstrap: Vec::new(),
            threads: 1,
        };
        let node = start_node(&settings, false).await?;
        node.handle
            .joined(JOIN_LIMIT)
            .await
            .with_context(|| format!("{user}'s node did not join"))?;
        clock.step(format!(
            "{user:5}'s node {} joined, listening on {}",
            short(node.handle.node_id()),
            node.handle.local_addr()
        ));
        running.insert(user, node);
    }

    // SIP front ends on alice's and bob's nodes, and a phone for each.
    let mut fronts: HashMap<&str, Frontend> = HashMap::new();
    let mut passwords = HashMap::new();
    for user in ["alice", "bob"] {
        let node = &running[user];
        let password = format!("{user}-phone-{:08x}", rand_u32());
        let args = SipArgs {
            sip: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            sip_overlay: None,
            sip_password: Some(password.clone()),
            outbound_proxy: None,
            sip_users: Vec::new(),
            sip_trusted: Vec::new(),
            sip_tls: None,
            sip_tls_cert: None,
            sip_tls_key: None,
        };
        let front = crate::sip::start(&args, &node.handle, node.security.clone(), &node.configuration)
            .await?
            .ok_or_else(|| anyhow!("no front end"))?;
        clock.step(format!(
            "{user:5}'s node runs a SIP front end: phones on {} (UDP, TCP), other nodes on {} (TLS)",
            front.udp_addr(),
            front.overlay_addr()
        ));
        fronts.insert(user, front);
        passwords.insert(user, password);
    }
    let aor = |u: &str| format!("{u}@{OVERLAY}");
    let mut alice_cfg = PhoneConfig::new(aor("alice"), passwords["alice"].clone(), fronts["alice"].udp_addr());
    alice_cfg.answer_delay = Duration::from_millis(200);
    let (alice, mut alice_events) = Phone::start(alice_cfg).await.context("starting alice's phone")?;
    let (bob, _bob_events) = Phone::start(PhoneConfig::new(
        aor("bob"),
        passwords["bob"].clone(),
        fronts["bob"].udp_addr(),
    ))
    .await
    .context("starting bob's phone")?;

    for (user, phone) in [("alice", &alice), ("bob", &bob)] {
        let t = Instant::now();
        let reg = phone
            .register(3600)
            .await
            .with_context(|| format!("registering {user}"))?;
        let took = t.elapsed();
        let stored = responsible(&running["peer0"], &aor(user)).await;
        clock.step(format!(
            "{user:5}'s phone {} registered at its node in {}{}; the node stored SIP-REGISTRATION at hash({}){stored}",
            phone.local_addr(),
            ms(took),
            if reg.challenged {
                " (digest challenge, then 200)"
            } else {
                ""
            },
            aor(user),
        ));
        if let Some(gruu) = &reg.gruu {
            println!("             GRUU {gruu}");
        }
    }

    // The overlay path bob's node takes: the Fetch and the AppAttach it sends.
    let bob_node = &running["bob"];
    let alice_id = running["alice"].handle.node_id();
    let path = overlay_path(bob_node, &aor("alice"), alice_id).await;
    clock.step(format!("bob calls sip:{}", aor("alice")));
    println!("             overlay path: {path}");

    let t = Instant::now();
    let mut outgoing = bob
        .invite(&format!("sip:{}", aor("alice")))
        .await
        .context("sending the INVITE")?;
    let _ = outgoing.ringing().await;
    let mut call = outgoing.answered().await.context("the call was not answered")?;
    let timings = call.timings;
    let show = |name: &str, d: Option<Duration>| {
        if let Some(d) = d {
            println!("             {name:<12} after {}", ms(d));
        }
    };
    show("100 Trying", timings.trying);
    show("180 Ringing", timings.ringing);
    show("200 OK", timings.answered);
    println!("             ACK sent (route set: {} hops)", call.route_set.len());
    let t_msg = Instant::now();
    bob.message(&mut call, "hello alice, this is bob")
        .await
        .context("sending the MESSAGE")?;
    println!("             MESSAGE      200 in {}", ms(t_msg.elapsed()));
    let t_bye = Instant::now();
    bob.bye(&mut call).await.context("hanging up")?;
    println!("             BYE          200 in {}", ms(t_bye.elapsed()));

    // What alice's phone saw.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Ok(Some(e)) =
        tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), alice_events.recv()).await
    {
        let done = matches!(e.kind, PhoneEventKind::Bye { .. });
        seen.push(e.kind);
        if done {
            break;
        }
    }
    let got_message = seen
        .iter()
        .any(|k| matches!(k, PhoneEventKind::Message { text, .. } if text.contains("hello alice")));
    let got_ack = seen.iter().any(|k| matches!(k, PhoneEventKind::Acked { .. }));
    let got_bye = seen.iter().any(|k| matches!(k, PhoneEventKind::Bye { .. }));
    if !(got_message && got_ack && got_bye) {
        bail!("alice's phone did not see the whole call: {seen:?}");
    }
    clock.step(format!(
        "call completed in {}: alice's phone rang, answered, got the ACK, the MESSAGE and the BYE",
        ms(t.elapsed())
    ));

    if serve {
        print_serve_help(&fronts, &passwords, &running);
        shutdown_signal().await;
    }
    let leaves: Vec<_> = running
        .values()
        .map(|node| {
            let handle = node.handle.clone();
            tokio::spawn(async move { handle.leave(Duration::from_secs(1)).await })
        })
        .collect();
    for leave in leaves {
        let _ = leave.await;
    }
    let _ = server.shutdown().await;
    Ok(())
}

/// Where alice's registration lives: the peer that answers a Fetch for it.
async fn responsible(from: &Running, aor: &str) -> String {
    match fetch(from, aor).await {
        Ok((responder, hops)) => format!(" on peer {} (hops from peer0: {hops})", short(responder)),
        Err(e) => format!(" (could not fetch it: {e})"),
    }
}

async fn fetch(from: &Running, aor: &str) -> anyhow::Result<(NodeId, u8)> {
    let resource = aor_resource(aor);
    let body = MessageBody::FetchReq(FetchReq {
        resource: resource.clone(),
        specifiers: vec![StoredDataSpecifier {
            kind: SIP_REGISTRATION,
            generation: 0,
            model_specifier: ModelSpecifier::Dictionary(Vec::new()),
        }],
    });
    let answer = from
        .handle
        .request(Destination::resource(resource), body)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    Ok((answer.responder, answer.hops))
}

/// The RELOAD requests bob's front end sends for the call, made once more by
/// the demo so that their path and time can be shown: the Fetch of alice's
/// registration and the AppAttach to her node.
async fn overlay_path(bob: &Running, aor: &str, alice: NodeId) -> String {
    let t = Instant::now();
    let fetched = fetch(bob, aor).await;
    let fetch_time = t.elapsed();
    let t = Instant::now();
    let attach = bob
        .handle
        .request(
            Destination::node(alice),
            MessageBody::AppAttachReq(AppAttach {
                ufrag: b"demo".to_vec(),
                password: b"demo-password-0000000000".to_vec(),
                application: ApplicationId(APP_SIPS),
                role: b"active".to_vec(),
                candidates: Vec::new(),
            }),
        )
        .await;
    let attach_time = t.elapsed();
    let fetch_text = match fetched {
        Ok((responder, hops)) => format!(
            "Fetch SIP-REGISTRATION answered by peer {} (hops: {hops}, {})",
            short(responder),
            ms(fetch_time)
        ),
        Err(e) => format!("Fetch failed: {e}"),
    };
    let attach_text = match attach {
        Ok(a) => format!(
            "AppAttach(5061) answered by alice's node {} (hops: {}, {})",
            short(alice),
            a.hops,
            ms(attach_time)
        ),
        Err(e) => format!("AppAttach failed: {e}"),
    };
    format!(
        "bob's phone -> bob's node -> {fetch_text} -> {attach_text} -> TLS to alice's node (both overlay certificates, Node-ID checked) -> alice's phone"
    )
}

fn print_serve_help(
    fronts: &HashMap<&str, Frontend>,
    passwords: &HashMap<&str, String>,
    running: &HashMap<&str, Running>,
) {
    println!();
    println!("The overlay keeps running. Point a softphone at a node's front end; it is the");
    println!("phone's registrar and outbound proxy (UDP or TCP):");
    for user in ["alice", "bob"] {
        let f = &fronts[user];
        println!(
            "  {user:5}: account sip:{user}@{OVERLAY}, password {}, proxy sip:{};lr",
            passwords[user],
            f.udp_addr()
        );
    }
    println!("Linphone: SIP address sip:alice@{OVERLAY}, SIP server address sip:<proxy above>, transport UDP.");
    println!(
        "baresip (~/.baresip/accounts): <sip:alice@{OVERLAY}>;auth_pass={};outbound=\"sip:{}\"",
        passwords["alice"],
        fronts["alice"].udp_addr()
    );
    println!("The built-in phones stay registered too, so a softphone can call sip:bob@{OVERLAY}.");
    println!(
        "Peers: {}",
        running
            .iter()
            .map(|(u, r)| format!("{u} {}", r.handle.local_addr()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("Ctrl-C stops everything.");
    let _ = std::io::stdout().flush();
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    l.local_addr().context("finding a free port")
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    u32::try_from(h.finish() & 0xffff_ffff).unwrap_or(0)
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
