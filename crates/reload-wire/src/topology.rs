//! The topology plug-in's methods (RFC 6940 §6.4.2): Join, Leave and RouteQuery.
//! Update's body is entirely overlay specific and is [`crate::chord::ChordUpdate`].

use serde::Serialize;

use crate::chord::ChordLeaveData;
use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::forwarding::Destination;
use crate::hex;
use crate::ids::NodeId;

/// `JoinReq` (RFC 6940 §6.4.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JoinReq {
    /// The Node-ID the joining peer takes; must be the one that signed the request.
    pub joining_peer_id: NodeId,
    /// CHORD-RELOAD defines none.
    #[serde(serialize_with = "hex::serialize")]
    pub overlay_specific_data: Vec<u8>,
}

impl Encode for JoinReq {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.joining_peer_id.encode(w)?;
        w.opaque(
            Prefix::U16,
            "JoinReq.overlay_specific_data",
            &self.overlay_specific_data,
        )
    }
}

impl Decode for JoinReq {
    const NAME: &'static str = "JoinReq";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(JoinReq {
            joining_peer_id: NodeId::decode(r)?,
            overlay_specific_data: r.opaque(Prefix::U16, "JoinReq.overlay_specific_data")?,
        })
    }
}

/// `JoinAns` (RFC 6940 §6.4.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct JoinAns {
    /// CHORD-RELOAD defines none.
    #[serde(serialize_with = "hex::serialize")]
    pub overlay_specific_data: Vec<u8>,
}

impl Encode for JoinAns {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.opaque(
            Prefix::U16,
            "JoinAns.overlay_specific_data",
            &self.overlay_specific_data,
        )
    }
}

impl Decode for JoinAns {
    const NAME: &'static str = "JoinAns";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(JoinAns {
            overlay_specific_data: r.opaque(Prefix::U16, "JoinAns.overlay_specific_data")?,
        })
    }
}

/// `LeaveReq` (RFC 6940 §6.4.2.2) with CHORD-RELOAD's ChordLeaveData (§10.9) as its
/// overlay_specific_data; `None` when that field is empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeaveReq {
    /// The leaving peer; must be the one that signed the request.
    pub leaving_peer_id: NodeId,
    /// The leaving peer's neighbors.
    pub chord: Option<ChordLeaveData>,
}

impl Encode for LeaveReq {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.leaving_peer_id.encode(w)?;
        w.vector(Prefix::U16, "LeaveReq.overlay_specific_data", |w| match &self.chord {
            Some(d) => d.encode(w),
            None => Ok(()),
        })
    }
}

impl Decode for LeaveReq {
    const NAME: &'static str = "LeaveReq";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let leaving_peer_id = NodeId::decode(r)?;
        let mut data = r.vector(Prefix::U16, "LeaveReq.overlay_specific_data")?;
        let chord = if data.is_empty() {
            None
        } else {
            let d = ChordLeaveData::decode(&mut data)?;
            data.finish("LeaveReq.overlay_specific_data")?;
            Some(d)
        };
        Ok(LeaveReq { leaving_peer_id, chord })
    }
}

/// `RouteQueryReq` (RFC 6940 §6.4.2.4.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteQueryReq {
    /// Ask the receiver to send an Update with its routing table.
    pub send_update: bool,
    /// The destination being asked about.
    pub destination: Destination,
    /// CHORD-RELOAD defines none (§10.8).
    #[serde(serialize_with = "hex::serialize")]
    pub overlay_specific_data: Vec<u8>,
}

impl Encode for RouteQueryReq {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.boolean(self.send_update);
        self.destination.encode(w)?;
        w.opaque(
            Prefix::U16,
            "RouteQueryReq.overlay_specific_data",
            &self.overlay_specific_data,
        )
    }
}

impl Decode for RouteQueryReq {
    const NAME: &'static str = "RouteQueryReq";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RouteQueryReq {
            send_update: r.boolean("RouteQueryReq.send_update")?,
            destination: Destination::decode(r)?,
            overlay_specific_data: r.opaque(Prefix::U16, "RouteQueryReq.overlay_specific_data")?,
        })
    }
}
