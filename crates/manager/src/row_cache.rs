//! Sector and message rows kept in memory, so the calls that dominate a manager's load
//! (workers' polls and repeated calls) read memory instead of the database.
//!
//! It is correct only when every write to the rows passes through this process, which
//! is the case for an SQLite file (it belongs to one manager); the database layer uses it
//! for SQLite only. The contract with the writer:
//!
//! - a write forgets the rows it touched *after* its transaction has committed (or
//!   failed: forgetting is always safe), and the forgetting runs even when the caller
//!   stopped waiting for the write; the SQLite writer, the only writer of its file,
//!   instead puts in the rows as it read them back right after its commit
//!   ([`RowCache::refresh`]), so the rows a worker reads next are in memory;
//! - a reader takes the [`RowCache::generation`] *before* it reads the database and
//!   offers the row with it; the row is kept only if no write finished in between, so a
//!   row read before a commit can never be kept after that commit's forgetting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::db::{MessageRow, SectorRow};

/// Rows beyond this many are dropped all at once; a manager seals far fewer sectors at a
/// time, so in practice only finished sectors read by an operator are ever dropped.
const MAXIMUM_ROWS: usize = 100_000;

/// A row a write changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Touched {
    /// The sector of a miner, by number.
    Sector(u64, u64),
    /// An outbox message, by id.
    Message(i64),
}

/// A row as read back right after a commit.
#[derive(Clone, Debug)]
pub(crate) enum FreshRow {
    Sector(SectorRow),
    Message(MessageRow),
}

#[derive(Debug, Default)]
struct Rows {
    /// Counts finished writes; see the module's contract.
    generation: u64,
    sectors: HashMap<(u64, u64), SectorRow>,
    /// Messages without the sectors they carry (what a poll needs), shared: a batch's
    /// row holds its parameters and signed message (tens of kilobytes for hundreds of
    /// sectors), which every poll of its sectors would otherwise copy.
    messages: HashMap<i64, Arc<MessageRow>>,
}

/// The cache; cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub(crate) struct RowCache {
    rows: Mutex<Rows>,
}

impl RowCache {
    fn with_rows<T>(&self, use_rows: impl FnOnce(&mut Rows) -> T) -> T {
        // A panic while holding the lock leaves plain maps behind, still consistent.
        let mut rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        use_rows(&mut rows)
    }

    /// The number of writes finished so far; take it before reading the database.
    pub(crate) fn generation(&self) -> u64 {
        self.with_rows(|rows| rows.generation)
    }

    /// The kept row of a sector.
    pub(crate) fn sector(&self, miner: u64, number: u64) -> Option<SectorRow> {
        self.with_rows(|rows| rows.sectors.get(&(miner, number)).cloned())
    }

    /// The kept row of a message (without its sectors).
    pub(crate) fn message(&self, id: i64) -> Option<Arc<MessageRow>> {
        self.with_rows(|rows| rows.messages.get(&id).cloned())
    }

    /// Keeps a sector's row read from the database, unless a write finished since
    /// `generation` was taken.
    pub(crate) fn offer_sector(&self, generation: u64, row: &SectorRow) {
        self.with_rows(|rows| {
            if rows.generation == generation {
                if rows.sectors.len() >= MAXIMUM_ROWS {
                    rows.sectors.clear();
                }
                rows.sectors.insert((row.miner, row.number), row.clone());
            }
        });
    }

    /// Keeps a message's row read from the database, unless a write finished since
    /// `generation` was taken.
    pub(crate) fn offer_message(&self, generation: u64, row: &Arc<MessageRow>) {
        self.with_rows(|rows| {
            if rows.generation == generation {
                if rows.messages.len() >= MAXIMUM_ROWS {
                    rows.messages.clear();
                }
                rows.messages.insert(row.id, Arc::clone(row));
            }
        });
    }

