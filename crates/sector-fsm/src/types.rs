//! The facts a sector accumulates as it moves through a plan, as plain data.
//!
//! These are the machine's own types, not the wire types of the manager's JSON-RPC: the
//! driver converts between the two. Outputs that only processors read (PC1 and C1
//! outputs, window-PoSt inputs) are kept as opaque JSON so this crate never depends on
//! the proofs library; the processor protocol already speaks JSON.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A sector's identity on chain: the miner actor id and the sector number it allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct SectorId {
    /// The miner actor id (the number in `t01000`).
    pub miner: u64,
    /// The sector number allocated by the manager.
    pub number: u64,
}

impl fmt::Display for SectorId {
    /// The reference's file name for a sector, `s-t0<miner>-<number>`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "s-t0{}-{}", self.miner, self.number)
    }
}

/// A registered seal proof type, by its on-chain number (`abi.RegisteredSealProof`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
#[serde(transparent)]
pub struct SealProofType(pub u64);

/// A sector the manager has allocated to this sealing thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct AllocatedSector {
    /// The sector's identity.
    pub id: SectorId,
    /// The proof type it is sealed with.
    pub proof_type: SealProofType,
}

/// 32 bytes, written as hex in the record: commitments, randomness.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct Bytes32(pub [u8; 32]);

impl fmt::Debug for Bytes32 {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", hex::encode(self.0))
    }
}

impl Serialize for Bytes32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&text, &mut bytes).map_err(|error| {
            serde::de::Error::custom(format!("expected 64 hex digits, got {text:?}: {error}"))
        })?;
        Ok(Bytes32(bytes))
    }
}

/// A commitment (CommR, CommD, a piece's CommP).
pub type Commitment = Bytes32;

/// A byte string of any length (a SNARK proof), written as hex in the record.
#[derive(Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct Blob(pub Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Blob({} bytes)", self.0.len())
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(&text)
            .map(Blob)
            .map_err(|error| serde::de::Error::custom(format!("expected hex digits: {error}")))
    }
}

/// Chain randomness drawn for a sector at an epoch: the PreCommit ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct Ticket {
    /// The 32 bytes of randomness.
    pub randomness: Bytes32,
    /// The epoch it was drawn at.
    pub epoch: i64,
}

/// Chain randomness drawn after PreCommit landed: the interactive PoRep seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct Seed {
    /// The 32 bytes of randomness.
    pub randomness: Bytes32,
    /// The epoch it was drawn at.
    pub epoch: i64,
}

/// One piece the manager assigned to a sector: a deal's data or a pledge (zero) piece.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct DealPiece {
    /// The piece CID in its string form (`baga6ea4sea…`).
    pub piece_cid: String,
    /// The padded piece size in bytes.
    pub padded_size: u64,
    /// The unpadded payload size in bytes.
    pub payload_size: u64,
    /// The deal id (builtin market deals); 0 for none.
    pub deal_id: u64,
    /// The verified-registry allocation id (direct data onboarding); 0 for none.
    pub allocation_id: u64,
    /// Whether the deal lives in the builtin market actor (else it is a DDO piece).
    pub is_builtin_market: bool,
}

impl DealPiece {
    /// A pledge piece is zero-filled padding, recognised as the reference does:
    /// no deal id for a builtin-market piece, no allocation id for a DDO piece.
    pub fn is_pledge(&self) -> bool {
        if self.is_builtin_market {
            self.deal_id == 0
        } else {
            self.allocation_id == 0
        }
    }
}

/// A piece as laid out in the staged sector: its commitment and padded size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct PieceInfo {
    /// The piece commitment (CommP).
    pub commitment: Commitment,
    /// The padded size in bytes.
    pub padded_size: u64,
}

/// The result of PC2: the replica commitment and the data commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct PreCommitOutput {
    /// CommR of the sealed replica.
    pub comm_r: Commitment,
    /// CommD of the unsealed data.
    pub comm_d: Commitment,
}

/// A processor's output kept verbatim as JSON, for outputs only processors read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpaqueOutput(pub serde_json::Value);

#[cfg(feature = "testing")]
impl<'a> arbitrary::Arbitrary<'a> for OpaqueOutput {
    fn arbitrary(input: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let text: String = input.arbitrary()?;
        let number: u32 = input.arbitrary()?;
        Ok(OpaqueOutput(
            serde_json::json!({ "text": text, "number": number }),
        ))
    }
}

/// The result of encoding new data into an existing replica (SnapDeals).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct SnapEncodeOutput {
    /// CommR of the updated replica.
    pub comm_r_new: Commitment,
    /// The root of the updated replica's tree-r-last.
    pub comm_r_last_new: Commitment,
    /// CommD of the new data.
    pub comm_d_new: Commitment,
}

/// A sector that is already sealed and stored: what snap-up encodes into.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct SealedReplica {
    /// CommR of the existing replica.
    pub comm_r: Commitment,
    /// The persistent store (by name) that holds its files.
    pub access_instance: String,
}

/// What the manager hands a snap-up thread: a CC sector to upgrade and the deals for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct SnapUpAllocation {
    /// The sector being upgraded.
    pub sector: AllocatedSector,
    /// The deal pieces to encode into it.
    pub deals: Vec<DealPiece>,
    /// The existing replica.
    pub replica: SealedReplica,
}

/// What the manager hands a rebuild thread: everything needed to seal a lost sector again.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct RebuildAllocation {
    /// The sector being rebuilt.
    pub sector: AllocatedSector,
    /// The ticket it was originally sealed with.
    pub ticket: Ticket,
    /// Its deal pieces (for an upgraded sector, the pieces of the upgrade).
    pub deals: Vec<DealPiece>,
    /// For a sector that was snapped up: CommR of the original CC replica.
    pub upgraded_from_comm_r: Option<Commitment>,
}

/// A request to unseal one piece of a stored sector.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct UnsealRequest {
    /// The piece CID to recover.
    pub piece_cid: String,
    /// CommD of the sector.
    pub comm_d: Commitment,
    /// The piece's offset in the sector, in unpadded bytes.
    pub offset: u64,
    /// The piece's size, in unpadded bytes.
    pub size: u64,
    /// The persistent store (by name) that holds the sealed sector.
    pub access_instance: String,
}

/// What the manager hands an unseal thread.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct UnsealAllocation {
    /// The sealed sector to read.
    pub sector: AllocatedSector,
    /// The ticket it was sealed with.
    pub ticket: Ticket,
    /// Which piece to recover.
    pub request: UnsealRequest,
}

/// A window-PoSt job handed out by the manager to a `wdpost`-plan thread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
pub struct WindowPostJob {
    /// The manager's job id.
    pub job_id: String,
    /// The job's input as the manager sent it (sectors, miner, proof type, seed).
    pub input: OpaqueOutput,
}

/// What generating a window PoSt produced: a proof, or the reason it could not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "testing", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum WindowPostOutcome {
    /// The processor's output (proofs and faulty sectors).
    Proved(OpaqueOutput),
    /// The processor failed; the text goes back to the manager.
    Failed(String),
}
