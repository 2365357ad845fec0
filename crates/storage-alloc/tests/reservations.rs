//! Property tests of persistent-store reservations against a plain model.
//!
//! The model keeps stores and reservations as plain vectors and maps and restates the
//! choice rules directly; proptest drives the real [`ReservationLedger`] and the model
//! through the same interleavings of reserve, release, finalize (the sector's files land
//! and use up to the reserved space), free space growing and stores dropping out, and
//! compares them after every step. After every step it also checks the promises the
//! ledger makes on its own: no store has more reserved than it has free, no store holds
//! a sector its miner policy or read-only flag forbids, and the ledger survives a JSON
//! round trip. A second property checks that weights are honoured (see
//! `weights_are_honoured` for the tolerance).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use sector_fsm::Timestamp;
use sector_fsm::types::SectorId;
use storage_alloc::{PersistStoreConfig, ReservationLedger, ReservationRequest, StoreView};

/// Sizes are counted in units so that stores fill up within a short run.
const UNIT: u64 = 1 << 30;
const MINERS: [u64; 3] = [1001, 1002, 1003];

#[derive(Clone, Debug)]
struct ModelStore {
    name: String,
    weight: u64,
    read_only: bool,
    allow: Vec<u64>,
    deny: Vec<u64>,
    free: u64,
    available: bool,
}

#[derive(Clone, Debug)]
enum Operation {
    Reserve {
        sector: (u64, u64),
        units: u64,
        candidates: Option<Vec<usize>>,
        random: u64,
    },
    Release {
        sector: (u64, u64),
    },
    Finalize {
        sector: (u64, u64),
        written_permille: u64,
    },
    FreeSpaceGrows {
        store: usize,
        units: u64,
    },
    ToggleAvailability {
        store: usize,
    },
}

#[derive(Clone, Debug)]
struct Model {
    stores: Vec<ModelStore>,
    /// Sector → (store index, bytes).
    reservations: BTreeMap<(u64, u64), (usize, u64)>,
    /// What the last reserve should have answered: the store's index, or none fits.
    expected_answer: Option<Option<usize>>,
}

impl Model {
    fn policy_admits(&self, store: usize, miner: u64, candidates: &Option<Vec<usize>>) -> bool {
        let store_config = &self.stores[store];
        candidates
            .as_ref()
            .is_none_or(|names| names.contains(&store))
            && !store_config.deny.contains(&miner)
            && (store_config.allow.is_empty() || store_config.allow.contains(&miner))
    }

    fn reserved_except(&self, store: usize, sector: (u64, u64)) -> u64 {
        self.reservations
            .iter()
            .filter(|(other, (index, _))| **other != sector && *index == store)
            .map(|(_, (_, bytes))| bytes)
            .sum()
    }

    fn reserve(
        &mut self,
        sector: (u64, u64),
        bytes: u64,
        candidates: &Option<Vec<usize>>,
        random: u64,
    ) -> Option<usize> {
        if let Some(&(store, reserved)) = self.reservations.get(&sector)
            && reserved == bytes
            && self.policy_admits(store, sector.0, candidates)
            && !self.stores[store].read_only
        {
            return Some(store);
        }
        let mut eligible: Vec<usize> = (0..self.stores.len())
            .filter(|&index| {
                let store = &self.stores[index];
                self.policy_admits(index, sector.0, candidates)
                    && !store.read_only
                    && store.available
                    && self.reserved_except(index, sector) + bytes <= store.free
            })
            .collect();
        eligible.sort_by(|a, b| self.stores[*a].name.cmp(&self.stores[*b].name));
        let weights: Vec<u64> = eligible
            .iter()
            .map(|&index| self.stores[index].weight.max(1))
            .collect();
        let total: u64 = weights.iter().sum();
        if total == 0 {
            return None;
        }
        let mut ticket = random % total;
        for (index, weight) in eligible.into_iter().zip(weights) {
            if ticket < weight {
                self.reservations.insert(sector, (index, bytes));
                return Some(index);
            }
            ticket -= weight;
        }
        unreachable!("the ticket is below the total weight")
    }

    fn views(&self) -> Vec<StoreView> {
        self.stores
            .iter()
            .map(|store| StoreView {
                config: PersistStoreConfig {
                    name: store.name.clone(),
                    path: format!("/mnt/{}", store.name).into(),
                    weight: store.weight,
                    read_only: store.read_only,
                    allow_miners: store.allow.clone(),
                    deny_miners: store.deny.clone(),
                },
                free_bytes: if store.available {
                    Ok(store.free)
                } else {
                    Err("the mount is not responding".to_owned())
                },
            })
            .collect()
    }
}

fn sector_id((miner, number): (u64, u64)) -> SectorId {
    SectorId { miner, number }
}