    /// Forgets what a finished write touched, and counts the write.
    /// After a commit: forgets every row in `touched`, then keeps `fresh`, the touched
    /// rows read back on the writer's connection after the commit and before any other
    /// write (a touched row missing from `fresh` stays forgotten). A reader's row read
    /// before this is refused by the generation, as after [`RowCache::forget`].
    pub(crate) fn refresh(&self, touched: &[Touched], fresh: Vec<FreshRow>) {
        self.with_rows(|rows| {
            forget_in(rows, touched);
            for row in fresh {
                match row {
                    FreshRow::Sector(row) => {
                        if rows.sectors.len() >= MAXIMUM_ROWS {
                            rows.sectors.clear();
                        }
                        rows.sectors.insert((row.miner, row.number), row);
                    }
                    FreshRow::Message(row) => {
                        if rows.messages.len() >= MAXIMUM_ROWS {
                            rows.messages.clear();
                        }
                        rows.messages.insert(row.id, Arc::new(row));
                    }
                }
            }
        });
    }

    pub(crate) fn forget(&self, touched: &[Touched]) {
        self.with_rows(|rows| forget_in(rows, touched));
    }
}

fn forget_in(rows: &mut Rows, touched: &[Touched]) {
    rows.generation += 1;
    for touched in touched {
        match *touched {
            Touched::Sector(miner, number) => {
                rows.sectors.remove(&(miner, number));
            }
            Touched::Message(id) => {
                rows.messages.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Phase;

    fn sector(number: u64, phase: Phase) -> SectorRow {
        SectorRow {
            miner: 1000,
            number,
            proof_type: 5,
            phase,
            abort_reason: None,
            ticket: None,
            pre: None,
            pre_need_send: false,
            pre_message: None,
            seed: None,
            proof: None,
            proof_submitted_at: None,
            proof_need_send: false,
            proof_message: None,
            persisted_instance: None,
            latest_state: None,
            worker_instance: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_row_read_before_a_write_finished_is_not_kept() {
        let cache = RowCache::default();
        let generation = cache.generation();
        // A write finishes while the reader is reading the old row.
        cache.forget(&[Touched::Sector(1000, 1)]);
        cache.offer_sector(generation, &sector(1, Phase::Sealing));
        assert_eq!(cache.sector(1000, 1), None);
        // Read again after the write: kept.
        let generation = cache.generation();
        cache.offer_sector(generation, &sector(1, Phase::Finalized));
        assert_eq!(cache.sector(1000, 1), Some(sector(1, Phase::Finalized)));
    }

    #[test]
    fn a_write_forgets_only_what_it_touched() {
        let cache = RowCache::default();
        let generation = cache.generation();
        cache.offer_sector(generation, &sector(1, Phase::Sealing));
        cache.offer_sector(generation, &sector(2, Phase::Sealing));
        cache.forget(&[Touched::Sector(1000, 2), Touched::Message(7)]);
        assert!(cache.sector(1000, 1).is_some());
        assert!(cache.sector(1000, 2).is_none());
    }

    #[test]
    fn a_refresh_keeps_the_rows_read_back_and_refuses_older_reads() {
        let cache = RowCache::default();
        let generation = cache.generation();
        cache.offer_sector(generation, &sector(3, Phase::Sealing));
        let before_the_commit = cache.generation();
        // Sector 1 was written and read back; sector 3 was touched but is gone.
        cache.refresh(
            &[Touched::Sector(1000, 1), Touched::Sector(1000, 3)],
            vec![FreshRow::Sector(sector(1, Phase::Finalized))],
        );
        assert_eq!(cache.sector(1000, 1), Some(sector(1, Phase::Finalized)));
        assert_eq!(cache.sector(1000, 3), None);
        // A reader that read the old row before the commit cannot put it back.
        cache.offer_sector(before_the_commit, &sector(1, Phase::Sealing));
        assert_eq!(cache.sector(1000, 1), Some(sector(1, Phase::Finalized)));
    }
}
