//! Reference-model property tests: each plan's machine against a deliberately simple model.
//!
//! The model below restates the plans as plain string tables and the control rules in a
//! few lines, sharing no code with the machine. proptest generates event sequences
//! (mostly events the model expects, plus failures, pauses, jumps and arbitrary junk),
//! replays them on both, compares them after every step, and checks the machine's
//! invariants (`sector_fsm::testing::check_invariants`) after every step.

use std::time::Duration;

use arbitrary::Unstructured;
use proptest::prelude::*;
use proptest::sample::select;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use sector_fsm::testing::{check_invariants, event_of_kind, test_policy};
use sector_fsm::{Event, EventKind, FailureLevel, Plan, Sector, State, Timestamp};

/// Rows `(from, event, to)` of each plan, by name, as the reference documents them.
fn model_table(plan: Plan) -> &'static [(&'static str, &'static str, &'static str)] {
    match plan {
        Plan::Sealer => &[
            ("Empty", "Allocate", "Allocated"),
            ("Allocated", "AcquireDeals", "DealsAcquired"),
            ("DealsAcquired", "AddPiece", "PieceAdded"),
            ("PieceAdded", "BuildTreeD", "TreeDBuilt"),
            ("TreeDBuilt", "AssignTicket", "TicketAssigned"),
            ("TicketAssigned", "PC1", "PC1Done"),
            ("PC1Done", "PC2", "PC2Done"),
            ("PC1Done", "PC2NeedSyntheticProof", "SyntheticPoRepNeeded"),
            ("SyntheticPoRepNeeded", "SyntheticPoRep", "PC2Done"),
            ("PC2Done", "SubmitPC", "PCSubmitted"),
            ("PCSubmitted", "CheckPC", "PCLanded"),
            ("PCSubmitted", "ReSubmitPC", "PC2Done"),
            ("PCLanded", "Persist", "Persisted"),
            ("Persisted", "SubmitPersistance", "PersistanceSubmitted"),
            ("PersistanceSubmitted", "AssignSeed", "SeedAssigned"),
            ("SeedAssigned", "C1", "C1Done"),
            ("C1Done", "C2", "C2Done"),
            ("C2Done", "SubmitProof", "ProofSubmitted"),
            ("ProofSubmitted", "Finish", "Finished"),
            ("ProofSubmitted", "ReSubmitProof", "C2Done"),
        ],
        Plan::SnapUp => &[
            ("Empty", "AllocatedSnapUpSector", "Allocated"),
            ("Allocated", "AddPiece", "PieceAdded"),
            ("PieceAdded", "BuildTreeD", "TreeDBuilt"),
            ("TreeDBuilt", "SnapEncode", "SnapEncoded"),
            ("SnapEncoded", "SnapProve", "SnapProved"),
            ("SnapProved", "Persist", "Persisted"),
            ("Persisted", "Finish", "Finished"),
            ("Persisted", "RePersist", "SnapProved"),
        ],
        Plan::Rebuild => &[
            ("Empty", "AllocatedRebuildSector", "Allocated"),
            ("Allocated", "AddPiece", "PieceAdded"),
            ("PieceAdded", "BuildTreeD", "TreeDBuilt"),
            ("TreeDBuilt", "PC1", "PC1Done"),
            ("PC1Done", "PC2", "PC2Done"),
            ("PC1Done", "PC2NeedSyntheticProof", "SyntheticPoRepNeeded"),
            ("SyntheticPoRepNeeded", "SyntheticPoRep", "PC2Done"),
            ("PC2Done", "CheckSealed", "SealedChecked"),
            ("SealedChecked", "SkipSnap", "SnapDone"),
            ("SealedChecked", "AddPiece", "SnapPieceAdded"),
            ("SnapPieceAdded", "BuildTreeD", "SnapTreeDBuilt"),
            ("SnapTreeDBuilt", "SnapEncode", "SnapEncoded"),
            ("SnapEncoded", "SnapProve", "SnapDone"),
            ("SnapDone", "Persist", "Persisted"),
            ("Persisted", "SubmitPersistance", "Finished"),
        ],
        Plan::Unseal => &[
            ("Empty", "AllocatedUnsealSector", "Allocated"),
            ("Allocated", "Unsealed", "Unsealed"),
            ("Unsealed", "UploadPieceDone", "Finished"),
        ],
        Plan::WindowPost => &[
            ("Empty", "Allocated", "Allocated"),
            ("Allocated", "Generate", "Generated"),
            ("Generated", "Finish", "Finished"),
        ],
    }
}

const MAX_RETRIES: u32 = 3;

/// The model of one sector.
#[derive(Clone, Debug)]
struct Model {
    plan: Plan,
    state: &'static str,
    paused: bool,
    failures_in_a_row: u32,
    path: Vec<&'static str>,
    /// A rebuild of a snapped-up sector takes the upgrade branch after `SealedChecked`.
    upgraded: bool,
    now_seconds: u64,
    last_accepted: bool,
}

impl Model {
    fn terminal(&self) -> bool {
        self.state == "Finished" || self.state == "Aborted"
    }

