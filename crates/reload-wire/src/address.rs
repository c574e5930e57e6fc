//! `IpAddressPort` (RFC 6940 §6.3.1.1): an IPv4 or IPv6 address and port behind a
//! type and a length, so that unknown address types can be skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::codes::AddressType;
use crate::error::{DecodeError, EncodeError};
use crate::hex;

/// An address and port, or an address type this implementation does not know.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum IpAddressPort {
    /// `ipv4_address` or `ipv6_address`.
    Socket(SocketAddr),
    /// Another address type, kept as received.
    Unknown {
        /// The type, not 0, 1 or 2.
        address_type: AddressType,
        /// The bytes after the length.
        #[serde(serialize_with = "hex::serialize")]
        data: Vec<u8>,
    },
}

impl From<SocketAddr> for IpAddressPort {
    fn from(a: SocketAddr) -> Self {
        IpAddressPort::Socket(a)
    }
}

impl IpAddressPort {
    /// The socket address, if the type is IPv4 or IPv6.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            IpAddressPort::Socket(a) => Some(*a),
            IpAddressPort::Unknown { .. } => None,
        }
    }
}

impl Encode for IpAddressPort {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        match self {
            IpAddressPort::Socket(SocketAddr::V4(a)) => {
                w.u8(AddressType::IPV4.0);
                w.u8(6);
                w.bytes(&a.ip().octets());
                w.u16(a.port());
                Ok(())
            }
            IpAddressPort::Socket(SocketAddr::V6(a)) => {
                if a.flowinfo() != 0 || a.scope_id() != 0 {
                    // The wire form has neither; dropping them would change the value.
                    return Err(EncodeError::invalid(
                        "IpAddressPort",
                        "an IPv6 flow label or scope id cannot be carried",
                    ));
                }
                w.u8(AddressType::IPV6.0);
                w.u8(18);
                w.bytes(&a.ip().octets());
                w.u16(a.port());
                Ok(())
            }
            IpAddressPort::Unknown { address_type, data } => {
                if address_type.0 == 0 || address_type.name().is_some() {
                    return Err(EncodeError::invalid(
                        "IpAddressPort.type",
                        "an unknown address type is 3..255",
                    ));
                }
                w.u8(address_type.0);
                w.opaque(Prefix::U8, "IpAddressPort.length", data)
            }
        }
    }
}

impl Decode for IpAddressPort {
    const NAME: &'static str = "IpAddressPort";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ty = AddressType(r.u8("IpAddressPort.type")?);
        let mut v = r.vector(Prefix::U8, "IpAddressPort.length")?;
        let addr = match ty {
            AddressType::IPV4 => {
                expect_len(&v, 6)?;
                let ip = Ipv4Addr::from(v.array::<4>("IPv4AddrPort.addr")?);
                IpAddressPort::Socket(SocketAddr::new(IpAddr::V4(ip), v.u16("IPv4AddrPort.port")?))
            }
            AddressType::IPV6 => {
                expect_len(&v, 18)?;
                let ip = Ipv6Addr::from(v.array::<16>("IPv6AddrPort.addr")?);
                IpAddressPort::Socket(SocketAddr::new(IpAddr::V6(ip), v.u16("IPv6AddrPort.port")?))
            }
            AddressType(0) => {
                return Err(DecodeError::invalid(
                    "IpAddressPort.type",
                    0,
                    "ipv4_address or ipv6_address",
                ));
            }
            address_type => IpAddressPort::Unknown {
                address_type,
                data: v.take_rest().to_vec(),
            },
        };
        Ok(addr)
    }
}

fn expect_len(v: &Reader<'_>, n: usize) -> Result<(), DecodeError> {
    if v.remaining() == n {
        Ok(())
    } else {
        Err(DecodeError::invalid(
            "IpAddressPort.length",
            v.remaining() as u64,
            "6 for IPv4, 18 for IPv6",
        ))
    }
}
