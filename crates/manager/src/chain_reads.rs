//! Chain reads shared among API calls asking the same question at the same tipset: the
//! state at a tipset never changes, so an answer read at a key stays true for that key,
//! and callers that ask together wait for one read instead of each asking the node.
//!
//! Only the answers at the few most recent tipsets asked about are kept; a caller asking
//! at another tipset reads the node as before. A failed read is not kept: the next caller
//! asks the node again.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use chain_client::types::TipSetKey;
use tokio::sync::OnceCell;

/// How many tipsets' answers are kept. A head is reused for a fraction of a second
/// ([`crate::sealer::HEAD_REUSE`]), so callers in flight hold at most the last two or
/// three heads; older answers are of no further use.
const TIPSETS_KEPT: usize = 3;

/// The answers at one tipset: one slot per question, filled by its first read.
type Answers<Q, A> = HashMap<Q, Arc<OnceCell<A>>>;

/// The answers to one kind of question (`Q` → `A`), per tipset.
pub(crate) struct AnswersAtTipset<Q, A> {
    tipsets: Mutex<VecDeque<(TipSetKey, Answers<Q, A>)>>,
}

impl<Q, A> Default for AnswersAtTipset<Q, A> {
    fn default() -> Self {
        AnswersAtTipset {
            tipsets: Mutex::new(VecDeque::new()),
        }
    }
}

impl<Q, A> AnswersAtTipset<Q, A>
where
    Q: Hash + Eq + Clone,
    A: Clone,
{
    /// The answer to `question` at `tipset`: the one already read, or the one `read`
    /// returns (read once however many callers ask together). The head's empty key is
    /// never cached, since it names a different state every epoch.
    pub(crate) async fn get_or_read<E, F, Fut>(
        &self,
        tipset: &TipSetKey,
        question: Q,
        read: F,
    ) -> Result<A, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<A, E>>,
    {
        if tipset.0.is_empty() {
            return read().await;
        }
        let Some(cell) = self.cell(tipset, question) else {
            return read().await;
        };
        cell.get_or_try_init(read).await.cloned()
    }

    /// The slot for `question` at `tipset`, made if missing; `None` when the answers
    /// cannot be reached (a poisoned lock), in which case the caller just reads.
    fn cell(&self, tipset: &TipSetKey, question: Q) -> Option<Arc<OnceCell<A>>> {
        let mut tipsets = self.tipsets.lock().ok()?;
        let position = tipsets.iter().position(|(key, _)| key == tipset);
        let answers = match position {
            Some(index) => &mut tipsets[index].1,
            None => {
                if tipsets.len() >= TIPSETS_KEPT {
                    tipsets.pop_front();
                }
                tipsets.push_back((tipset.clone(), HashMap::new()));
                &mut tipsets.back_mut()?.1
            }
        };
        Some(Arc::clone(answers.entry(question).or_default()))
    }

    /// How many tipsets have answers kept (for tests).
    #[cfg(test)]
    fn tipsets_kept(&self) -> usize {
        self.tipsets.lock().map_or(0, |tipsets| tipsets.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(n: u64) -> TipSetKey {
        let digest = cid::multihash::Multihash::<64>::wrap(0x0, &n.to_le_bytes())
            .expect("a small identity digest");
        TipSetKey(vec![cid::Cid::new_v1(0x71, digest)])
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_read_per_question_and_tipset_however_many_ask_together() {
        let answers = Arc::new(AnswersAtTipset::<u64, u64>::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let read = |reads: Arc<AtomicUsize>, value: u64| {
            move || async move {
                reads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok::<u64, ()>(value)
            }
        };
        let mut together = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let answers = Arc::clone(&answers);
            let reader = read(Arc::clone(&reads), 70);
            together.spawn(async move { answers.get_or_read(&key(1), 7, reader).await });
        }
        while let Some(answer) = together.join_next().await {
            assert_eq!(answer.expect("a caller"), Ok(70));
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // Another question, or the same at another tipset, is read again.
        let (first, second) = (key(1), key(2));
        let at = |tipset, question, value| {
            answers.get_or_read(tipset, question, read(Arc::clone(&reads), value))
        };
        assert_eq!(at(&first, 8, 80).await, Ok(80));
        assert_eq!(at(&second, 7, 71).await, Ok(71));
        assert_eq!(reads.load(Ordering::SeqCst), 3);
        // The first tipset's answer is still the one read there.
        assert_eq!(at(&first, 7, 99).await, Ok(70));
        assert_eq!(reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn failures_and_the_head_key_are_not_kept() {
        let answers = AnswersAtTipset::<u64, u64>::default();
        assert_eq!(
            answers
                .get_or_read(&key(1), 1, || async { Err::<u64, &str>("node down") })
                .await,
            Err("node down")
        );
        assert_eq!(
            answers
                .get_or_read(&key(1), 1, || async { Ok::<u64, &str>(5) })
                .await,
            Ok(5)
        );
        assert_eq!(
            answers
                .get_or_read(&TipSetKey::head(), 1, || async { Ok::<u64, &str>(6) })
                .await,
            Ok(6)
        );
        assert_eq!(
            answers
                .get_or_read(&TipSetKey::head(), 1, || async { Ok::<u64, &str>(7) })
                .await,
            Ok(7)
        );
    }

    #[tokio::test]
    async fn only_the_latest_tipsets_are_kept() {
        let answers = AnswersAtTipset::<u64, u64>::default();
        for n in 0..10 {
            let value = answers
                .get_or_read(&key(n), 1, || async move { Ok::<u64, ()>(n) })
                .await;
            assert_eq!(value, Ok(n));
        }
        assert_eq!(answers.tipsets_kept(), TIPSETS_KEPT);
        // The oldest are gone: asking there reads again.
        assert_eq!(
            answers
                .get_or_read(&key(0), 1, || async { Ok::<u64, ()>(100) })
                .await,
            Ok(100)
        );
    }
}