    fn expected(&self) -> Vec<&'static str> {
        model_table(self.plan)
            .iter()
            .filter(|(from, event, _)| {
                *from == self.state
                    && !(self.plan == Plan::Rebuild
                        && self.state == "SealedChecked"
                        && (*event == "AddPiece") != self.upgraded)
            })
            .map(|(_, event, _)| *event)
            .collect()
    }

    fn plan_states(&self) -> Vec<&'static str> {
        let mut states = vec!["Aborted"];
        for (from, _, to) in model_table(self.plan) {
            states.push(from);
            states.push(to);
        }
        states
    }

    fn go(&mut self, state: &'static str) {
        self.state = state;
        match self.path.iter().position(|visited| *visited == state) {
            Some(index) => self.path.truncate(index + 1),
            None => self.path.push(state),
        }
    }

    fn abort(&mut self) {
        self.go("Aborted");
        self.paused = false;
        self.failures_in_a_row = 0;
    }

    fn jump_allowed(&self, target: &str) -> bool {
        target != self.state
            && self.plan_states().contains(&target)
            && target != "Finished"
            && target != "Empty"
            && (target == "Aborted" || self.path.contains(&target))
    }

    /// Applies `event`; returns whether it is accepted.
    fn apply(&mut self, event: &Event) -> bool {
        if self.terminal() {
            return false;
        }
        if self.paused {
            return match event {
                Event::Resume(None) => {
                    self.paused = false;
                    self.failures_in_a_row = 0;
                    true
                }
                Event::Resume(Some(target)) if self.jump_allowed(target.as_str()) => {
                    let target = static_name(target.as_str());
                    if target == "Aborted" {
                        self.abort();
                    } else {
                        self.go(target);
                        self.paused = false;
                        self.failures_in_a_row = 0;
                    }
                    true
                }
                Event::Abort(_) => {
                    self.abort();
                    true
                }
                _ => false,
            };
        }
        match event {
            Event::Wait { .. } => true,
            Event::Failed(failure) => {
                match failure.level {
                    FailureLevel::Temporary if self.failures_in_a_row < MAX_RETRIES => {
                        self.failures_in_a_row += 1;
                    }
                    FailureLevel::Temporary if self.plan == Plan::WindowPost => self.abort(),
                    FailureLevel::Temporary | FailureLevel::Permanent | FailureLevel::Critical => {
                        self.paused = true;
                    }
                    FailureLevel::Abort => self.abort(),
                }
                true
            }
            Event::Abort(_) => {
                self.abort();
                true
            }
            Event::Pause => {
                self.paused = true;
                true
            }
            Event::Resume(_) => false,
            plan_event => {
                let name = plan_event.kind().as_str();
                if !self.expected().contains(&name) {
                    return false;
                }
                let to = model_table(self.plan)
                    .iter()
                    .find(|(from, event, _)| *from == self.state && *event == name)
                    .map(|(_, _, to)| *to)
                    .unwrap_or(self.state);
                if let Event::AllocatedRebuildSector(allocation) = plan_event {
                    self.upgraded = allocation.upgraded_from_comm_r.is_some();
                }
                self.go(to);
                self.failures_in_a_row = 0;
                true
            }
        }
    }
}

fn static_name(name: &str) -> &'static str {
    State::ALL
        .iter()
        .map(|state| state.as_str())
        .find(|known| *known == name)
        .unwrap_or("unknown")
}

fn kind_named(name: &str) -> EventKind {
    name.parse().unwrap_or(EventKind::Finish)
}

/// One generated step: seconds that pass, then an event.
type Transition = (u16, Event);

fn event_from_bytes(kind: EventKind, bytes: Vec<u8>) -> Event {
    event_of_kind(kind, &mut Unstructured::new(&bytes)).unwrap_or(Event::Pause)
}

struct SectorMachine<const PLAN: usize>;

impl<const PLAN: usize> ReferenceStateMachine for SectorMachine<PLAN> {
    type State = Model;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Model> {
        let plan = Plan::ALL[PLAN];
        Just(Model {
            plan,
            state: "Empty",
            paused: false,
            failures_in_a_row: 0,
            path: vec!["Empty"],
            upgraded: false,
            now_seconds: 0,
            last_accepted: true,
        })
        .boxed()
    }

