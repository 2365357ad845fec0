//! Choosing a persistent store for a sector and keeping the space promised to it.
//!
//! A sealed sector takes hours to make and must have somewhere to go when it is done, so
//! the manager reserves space for it before the worker starts moving files. This module
//! is the pure core of that: it takes the stores' configurations and measured free space,
//! a random number and the time as arguments, and answers which store to use, recording
//! the reservation in a ledger value. Reading statvfs, drawing the random number and
//! writing the ledger to disk are the caller's (see [`crate::ledger_file`]).
//!
//! The rules are the reference's, with its gaps closed: a store is eligible for a sector
//! when the sector's miner passes the store's allow and deny lists (denial wins), the
//! store is among the caller's candidates (if it named any), the store is writable and
//! measurable, and its free space covers everything already reserved on it plus this
//! request. Among eligible stores one is drawn with probability proportional to its
//! weight (0 counts as 1). Asking again for the same sector and size answers the same
//! store, so a retried request never spreads one sector over two stores.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sector_fsm::Timestamp;
use sector_fsm::types::SectorId;
use serde::{Deserialize, Serialize};

use crate::capacity::human_bytes;
use crate::persist_store::PersistStoreConfig;

/// The version of the ledger's serialized form; bumped on any incompatible change.
pub const LEDGER_FORMAT_VERSION: u32 = 1;

/// Space promised to one sector on one store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The sector the space is for.
    pub sector: SectorId,
    /// The store's name.
    pub store: String,
    /// How many bytes are promised.
    pub bytes: u64,
    /// Who asked (a worker's instance name), for the operator's store listing.
    pub reserved_by: String,
    /// When the space was reserved.
    pub reserved_at: Timestamp,
}

/// Every reservation that is in force, at most one per sector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReservationLedger {
    by_sector: BTreeMap<SectorId, Reservation>,
    /// The bytes reserved on each store, kept with every change of `by_sector` so a
    /// request does not add up every reservation (a manager may hold tens of thousands).
    /// Wider than `u64` so adding and taking away stay exact.
    bytes_by_store: BTreeMap<String, u128>,
}

/// A store as the choice sees it: its configuration and what measuring it gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreView {
    /// The store's configuration.
    pub config: PersistStoreConfig,
    /// The bytes statvfs says may still be written, or why it could not be measured.
    pub free_bytes: Result<u64, String>,
}

/// A request for space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationRequest {
    /// The sector that needs the space.
    pub sector: SectorId,
    /// How many bytes it will write.
    pub bytes: u64,
    /// When given, only stores with these names may be chosen (a worker lists the
    /// stores it can reach).
    pub candidates: Option<BTreeSet<String>>,
    /// Who asks, recorded with the reservation.
    pub requested_by: String,
    /// The time of the request, recorded with the reservation.
    pub now: Timestamp,
}

/// Why one store was not chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreRejection {
    /// The caller's candidate list does not name it.
    NotACandidate,
    /// Its deny list names the sector's miner.
    MinerDenied,
    /// Its allow list is not empty and does not name the sector's miner.
    MinerNotAllowed,
    /// It is read-only.
    ReadOnly,
    /// Its free space could not be measured.
    Unavailable(String),
    /// Its free space does not cover what is reserved plus this request.
    NotEnoughSpace {
        /// What statvfs says is free.
        free: u64,
        /// What other sectors already hold.
        reserved: u64,
    },
}

impl fmt::Display for StoreRejection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreRejection::NotACandidate => write!(formatter, "not among the requested stores"),
            StoreRejection::MinerDenied => write!(formatter, "its deny list names the miner"),
            StoreRejection::MinerNotAllowed => {
                write!(formatter, "its allow list does not name the miner")
            }
            StoreRejection::ReadOnly => write!(formatter, "it is read-only"),
            StoreRejection::Unavailable(reason) => write!(formatter, "unavailable: {reason}"),
            StoreRejection::NotEnoughSpace { free, reserved } => write!(
                formatter,
                "{} free, of which {} is reserved for other sectors",
                human_bytes(u128::from(*free)),
                human_bytes(u128::from(*reserved))
            ),
        }
    }
}

