//! The simulated network: node addresses and per-pair latency.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use reload_wire::{CandidateType, IceCandidate, IpAddressPort, OverlayLinkType};

use crate::config::Latency;

/// The port every simulated node listens on.
const PORT: u16 = 6084;

/// A simulated node's address: 127.x.y.z, its index in the low 24 bits. These
/// addresses never reach a socket; they only name nodes inside the simulator.
pub fn address(index: usize) -> SocketAddr {
    let i = (index as u32) & 0x00ff_ffff;
    SocketAddr::from((Ipv4Addr::from(0x7f00_0000 | i), PORT))
}

/// The node index behind an address made by [`address`].
pub fn index_of(addr: &IpAddressPort) -> Option<usize> {
    match addr.socket_addr()? {
        SocketAddr::V4(a) if a.ip().octets()[0] == 127 => Some((u32::from(*a.ip()) & 0x00ff_ffff) as usize),
        _ => None,
    }
}

/// The No-ICE candidate a simulated node offers in Attach (§6.5.1.11).
pub fn candidate(index: usize) -> IceCandidate {
    IceCandidate {
        addr_port: address(index).into(),
        overlay_link: OverlayLinkType::TLS_TCP_FH_NO_ICE,
        foundation: b"1".to_vec(),
        priority: 1,
        candidate_type: CandidateType::Host,
        extensions: Vec::new(),
    }
}

/// A stateless mix of the seed and two numbers into 64 well-spread bits (SplitMix64).
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One-way latency between two nodes: fixed per pair for the whole run.
pub fn latency(model: &Latency, seed: u64, a: usize, b: usize) -> Duration {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let ms = match model {
        Latency::Constant { ms } => *ms,
        Latency::Uniform { min_ms, max_ms } => {
            let u = (mix(seed, lo as u64, hi as u64) >> 11) as f64 / (1u64 << 53) as f64;
            min_ms + u * (max_ms - min_ms)
        }
        Latency::Matrix { ms } => {
            let groups = ms.len().max(1);
            let (ga, gb) = (lo % groups, hi % groups);
            ms.get(ga).and_then(|row| row.get(gb)).copied().unwrap_or(0.0)
        }
    };
    Duration::from_micros((ms.max(0.0) * 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for i in [0, 1, 255, 70_000, 0x00ff_ffff] {
            assert_eq!(index_of(&address(i).into()), Some(i));
        }
    }

    #[test]
    fn latency_is_symmetric_and_in_range() {
        let m = Latency::Uniform {
            min_ms: 5.0,
            max_ms: 50.0,
        };
        for (a, b) in [(1, 2), (7, 3), (100, 9)] {
            let l = latency(&m, 42, a, b);
            assert_eq!(l, latency(&m, 42, b, a));
            assert!(l >= Duration::from_millis(5) && l <= Duration::from_millis(50));
        }
    }
}
