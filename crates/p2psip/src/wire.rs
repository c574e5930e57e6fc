//! `p2psip wire`: sample traffic for Wireshark, and a decoder for messages seen on
//! the wire.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use reload_wire::{
    DataModel, Decode, Encode, FramedMessage, KindId, Message, RawMessage, WireConfig, hex, message, samples,
};
use serde::Serialize;

use crate::pcap::Pcap;
use crate::render;

/// Arguments of `p2psip wire`.
#[derive(Args)]
pub struct WireArgs {
    #[command(subcommand)]
    command: WireCommand,
}

#[derive(Subcommand)]
enum WireCommand {
    /// Writes one message of every RELOAD method (request and answer), an Error,
    /// and data and ack frames. Without options, lists them with their sizes.
    Sample {
        /// Write a pcap of the samples: framed over TCP to port 6084, and over UDP.
        #[arg(long)]
        pcap: Option<PathBuf>,
        /// Write each sample message as NAME.bin into this directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print each sample's bytes in hex.
        #[arg(long)]
        hex: bool,
    },
    /// Decodes a RELOAD message (or a framed message) and prints its structure.
    Decode {
        /// The message in hex; read from --file or standard input if absent.
        hex: Option<String>,
        /// Read the message from this file: raw bytes, or hex text.
        #[arg(long, short)]
        file: Option<PathBuf>,
        /// Print JSON instead of a tree.
        #[arg(long)]
        json: bool,
        /// Refuse messages larger than this (the overlay's max-message-size).
        #[arg(long, default_value_t = message::DEFAULT_MAX_MESSAGE_SIZE)]
        max_message_size: usize,
        /// Data model of a Kind beyond the registered ones, as KIND=MODEL
        /// (e.g. 0xf0000001=dictionary). Repeatable.
        #[arg(long = "kind", value_parser = parse_kind)]
        kinds: Vec<(KindId, DataModel)>,
    },
}

fn parse_kind(s: &str) -> Result<(KindId, DataModel), String> {
    let (id, model) = s
        .split_once('=')
        .ok_or("expected KIND=MODEL, e.g. 0xf0000001=dictionary")?;
    let id = match id.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16),
        None => id.parse(),
    }
    .map_err(|e| format!("bad Kind-ID {id:?}: {e}"))?;
    let model = match model.to_ascii_lowercase().as_str() {
        "single" | "single_value" => DataModel::Single,
        "array" => DataModel::Array,
        "dictionary" => DataModel::Dictionary,
        other => return Err(format!("unknown data model {other:?}: single, array or dictionary")),
    };
    Ok((KindId(id), model))
}

/// Runs a `wire` subcommand.
pub fn run(args: WireArgs) -> Result<()> {
    match args.command {
        WireCommand::Sample { pcap, dir, hex } => sample(pcap, dir, hex),
        WireCommand::Decode {
            hex,
            file,
            json,
            max_message_size,
            kinds,
        } => {
            let mut config = WireConfig {
                max_message_size,
                ..WireConfig::default()
            };
            for (k, m) in kinds {
                config.data_models.insert(k, m);
            }
            let bytes = read_input(hex, file)?;
            print!("{}", decode(&bytes, &config, json)?);
            Ok(())
        }
    }
}

/// Every sample as (name, encoded message).
fn encoded_samples() -> Result<Vec<(&'static str, Vec<u8>)>> {
    samples::all()
        .into_iter()
        .map(|s| {
            Ok((
                s.name,
                s.message.encode().with_context(|| format!("encoding {}", s.name))?,
            ))
        })
        .collect()
}

fn sample(pcap: Option<PathBuf>, dir: Option<PathBuf>, show_hex: bool) -> Result<()> {
    let messages = encoded_samples()?;
    if let Some(path) = &pcap {
        std::fs::write(path, sample_pcap(&messages)?).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "wrote {} ({} messages, framed, over TCP and UDP port 6084)",
            path.display(),
            messages.len()
        );
    }
    if let Some(dir) = &dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, bytes) in &messages {
            let path = dir.join(format!("{name}.bin"));
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        println!("wrote {} messages into {}", messages.len(), dir.display());
    }
    if pcap.is_none() && dir.is_none() || show_hex {
        for (name, bytes) in &messages {
            if show_hex {
                println!("{name} ({} bytes): {}", bytes.len(), hex::encode(bytes));
            } else {
                println!("{name:<18} {:>5} bytes", bytes.len());
            }
        }
    }
    Ok(())
}

const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 50_000);
const PEER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 20), 6084);
const UDP_CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 6084);