    fn transitions(model: &Model) -> BoxedStrategy<Transition> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..96);
        let seconds = 0u16..600;
        let any_kind = select(EventKind::ALL.to_vec());
        let any_event = (any_kind, bytes()).prop_map(|(kind, bytes)| event_from_bytes(kind, bytes));
        let failure = (select(vec![
            FailureLevel::Temporary,
            FailureLevel::Temporary,
            FailureLevel::Permanent,
            FailureLevel::Critical,
            FailureLevel::Abort,
        ]),)
            .prop_map(|(level,)| {
                Event::Failed(sector_fsm::Failure::new(level, "generated failure"))
            });
        let jump = proptest::option::of(select(State::ALL.to_vec())).prop_map(Event::Resume);
        let expected: Vec<EventKind> = model
            .expected()
            .iter()
            .map(|name| kind_named(name))
            .collect();
        let control = prop_oneof![
            4 => failure,
            2 => Just(Event::Pause),
            4 => jump,
            1 => Just(Event::Abort("generated abort".to_owned())),
            2 => Just(Event::Wait {
                reason: sector_fsm::WaitReason::ChainPending,
                retry_after: Duration::from_secs(30),
            }),
            3 => any_event,
        ];
        let event = if expected.is_empty() || model.paused {
            control.boxed()
        } else {
            let plausible =
                (select(expected), bytes()).prop_map(|(kind, bytes)| event_from_bytes(kind, bytes));
            prop_oneof![12 => plausible, 5 => control].boxed()
        };
        (seconds, event).boxed()
    }

    fn apply(mut model: Model, (seconds, event): &Transition) -> Model {
        model.now_seconds += u64::from(*seconds);
        model.last_accepted = model.apply(event);
        model
    }
}

fn now(model: &Model) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + model.now_seconds * 1000)
}

impl<const PLAN: usize> StateMachineTest for SectorMachine<PLAN> {
    type SystemUnderTest = Sector;
    type Reference = SectorMachine<PLAN>;

    fn init_test(model: &Model) -> Sector {
        Sector::new(model.plan)
    }

    fn apply(mut sector: Sector, model: &Model, (_, event): Transition) -> Sector {
        let before = sector.clone();
        let result = sector.handle(event.clone(), now(model), &test_policy());
        assert_eq!(
            result.is_ok(),
            model.last_accepted,
            "machine and model disagree on {event:?} in {}: machine said {result:?}",
            before.state()
        );
        match result {
            Ok(step) => {
                assert_eq!(step.event, event.kind(), "the step must name its event");
                assert_eq!(step.from, before.state());
                assert_eq!(step.to, sector.state());
                assert_recorded(&sector, &event);
            }
            Err(_) => assert_eq!(sector, before, "a rejected event must change nothing"),
        }
        sector
    }

    fn check_invariants(sector: &Sector, model: &Model) {
        assert_eq!(sector.state().as_str(), model.state, "state");
        assert_eq!(sector.is_paused(), model.paused, "paused");
        assert_eq!(
            sector.record().retry.consecutive_temporary_failures,
            model.failures_in_a_row,
            "consecutive temporary failures"
        );
        let path: Vec<&str> = sector
            .record()
            .path
            .iter()
            .map(|state| state.as_str())
            .collect();
        assert_eq!(path, model.path, "path");
        if let Err(violation) = check_invariants(sector, now(model)) {
            panic!("{violation}");
        }
    }
}

/// The event's payload is in the record right after the transition that consumed it.
fn assert_recorded(sector: &Sector, event: &Event) {
    let data = sector.data();
    match event {
        Event::Allocate(allocated) => assert_eq!(data.allocated.as_ref(), Some(allocated)),
        Event::Pc1 { ticket, output } => {
            assert_eq!(data.ticket.as_ref(), Some(ticket));
            assert_eq!(data.pc1_output.as_ref(), Some(output));
        }
        Event::Pc2(output) | Event::Pc2NeedSyntheticProof(output) => {
            assert_eq!(data.pre_commit.as_ref(), Some(output));
        }
        Event::Persist(instance) => assert_eq!(data.persisted_instance.as_ref(), Some(instance)),
        Event::AssignSeed(seed) => assert_eq!(data.seed.as_ref(), Some(seed)),
        Event::C1(output) => assert_eq!(data.c1_output.as_ref(), Some(output)),
        Event::C2(proof) => assert_eq!(data.proof.as_ref(), Some(proof)),
        Event::SnapEncode(output) => assert_eq!(data.snap_encode.as_ref(), Some(output)),
        Event::SnapProve(proof) => assert_eq!(data.snap_proof.as_ref(), Some(proof)),
        Event::Generate(outcome) => assert_eq!(data.window_post_outcome.as_ref(), Some(outcome)),
        Event::AssignTicket => assert_eq!(data.ticket, None, "PC1 must draw a fresh ticket"),
        _ => {}
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        max_shrink_iters: 4096,
        // Found failures replay first on every run, from a committed file.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/model.txt"),
        )),
        .. ProptestConfig::default()
    })]

    #[test]
    fn sealer_matches_the_model(sequential 1..80 => SectorMachine<0>);

    #[test]
    fn snapup_matches_the_model(sequential 1..60 => SectorMachine<1>);

    #[test]
    fn rebuild_matches_the_model(sequential 1..80 => SectorMachine<2>);

    #[test]
    fn unseal_matches_the_model(sequential 1..40 => SectorMachine<3>);

    #[test]
    fn wdpost_matches_the_model(sequential 1..40 => SectorMachine<4>);
}

#[test]
fn the_model_covers_every_plan_in_order() {
    // The const parameters above index `Plan::ALL`; keep them honest.
    assert_eq!(
        Plan::ALL,
        &[
            Plan::Sealer,
            Plan::SnapUp,
            Plan::Rebuild,
            Plan::Unseal,
            Plan::WindowPost
        ]
    );
}
