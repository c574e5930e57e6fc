//! CHORD-RELOAD's overlay-specific bodies (RFC 6940 §10.7, §10.8, §10.9).

use serde::Serialize;

use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::codes::{ChordLeaveType, ChordUpdateType};
use crate::error::{DecodeError, EncodeError};
use crate::ids::{NODE_ID_LEN, NodeId};

/// Reads `NodeId x<0..2^16-1>`: the length must be a whole number of Node-IDs.
pub(crate) fn decode_node_ids(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<NodeId>, DecodeError> {
    let mut v = r.vector(Prefix::U16, field)?;
    if v.remaining() % NODE_ID_LEN != 0 {
        return Err(DecodeError::invalid(
            field,
            v.remaining() as u64,
            "a multiple of 16 (whole Node-IDs)",
        ));
    }
    let mut out = Vec::with_capacity(v.remaining() / NODE_ID_LEN);
    while !v.is_empty() {
        out.push(NodeId::decode(&mut v)?);
    }
    Ok(out)
}

/// The kind of Update and the tables it carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChordUpdateData {
    /// The sender is a peer and can be routed through.
    PeerReady,
    /// The sender's neighbor table, sent to its neighbors.
    Neighbors {
        /// Predecessors, nearest first.
        predecessors: Vec<NodeId>,
        /// Successors, nearest first.
        successors: Vec<NodeId>,
    },
    /// Neighbors and fingers, sent when a RouteQuery asks for an Update.
    Full {
        /// Predecessors, nearest first.
        predecessors: Vec<NodeId>,
        /// Successors, nearest first.
        successors: Vec<NodeId>,
        /// The finger table, in ascending order.
        fingers: Vec<NodeId>,
    },
}

/// `ChordUpdate` (RFC 6940 §10.7): the whole UpdateReq body of a CHORD-RELOAD overlay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChordUpdate {
    /// Seconds the sender has been up.
    pub uptime: u32,
    /// The update.
    pub data: ChordUpdateData,
}

impl Encode for ChordUpdate {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u32(self.uptime);
        match &self.data {
            ChordUpdateData::PeerReady => w.u8(ChordUpdateType::PEER_READY.0),
            ChordUpdateData::Neighbors {
                predecessors,
                successors,
            } => {
                w.u8(ChordUpdateType::NEIGHBORS.0);
                w.list(Prefix::U16, "ChordUpdate.predecessors", predecessors)?;
                w.list(Prefix::U16, "ChordUpdate.successors", successors)?;
            }
            ChordUpdateData::Full {
                predecessors,
                successors,
                fingers,
            } => {
                w.u8(ChordUpdateType::FULL.0);
                w.list(Prefix::U16, "ChordUpdate.predecessors", predecessors)?;
                w.list(Prefix::U16, "ChordUpdate.successors", successors)?;
                w.list(Prefix::U16, "ChordUpdate.fingers", fingers)?;
            }
        }
        Ok(())
    }
}

impl Decode for ChordUpdate {
    const NAME: &'static str = "ChordUpdate";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let uptime = r.u32("ChordUpdate.uptime")?;
        let data = match ChordUpdateType(r.u8("ChordUpdate.type")?) {
            ChordUpdateType::PEER_READY => ChordUpdateData::PeerReady,
            ChordUpdateType::NEIGHBORS => ChordUpdateData::Neighbors {
                predecessors: decode_node_ids(r, "ChordUpdate.predecessors")?,
                successors: decode_node_ids(r, "ChordUpdate.successors")?,
            },
            ChordUpdateType::FULL => ChordUpdateData::Full {
                predecessors: decode_node_ids(r, "ChordUpdate.predecessors")?,
                successors: decode_node_ids(r, "ChordUpdate.successors")?,
                fingers: decode_node_ids(r, "ChordUpdate.fingers")?,
            },
            other => {
                return Err(DecodeError::invalid(
                    "ChordUpdate.type",
                    other.0.into(),
                    "peer_ready, neighbors or full",
                ));
            }
        };
        Ok(ChordUpdate { uptime, data })
    }
}

/// `ChordRouteQueryAns` (RFC 6940 §10.8): where the answering peer would route next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ChordRouteQueryAns {
    /// The next hop.
    pub next_peer: NodeId,
}

impl Encode for ChordRouteQueryAns {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.next_peer.encode(w)
    }
}

impl Decode for ChordRouteQueryAns {
    const NAME: &'static str = "ChordRouteQueryAns";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ChordRouteQueryAns {
            next_peer: NodeId::decode(r)?,
        })
    }
}

/// `ChordLeaveData` (RFC 6940 §10.9): the leaving peer's view, in LeaveReq's
/// overlay_specific_data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChordLeaveData {
    /// Sent by a successor of the receiver: the leaving peer's successors.
    FromSucc {
        /// The sender's successor list.
        successors: Vec<NodeId>,
    },
    /// Sent by a predecessor of the receiver: the leaving peer's predecessors.
    FromPred {
        /// The sender's predecessor list.
        predecessors: Vec<NodeId>,
    },
}

impl Encode for ChordLeaveData {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        match self {
            ChordLeaveData::FromSucc { successors } => {
                w.u8(ChordLeaveType::FROM_SUCC.0);
                w.list(Prefix::U16, "ChordLeaveData.successors", successors)
            }
            ChordLeaveData::FromPred { predecessors } => {
                w.u8(ChordLeaveType::FROM_PRED.0);
                w.list(Prefix::U16, "ChordLeaveData.predecessors", predecessors)
            }
        }
    }
}

impl Decode for ChordLeaveData {
    const NAME: &'static str = "ChordLeaveData";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match ChordLeaveType(r.u8("ChordLeaveData.type")?) {
            ChordLeaveType::FROM_SUCC => Ok(ChordLeaveData::FromSucc {
                successors: decode_node_ids(r, "ChordLeaveData.successors")?,
            }),
            ChordLeaveType::FROM_PRED => Ok(ChordLeaveData::FromPred {
                predecessors: decode_node_ids(r, "ChordLeaveData.predecessors")?,
            }),
            other => Err(DecodeError::invalid(
                "ChordLeaveData.type",
                other.0.into(),
                "from_succ or from_pred",
            )),
        }
    }
}