/// TCP flag bits.
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// The pcap of `p2psip wire sample --pcap`: every message as a framed data frame on
/// one TLS/TCP-style connection to port 6084 (§6.6.5, shown in the clear), requests
/// from the client and answers from the peer; then, over UDP port 6084 (§6.6.4 in the
/// clear), the first request framed, its ack frame, and a bare message.
fn sample_pcap(messages: &[(&'static str, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut p = Pcap::new();
    let (mut c_seq, mut p_seq) = (1_000u32, 9_000u32);
    p.tcp(CLIENT, PEER, c_seq, 0, SYN, &[]);
    p.tcp(PEER, CLIENT, p_seq, c_seq + 1, SYN | ACK, &[]);
    c_seq += 1;
    p_seq += 1;
    p.tcp(CLIENT, PEER, c_seq, p_seq, ACK, &[]);
    let (mut c_frame, mut p_frame) = (0u32, 0u32);
    for (name, bytes) in messages {
        let from_client = name.ends_with("_req");
        let sequence = if from_client { &mut c_frame } else { &mut p_frame };
        let frame = FramedMessage::Data {
            sequence: *sequence,
            message: bytes.clone(),
        }
        .to_bytes()?;
        *sequence += 1;
        if from_client {
            p.tcp(CLIENT, PEER, c_seq, p_seq, PSH | ACK, &frame);
            c_seq += frame.len() as u32;
        } else {
            p.tcp(PEER, CLIENT, p_seq, c_seq, PSH | ACK, &frame);
            p_seq += frame.len() as u32;
        }
    }
    let Some((_, first)) = messages.first() else {
        bail!("no sample messages");
    };
    let data = FramedMessage::Data {
        sequence: 0,
        message: first.clone(),
    };
    p.udp(UDP_CLIENT, PEER, &data.to_bytes()?);
    p.udp(PEER, UDP_CLIENT, &FramedMessage::ack_for(0, []).to_bytes()?);
    p.udp(UDP_CLIENT, PEER, first);
    Ok(p.into_bytes())
}

fn read_input(hex_arg: Option<String>, file: Option<PathBuf>) -> Result<Vec<u8>> {
    let raw = match (hex_arg, file) {
        (Some(h), None) => return hex::decode(&h).context("the argument is not valid hex"),
        (None, Some(path)) => std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        (None, None) => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading standard input")?;
            buf
        }
        (Some(_), Some(_)) => bail!("give the message either as hex or with --file, not both"),
    };
    // A RELOAD message starts with 0xd2 and a frame with 0x80 or 0x81: neither is a
    // hex digit, so text made only of hex digits is hex.
    match std::str::from_utf8(&raw).ok().and_then(hex::decode) {
        Some(bytes) if !raw.is_empty() => Ok(bytes),
        _ => Ok(raw),
    }
}

/// What `wire decode` shows: the frame (if any) and the message.
#[derive(Serialize)]
struct Decoded {
    #[serde(skip_serializing_if = "Option::is_none")]
    frame: Option<FrameSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fragment: Option<FragmentSummary>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FrameSummary {
    Data { sequence: u32, length: usize },
    Ack { ack_sequence: u32, received: String },
}

#[derive(Serialize)]
struct FragmentSummary {
    header: reload_wire::ForwardingHeader,
    offset: u32,
    last: bool,
    data_length: usize,
}

fn decode(bytes: &[u8], config: &WireConfig, json: bool) -> Result<String> {
    let mut out = Decoded {
        frame: None,
        message: None,
        fragment: None,
    };
    let message = match bytes.first() {
        Some(0x80) | Some(0x81) => match FramedMessage::from_bytes(bytes).context("decoding the framing header")? {
            FramedMessage::Data { sequence, message } => {
                out.frame = Some(FrameSummary::Data {
                    sequence,
                    length: message.len(),
                });
                Some(message)
            }
            FramedMessage::Ack { ack_sequence, received } => {
                out.frame = Some(FrameSummary::Ack {
                    ack_sequence,
                    received: format!("{received:032b}"),
                });
                None
            }
        },
        _ => Some(bytes.to_vec()),
    };
    if let Some(m) = message {
        let raw = RawMessage::split(&m, config.max_message_size).context("decoding the forwarding header")?;
        if raw.header.fragment.is_whole() {
            out.message = Some(Message::decode(&m, config).context("decoding the message")?);
        } else {
            out.fragment = Some(FragmentSummary {
                offset: raw.header.fragment.offset(),
                last: raw.header.fragment.is_last(),
                data_length: raw.payload.len(),
                header: raw.header,
            });
        }
    }
    let value = serde_json::to_value(&out).context("rendering")?;
    Ok(if json {
        serde_json::to_string_pretty(&value).context("rendering")? + "\n"
    } else {
        render::tree(&value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_decodes_back() {
        let config = WireConfig::default();
        for (name, bytes) in encoded_samples().expect("samples encode") {
            let text = decode(&bytes, &config, false).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }

    #[test]
    fn framed_input_is_unwrapped() {
        let (_, bytes) = encoded_samples().expect("samples encode").remove(0);
        let frame = FramedMessage::Data {
            sequence: 5,
            message: bytes,
        }
        .to_bytes()
        .expect("frame encodes");
        let json = decode(&frame, &WireConfig::default(), true).expect("decodes");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(v["frame"]["sequence"], 5);
        assert_eq!(v["message"]["contents"]["method"], "probe_req");
    }

    #[test]
    fn bad_input_names_the_field() {
        let err = decode(&[0xd2, 0x45, 0x4c], &WireConfig::default(), false).expect_err("truncated");
        assert!(format!("{err:#}").contains("ForwardingHeader.relo_token"), "{err:#}");
    }

    #[test]
    fn kind_argument_parses() {
        assert_eq!(
            parse_kind("0xf0000001=dictionary"),
            Ok((KindId(0xf000_0001), DataModel::Dictionary))
        );
        assert!(parse_kind("7=tree").is_err());
    }
}
