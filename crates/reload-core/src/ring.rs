//! Arithmetic on the CHORD-RELOAD ring: 128-bit identifiers modulo 2^128
//! (RFC 6940 §10.1), and the Resource-ID hash (§10.2).

use reload_wire::{NodeId, ResourceId};
use sha1::{Digest, Sha1};

/// A position on the ring.
pub type Point = u128;

/// The position of a Node-ID.
pub fn point(id: NodeId) -> Point {
    u128::from_be_bytes(id.0)
}

/// The Node-ID at a position.
pub fn node_at(p: Point) -> NodeId {
    NodeId(p.to_be_bytes())
}

/// The position of a Resource-ID: its first 16 bytes, zero-padded if shorter
/// (CHORD-RELOAD Resource-IDs are exactly 128 bits, §10.2).
pub fn resource_point(r: &ResourceId) -> Point {
    let mut b = [0u8; 16];
    let src = r.as_bytes();
    let n = src.len().min(16);
    b[..n].copy_from_slice(&src[..n]);
    u128::from_be_bytes(b)
}

/// The Resource-ID at a position.
pub fn resource_at(p: Point) -> ResourceId {
    ResourceId::from(node_at(p))
}

/// Resource-ID of a Resource Name: SHA-1 truncated to its most significant 128 bits (§10.2).
pub fn hash_resource_name(name: &[u8]) -> ResourceId {
    let digest = Sha1::digest(name);
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    ResourceId::from(NodeId(b))
}

/// Clockwise distance from `from` to `to`.
pub fn distance(from: Point, to: Point) -> u128 {
    to.wrapping_sub(from)
}

/// Whether `x` lies in the half-open ring interval (a, b]. With a == b the
/// interval is the whole ring (a node alone is responsible for everything).
pub fn in_half_open(x: Point, a: Point, b: Point) -> bool {
    if a == b {
        return true;
    }
    let d = distance(a, x);
    d != 0 && d <= distance(a, b)
}

/// Whether `x` lies in the open ring interval (a, b).
pub fn in_open(x: Point, a: Point, b: Point) -> bool {
    let d = distance(a, x);
    d != 0 && (a == b || d < distance(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_wrap_around_zero() {
        assert!(in_half_open(5, u128::MAX - 2, 10));
        assert!(in_half_open(10, u128::MAX - 2, 10));
        assert!(!in_half_open(u128::MAX - 2, u128::MAX - 2, 10));
        assert!(!in_half_open(11, u128::MAX - 2, 10));
        assert!(in_open(0, u128::MAX, 1));
        assert!(!in_open(1, u128::MAX, 1));
        assert!(in_half_open(42, 7, 7), "a node alone owns the ring");
    }

    #[test]
    fn resource_hash_is_truncated_sha1() {
        // SHA-1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d.
        let r = hash_resource_name(b"abc");
        assert_eq!(
            reload_wire::hex::encode(r.as_bytes()),
            "a9993e364706816aba3e25717850c26c"
        );
    }
}