fn store_strategy() -> impl Strategy<Value = ModelStore> {
    let miners = || subsequence(MINERS.to_vec(), 0..=2);
    (
        0u64..6,
        proptest::bool::weighted(0.15),
        prop_oneof![3 => Just(Vec::new()), 1 => miners()],
        prop_oneof![3 => Just(Vec::new()), 1 => miners()],
        0u64..200,
    )
        .prop_map(|(weight, read_only, allow, deny, free_units)| ModelStore {
            name: String::new(),
            weight,
            read_only,
            allow,
            deny,
            free: free_units * UNIT,
            available: true,
        })
}

struct Reservations;

impl ReferenceStateMachine for Reservations {
    type State = Model;
    type Transition = Operation;

    fn init_state() -> BoxedStrategy<Model> {
        (proptest::collection::vec(store_strategy(), 1..=5), Just(()))
            .prop_perturb(|(mut stores, ()), mut random| {
                // Names are shuffled so that name order and generation order differ.
                let mut names: Vec<String> = (0..stores.len())
                    .map(|index| format!("store-{index}"))
                    .collect();
                for index in (1..names.len()).rev() {
                    names.swap(index, random.random_range(0..=index));
                }
                for (store, name) in stores.iter_mut().zip(names) {
                    store.name = name;
                }
                Model {
                    stores,
                    reservations: BTreeMap::new(),
                    expected_answer: None,
                }
            })
            .boxed()
    }

    fn transitions(model: &Model) -> BoxedStrategy<Operation> {
        let store_count = model.stores.len();
        let sector = (select(MINERS.to_vec()), 0u64..6);
        let candidates = proptest::option::weighted(
            0.25,
            subsequence((0..store_count).collect::<Vec<_>>(), 0..=store_count),
        );
        let reserved: Vec<(u64, u64)> = model.reservations.keys().copied().collect();
        let known_sector = if reserved.is_empty() {
            sector.clone().boxed()
        } else {
            prop_oneof![3 => select(reserved), 1 => sector.clone()].boxed()
        };
        prop_oneof![
            6 => (sector, prop_oneof![1 => Just(32u64), 2 => 1u64..80], candidates, any::<u64>())
                .prop_map(|(sector, units, candidates, random)| Operation::Reserve { sector, units, candidates, random }),
            2 => known_sector.clone().prop_map(|sector| Operation::Release { sector }),
            3 => (known_sector, 0u64..=1000)
                .prop_map(|(sector, written_permille)| Operation::Finalize { sector, written_permille }),
            1 => (0..store_count, 1u64..40).prop_map(|(store, units)| Operation::FreeSpaceGrows { store, units }),
            1 => (0..store_count).prop_map(|store| Operation::ToggleAvailability { store }),
        ]
        .boxed()
    }

    fn apply(mut model: Model, operation: &Operation) -> Model {
        model.expected_answer = None;
        match operation {
            Operation::Reserve {
                sector,
                units,
                candidates,
                random,
            } => {
                let answer = model.reserve(*sector, units * UNIT, candidates, *random);
                model.expected_answer = Some(answer);
            }
            Operation::Release { sector } => {
                model.reservations.remove(sector);
            }
            Operation::Finalize {
                sector,
                written_permille,
            } => {
                if let Some((store, bytes)) = model.reservations.remove(sector) {
                    let written = bytes / 1000 * written_permille;
                    model.stores[store].free -= written;
                }
            }
            Operation::FreeSpaceGrows { store, units } => model.stores[*store].free += units * UNIT,
            Operation::ToggleAvailability { store } => {
                model.stores[*store].available = !model.stores[*store].available;
            }
        }
        model
    }
}

impl StateMachineTest for Reservations {
    type SystemUnderTest = ReservationLedger;
    type Reference = Reservations;

    fn init_test(_model: &Model) -> ReservationLedger {
        ReservationLedger::new()
    }

    fn apply(
        mut ledger: ReservationLedger,
        model: &Model,
        operation: Operation,
    ) -> ReservationLedger {
        match operation {
            Operation::Reserve {
                sector,
                units,
                candidates,
                random,
            } => {
                let candidate_names = candidates.map(|indices| {
                    indices
                        .iter()
                        .map(|&index| model.stores[index].name.clone())
                        .collect::<BTreeSet<_>>()
                });
                let request = ReservationRequest {
                    sector: sector_id(sector),
                    bytes: units * UNIT,
                    candidates: candidate_names,
                    requested_by: "worker".to_owned(),
                    now: Timestamp::from_unix_millis(1),
                };
                let before = ledger.clone();
                let answer = ledger.reserve(&request, &model.views(), random);
                let expected = model.expected_answer.expect("the model answered a reserve");
                match (answer, expected) {
                    (Ok(reservation), Some(index)) => {
                        assert_eq!(reservation.store, model.stores[index].name, "chosen store");
                        assert_eq!(reservation.bytes, units * UNIT);
                    }
                    (Err(refusal), None) => {
                        assert_eq!(ledger, before, "a refusal must change nothing");
                        assert_eq!(
                            refusal.rejections.len(),
                            model.stores.len(),
                            "every store is explained"
                        );
                    }
                    (answer, expected) => {
                        panic!("ledger answered {answer:?}, model expected store {expected:?}")
                    }
                }
            }
            Operation::Release { sector } => {
                ledger.release(sector_id(sector));
            }
            Operation::Finalize { sector, .. } => {
                ledger.release(sector_id(sector));
            }
            Operation::FreeSpaceGrows { .. } | Operation::ToggleAvailability { .. } => {}
        }
        ledger
    }

