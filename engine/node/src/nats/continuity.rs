//! The edge's check that the origin's records arrive whole and in order.
//!
//! Every record carries its origin run and its position in the run (`seq`, from 1, equal to
//! its JetStream stream sequence). The engine state is a fold of every record of the run
//! since its first, so the edge applies a record only when it is exactly the next one; a
//! duplicate (redelivery after a consumer restart) is skipped, anything else is a gap: the
//! edge asks for the log again from the record it needs and applies nothing meanwhile.

/// What to do with one received record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The next record of the run being followed: apply it.
    Apply,
    /// The first record of a new run (the first one this edge sees, or the origin
    /// restarted): start a fresh engine, then apply it.
    NewRun,
    /// Already applied: skip it.
    Duplicate,
    /// Not the next one: ask for the log from `from` (of the run `run`, if it is a new
    /// one), apply nothing until it comes.
    Gap {
        /// The seq needed next.
        from: u64,
        /// The seq that came.
        got: u64,
    },
}

/// Where the edge stands in the origin's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Continuity {
    run: Option<u64>,
    /// The seq of the next record to apply (1 before the first).
    next: u64,
}

impl Continuity {
    /// Nothing applied yet.
    pub fn new() -> Continuity {
        Continuity { run: None, next: 1 }
    }

    /// Judges a record of `run` at `seq` and, for [`Verdict::Apply`] and
    /// [`Verdict::NewRun`], counts it as applied.
    pub fn check(&mut self, run: u64, seq: u64) -> Verdict {
        if self.run != Some(run) {
            // A run starts at its first record, or not at all.
            if seq == 1 {
                self.run = Some(run);
                self.next = 2;
                return Verdict::NewRun;
            }
            return Verdict::Gap { from: 1, got: seq };
        }
        match seq.cmp(&self.next) {
            std::cmp::Ordering::Equal => {
                self.next += 1;
                Verdict::Apply
            }
            std::cmp::Ordering::Less => Verdict::Duplicate,
            std::cmp::Ordering::Greater => Verdict::Gap {
                from: self.next,
                got: seq,
            },
        }
    }

    /// The run being followed.
    pub fn run(&self) -> Option<u64> {
        self.run
    }

    /// The last seq applied (0 before the first).
    pub fn applied(&self) -> u64 {
        self.next - 1
    }

    /// The seq needed next.
    pub fn next(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn follows_a_run_and_detects_gaps_and_restarts() {
        let mut c = Continuity::new();
        assert_eq!(c.check(7, 2), Verdict::Gap { from: 1, got: 2 });
        assert_eq!(c.check(7, 1), Verdict::NewRun);
        assert_eq!(c.check(7, 2), Verdict::Apply);
        assert_eq!(c.check(7, 2), Verdict::Duplicate);
        assert_eq!(c.check(7, 5), Verdict::Gap { from: 3, got: 5 });
        assert_eq!(c.applied(), 2);
        assert_eq!(c.check(7, 3), Verdict::Apply);
        // The origin restarted: its new run starts at 1, or the edge must fetch from 1.
        assert_eq!(c.check(9, 4), Verdict::Gap { from: 1, got: 4 });
        assert_eq!(c.check(9, 1), Verdict::NewRun);
        assert_eq!((c.run(), c.applied()), (Some(9), 1));
    }

    proptest! {
        /// Whatever order, loss and duplication the deliveries have, the records applied are
        /// exactly 1, 2, 3, ... of the run, each once.
        #[test]
        fn applies_exactly_the_prefix(deliveries in proptest::collection::vec(1u64..40, 0..200)) {
            let mut c = Continuity::new();
            let mut applied = Vec::new();
            for s in deliveries {
                match c.check(1, s) {
                    Verdict::Apply | Verdict::NewRun => applied.push(s),
                    Verdict::Duplicate => prop_assert!(s <= c.applied()),
                    Verdict::Gap { from, got } => {
                        prop_assert_eq!(from, c.next());
                        prop_assert!(got > from);
                    }
                }
            }
            let want: Vec<u64> = (1..=applied.len() as u64).collect();
            prop_assert_eq!(applied, want);
        }
    }
}