/// No store can take the sector; says why for each store.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct NoStoreFits {
    /// The sector.
    pub sector: SectorId,
    /// The bytes it asked for.
    pub bytes: u64,
    /// Each store's name with the reason it was passed over.
    pub rejections: Vec<(String, StoreRejection)>,
}

impl fmt::Display for NoStoreFits {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "no persistent store can take {} bytes ({}) for sector {}",
            self.bytes,
            human_bytes(u128::from(self.bytes)),
            self.sector
        )?;
        if self.rejections.is_empty() {
            return write!(formatter, ": no persistent store is configured");
        }
        for (name, rejection) in &self.rejections {
            write!(formatter, "; {name}: {rejection}")?;
        }
        Ok(())
    }
}

impl ReservationLedger {
    /// An empty ledger.
    pub fn new() -> ReservationLedger {
        ReservationLedger::default()
    }

    /// A ledger holding `reservations` (read back from a database); two for one sector
    /// are refused, naming the sector.
    pub fn from_reservations(
        reservations: impl IntoIterator<Item = Reservation>,
    ) -> Result<ReservationLedger, String> {
        let mut ledger = ReservationLedger::new();
        for reservation in reservations {
            let sector = reservation.sector;
            if ledger.by_sector.contains_key(&sector) {
                return Err(format!("sector {sector} has two reservations; remove one"));
            }
            ledger.insert(reservation);
        }
        Ok(ledger)
    }

    /// Records `reservation`, replacing the sector's earlier one.
    fn insert(&mut self, reservation: Reservation) {
        *self
            .bytes_by_store
            .entry(reservation.store.clone())
            .or_default() += u128::from(reservation.bytes);
        if let Some(replaced) = self.by_sector.insert(reservation.sector, reservation) {
            self.take_away(&replaced);
        }
    }

    fn take_away(&mut self, reservation: &Reservation) {
        if let Some(total) = self.bytes_by_store.get_mut(&reservation.store) {
            *total = total.saturating_sub(u128::from(reservation.bytes));
            if *total == 0 {
                self.bytes_by_store.remove(&reservation.store);
            }
        }
    }

    /// The sector's reservation, if it has one.
    pub fn reservation_of(&self, sector: SectorId) -> Option<&Reservation> {
        self.by_sector.get(&sector)
    }

    /// Every reservation, in sector order.
    pub fn reservations(&self) -> impl Iterator<Item = &Reservation> {
        self.by_sector.values()
    }

    /// The bytes reserved on the store named `store`.
    pub fn reserved_on(&self, store: &str) -> u64 {
        self.reserved_on_except(store, None)
    }

    fn reserved_on_except(&self, store: &str, except: Option<SectorId>) -> u64 {
        let total = self.bytes_by_store.get(store).copied().unwrap_or(0);
        let own = except
            .and_then(|sector| self.by_sector.get(&sector))
            .filter(|reservation| reservation.store == store)
            .map_or(0, |reservation| u128::from(reservation.bytes));
        u64::try_from(total.saturating_sub(own)).unwrap_or(u64::MAX)
    }

    /// Why `store` cannot take `request`, or `None` when it can. The sector's own earlier
    /// reservation does not count against it, because a new one replaces it.
    pub fn rejection(
        &self,
        store: &StoreView,
        request: &ReservationRequest,
    ) -> Option<StoreRejection> {
        let config = &store.config;
        if let Some(candidates) = &request.candidates
            && !candidates.contains(&config.name)
        {
            return Some(StoreRejection::NotACandidate);
        }
        if config.deny_miners.contains(&request.sector.miner) {
            return Some(StoreRejection::MinerDenied);
        }
        if !config.admits_miner(request.sector.miner) {
            return Some(StoreRejection::MinerNotAllowed);
        }
        if config.read_only {
            return Some(StoreRejection::ReadOnly);
        }
        let free = match &store.free_bytes {
            Ok(free) => *free,
            Err(reason) => return Some(StoreRejection::Unavailable(reason.clone())),
        };
        let reserved = self.reserved_on_except(&config.name, Some(request.sector));
        if u128::from(reserved) + u128::from(request.bytes) > u128::from(free) {
            return Some(StoreRejection::NotEnoughSpace { free, reserved });
        }
        None
    }

