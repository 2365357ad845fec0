//! Replays arbitrary event sequences against every plan's machine, checking its invariants.
//!
//! The logic lives in `sector_fsm::testing::replay`, which the ordinary test suite also
//! runs on random bytes; this target lets libFuzzer search the same space for hours.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sector_fsm::testing::{FuzzRun, replay};

fuzz_target!(|run: FuzzRun| {
    if let Err(violation) = replay(&run) {
        panic!("{violation}\n{run:?}");
    }
});