    fn check_invariants(ledger: &ReservationLedger, model: &Model) {
        for (index, store) in model.stores.iter().enumerate() {
            let expected: u64 = model
                .reservations
                .values()
                .filter(|(held_on, _)| *held_on == index)
                .map(|(_, bytes)| bytes)
                .sum();
            assert_eq!(
                ledger.reserved_on(&store.name),
                expected,
                "the bytes reserved on {}",
                store.name
            );
            assert!(
                ledger.reserved_on(&store.name) <= store.free,
                "{} has {} bytes reserved but only {} free",
                store.name,
                ledger.reserved_on(&store.name),
                store.free
            );
        }
        for reservation in ledger.reservations() {
            let store = model
                .stores
                .iter()
                .find(|store| store.name == reservation.store)
                .expect("reservations name configured stores");
            let miner = reservation.sector.miner;
            assert!(
                !store.deny.contains(&miner),
                "{} denies miner {miner}",
                store.name
            );
            assert!(
                store.allow.is_empty() || store.allow.contains(&miner),
                "{} does not allow {miner}",
                store.name
            );
            assert!(!store.read_only, "{} is read-only", store.name);
        }
        let held: BTreeMap<(u64, u64), (String, u64)> = ledger
            .reservations()
            .map(|reservation| {
                (
                    (reservation.sector.miner, reservation.sector.number),
                    (reservation.store.clone(), reservation.bytes),
                )
            })
            .collect();
        let expected: BTreeMap<(u64, u64), (String, u64)> = model
            .reservations
            .iter()
            .map(|(sector, (index, bytes))| (*sector, (model.stores[*index].name.clone(), *bytes)))
            .collect();
        assert_eq!(held, expected, "reservations");
        let json = serde_json::to_string(ledger).expect("encode the ledger");
        let decoded: ReservationLedger = serde_json::from_str(&json).expect("decode the ledger");
        assert_eq!(&decoded, ledger, "the ledger survives a JSON round trip");
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/reservations.txt"),
        )),
        .. ProptestConfig::default()
    })]

    #[test]
    fn reservations_match_the_model(sequential 1..60 => Reservations);
}

/// A small, well-mixed generator (splitmix64) so the draws below are reproducible from
/// the seed proptest chose.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut mixed = *state;
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    mixed ^ (mixed >> 31)
}

const DRAWS: u64 = 3000;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/weights.txt"),
        )),
        .. ProptestConfig::default()
    })]

    /// Over 3,000 fresh sectors, each eligible store is chosen a number of times within
    /// six standard deviations (plus one) of what its weight predicts: `|n_i - N p_i| <=
    /// 6 sqrt(N p_i (1 - p_i)) + 1`, with `p_i` the store's effective weight (0 counts as
    /// 1) over the total. A correct choice fails this check with a probability below
    /// 1e-8 per store, so the test does not flake; a choice that ignores weights, skips
    /// a store or counts weight 0 as 0 fails it.
    #[test]
    fn weights_are_honoured(weights in proptest::collection::vec(0u64..50, 2..=6), seed in any::<u64>()) {
        let stores: Vec<StoreView> = weights
            .iter()
            .enumerate()
            .map(|(index, &weight)| StoreView {
                config: PersistStoreConfig { weight, ..PersistStoreConfig::new(format!("store-{index}"), "/mnt") },
                free_bytes: Ok(u64::MAX),
            })
            .collect();
        let mut ledger = ReservationLedger::new();
        let mut state = seed;
        let mut counts = vec![0u64; stores.len()];
        for number in 0..DRAWS {
            let request = ReservationRequest {
                sector: SectorId { miner: 1000, number },
                bytes: 1,
                candidates: None,
                requested_by: "worker".to_owned(),
                now: Timestamp::from_unix_millis(0),
            };
            let reservation = ledger.reserve(&request, &stores, splitmix64(&mut state)).expect("every store fits");
            let index: usize = reservation.store["store-".len()..].parse().expect("a store index");
            counts[index] += 1;
            // Each draw is for a sector finished at once, so every draw sees the same
            // stores and the ledger stays small.
            ledger.release(request.sector);
        }
        let total: u64 = weights.iter().map(|weight| weight.max(&1)).sum();
        for (index, weight) in weights.iter().enumerate() {
            let probability = *weight.max(&1) as f64 / total as f64;
            let expected = DRAWS as f64 * probability;
            let deviation = (DRAWS as f64 * probability * (1.0 - probability)).sqrt();
            let observed = counts[index] as f64;
            prop_assert!(
                (observed - expected).abs() <= 6.0 * deviation + 1.0,
                "store {index} (weight {weight}) was chosen {observed} times, expected {expected:.1} ± {:.1}; counts {counts:?}",
                6.0 * deviation + 1.0
            );
        }
    }
}