    /// Reserves space for `request.sector` on one of `stores` and records it.
    ///
    /// If the sector already holds a reservation of the same size on a store that its
    /// policy and the candidates still allow, that reservation is answered unchanged.
    /// Otherwise the eligible stores are ordered by name and one is drawn by weight
    /// using `random` (any uniformly distributed `u64`), and the new reservation
    /// replaces the sector's old one. On failure the ledger is unchanged.
    pub fn reserve(
        &mut self,
        request: &ReservationRequest,
        stores: &[StoreView],
        random: u64,
    ) -> Result<Reservation, NoStoreFits> {
        if let Some(existing) = self.by_sector.get(&request.sector)
            && existing.bytes == request.bytes
            && stores.iter().any(|store| {
                store.config.name == existing.store && self.still_permits(store, request)
            })
        {
            return Ok(existing.clone());
        }
        let mut eligible = Vec::new();
        let mut rejections = Vec::new();
        for store in stores {
            match self.rejection(store, request) {
                None => eligible.push(&store.config),
                Some(rejection) => rejections.push((store.config.name.clone(), rejection)),
            }
        }
        let Some(chosen) = weighted_choice(eligible, random) else {
            return Err(NoStoreFits {
                sector: request.sector,
                bytes: request.bytes,
                rejections,
            });
        };
        let reservation = Reservation {
            sector: request.sector,
            store: chosen.name.clone(),
            bytes: request.bytes,
            reserved_by: request.requested_by.clone(),
            reserved_at: request.now,
        };
        self.insert(reservation.clone());
        Ok(reservation)
    }

    /// Whether an existing reservation on `store` may be answered again. Its space was
    /// counted when it was made, so only the policy, the candidates and the read-only
    /// flag are checked again; a store that cannot be measured right now keeps the
    /// sector, because a mount that blinks should not scatter sectors.
    fn still_permits(&self, store: &StoreView, request: &ReservationRequest) -> bool {
        matches!(
            self.rejection(store, request),
            None | Some(StoreRejection::Unavailable(_))
                | Some(StoreRejection::NotEnoughSpace { .. })
        )
    }

    /// Drops the sector's reservation (on finalize, on abort, or by an operator) and
    /// returns it; `None` when it had none, which is not an error, so release is safe to
    /// repeat.
    pub fn release(&mut self, sector: SectorId) -> Option<Reservation> {
        let released = self.by_sector.remove(&sector)?;
        self.take_away(&released);
        Some(released)
    }
}

/// Draws one of `stores` with probability proportional to its effective weight, after
/// ordering them by name so the same `random` always gives the same store.
fn weighted_choice(
    mut stores: Vec<&PersistStoreConfig>,
    random: u64,
) -> Option<&PersistStoreConfig> {
    stores.sort_by(|a, b| a.name.cmp(&b.name));
    let total: u128 = stores
        .iter()
        .map(|store| u128::from(store.effective_weight()))
        .sum();
    if total == 0 {
        return None;
    }
    let mut ticket = u128::from(random) % total;
    for store in stores {
        let weight = u128::from(store.effective_weight());
        if ticket < weight {
            return Some(store);
        }
        ticket -= weight;
    }
    None
}

/// The ledger's serialized form: a version, then the reservations.
#[derive(Serialize, Deserialize)]
struct LedgerFile {
    format_version: u32,
    reservations: Vec<Reservation>,
}

impl Serialize for ReservationLedger {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        LedgerFile {
            format_version: LEDGER_FORMAT_VERSION,
            reservations: self.by_sector.values().cloned().collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ReservationLedger {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let file = LedgerFile::deserialize(deserializer)?;
        if file.format_version != LEDGER_FORMAT_VERSION {
            return Err(D::Error::custom(format!(
                "reservation ledger format version {} is not supported (this build reads version {LEDGER_FORMAT_VERSION})",
                file.format_version
            )));
        }
        ReservationLedger::from_reservations(file.reservations).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn view(name: &str, free: u64) -> StoreView {
        StoreView {
            config: PersistStoreConfig::new(name, format!("/mnt/{name}")),
            free_bytes: Ok(free),
        }
    }

    fn request(number: u64, bytes: u64) -> ReservationRequest {
        ReservationRequest {
            sector: SectorId {
                miner: 1000,
                number,
            },
            bytes,
            candidates: None,
            requested_by: "worker-1".to_owned(),
            now: Timestamp::from_unix_millis(5),
        }
    }

    #[test]
    fn the_same_request_answers_the_same_store_and_a_new_size_replaces_it() {
        let stores = [view("a", 100 * GIB), view("b", 100 * GIB)];
        let mut ledger = ReservationLedger::new();
        let first = ledger
            .reserve(&request(1, 40 * GIB), &stores, 0)
            .expect("reserve");
        for random in 1..20 {
            let again = ledger
                .reserve(&request(1, 40 * GIB), &stores, random)
                .expect("again");
            assert_eq!(again.store, first.store);
        }
        let bigger = ledger
            .reserve(&request(1, 90 * GIB), &stores, 7)
            .expect("bigger");
        assert_eq!(ledger.reservations().count(), 1);
        assert_eq!(ledger.reserved_on(&bigger.store), 90 * GIB);
    }

    #[test]
    fn reserved_space_counts_against_later_sectors() {
        let stores = [view("a", 100 * GIB)];
        let mut ledger = ReservationLedger::new();
        ledger
            .reserve(&request(1, 60 * GIB), &stores, 0)
            .expect("first fits");
        let error = ledger
            .reserve(&request(2, 60 * GIB), &stores, 0)
            .expect_err("second does not");
        assert_eq!(
            error.rejections,
            [(
                "a".to_owned(),
                StoreRejection::NotEnoughSpace {
                    free: 100 * GIB,
                    reserved: 60 * GIB
                }
            )]
        );
        assert!(
            error
                .to_string()
                .contains("a: 100.0 GiB free, of which 60.0 GiB is reserved"),
            "{error}"
        );
        ledger.release(SectorId {
            miner: 1000,
            number: 1,
        });
        ledger
            .reserve(&request(2, 60 * GIB), &stores, 0)
            .expect("fits after release");
    }

    #[test]
    fn a_refusal_explains_every_store() {
        let mut denied = view("denied", 100 * GIB);
        denied.config.deny_miners = vec![1000];
        let mut read_only = view("ro", 100 * GIB);
        read_only.config.read_only = true;
        let broken = StoreView {
            free_bytes: Err("stale NFS handle".to_owned()),
            ..view("nfs", 0)
        };
        let mut ledger = ReservationLedger::new();
        let error = ledger
            .reserve(&request(1, GIB), &[denied, read_only, broken], 0)
            .expect_err("nothing is eligible");
        let message = error.to_string();
        assert!(
            message.contains("denied: its deny list names the miner"),
            "{message}"
        );
        assert!(message.contains("ro: it is read-only"), "{message}");
        assert!(
            message.contains("nfs: unavailable: stale NFS handle"),
            "{message}"
        );
        assert_eq!(
            ledger,
            ReservationLedger::new(),
            "a refusal changes nothing"
        );
        let none = ReservationLedger::new()
            .reserve(&request(1, GIB), &[], 0)
            .expect_err("no stores");
        assert!(
            none.to_string()
                .ends_with("no persistent store is configured")
        );
    }

    #[test]
    fn the_ledger_round_trips_and_rejects_duplicates_and_other_versions() {
        let stores = [view("a", 100 * GIB)];
        let mut ledger = ReservationLedger::new();
        ledger
            .reserve(&request(1, GIB), &stores, 0)
            .expect("reserve");
        let json = serde_json::to_string(&ledger).expect("encode");
        assert_eq!(
            serde_json::from_str::<ReservationLedger>(&json).expect("decode"),
            ledger
        );
        let entry = r#"{"sector":{"miner":1,"number":2},"store":"a","bytes":1,"reserved_by":"w","reserved_at":0}"#;
        let duplicated = format!(r#"{{"format_version":1,"reservations":[{entry},{entry}]}}"#);
        let error = serde_json::from_str::<ReservationLedger>(&duplicated).expect_err("duplicate");
        assert!(
            error.to_string().contains("s-t01-2 has two reservations"),
            "{error}"
        );
        let future = r#"{"format_version":2,"reservations":[]}"#;
        assert!(serde_json::from_str::<ReservationLedger>(future).is_err());
    }
}
