//! The train/test protocol of `shared/data/README.md` and `recsys_baseline.py`, and loading
//! a split that the baseline dumped (`--dump-split DIR`).
//!
//! Every user with at least 5 interactions holds out `floor(0.2 n)` of them (at least 1):
//! `random` picks them with numpy's generator (a bit-exact port, [`numpy_rng`](super::numpy_rng)),
//! so with ids numbered like `np.unique` the held-out pairs are the baseline's own; `time` takes
//! the latest (ties by item id). Users with fewer interactions stay entirely in training.

use std::path::Path;

use clap::ValueEnum;
use serde::Serialize;

use super::{EvalError, input::read_table, numpy_rng::Pcg64};
use crate::algo::{IdMap, Interactions, InteractionsBuilder, ItemIdx, Merge, UserIdx};

/// How held-out interactions are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMode {
    /// Uniformly at random per user.
    Random,
    /// Each user's latest interactions.
    Time,
}

/// Training interactions plus the held-out pairs.
#[derive(Debug, Clone)]
pub struct Split {
    /// What models train on; same id space as the full data.
    pub train: Interactions,
    /// Held-out items per user, users in increasing id order.
    pub test: Vec<(UserIdx, Vec<ItemIdx>)>,
}

impl Split {
    /// Number of held-out pairs.
    pub fn test_pairs(&self) -> usize {
        self.test.iter().map(|(_, items)| items.len()).sum()
    }
}

/// How many of a user's `n` interactions are held out.
pub fn held_out(n: usize) -> usize {
    if n < 5 {
        0
    } else {
        // The same float product as Python's int(0.2 * n).
        ((0.2 * n as f64) as usize).max(1)
    }
}

/// Splits `data` per the protocol.
pub fn split(data: &Interactions, mode: SplitMode, seed: u64) -> Split {
    let mut rng = Pcg64::new(seed);
    let mut train = InteractionsBuilder::with_ids(data.users.clone(), data.items.clone());
    let mut test = Vec::new();
    for u in 0..data.n_users() as UserIdx {
        let items = data.user_items().row_indices(u);
        let weights = data.user_items().row_data(u);
        let times = data.user_times(u);
        let n = items.len();
        let n_test = held_out(n);
        let mut is_test = vec![false; n];
        match mode {
            SplitMode::Random => {
                if n_test > 0 {
                    for k in rng.choice_without_replacement(n, n_test) {
                        is_test[k] = true;
                    }
                }
            }
            SplitMode::Time => {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by_key(|&k| (times[k], items[k]));
                for &k in &order[n - n_test..] {
                    is_test[k] = true;
                }
            }
        }
        let mut held = Vec::with_capacity(n_test);
        for k in 0..n {
            if is_test[k] {
                held.push(items[k]);
            } else {
                train.push_idx(u, items[k], weights[k], times[k]);
            }
        }
        if !held.is_empty() {
            test.push((u, held));
        }
    }
    let train = train
        .with_size(data.n_users(), data.n_items())
        .build(Merge::Sum);
    Split { train, test }
}

/// Loads `train.csv` / `test.csv` written by `recsys_baseline.py --dump-split DIR`: internal
/// integer ids, a `user,item[,time]` header; with a `time` column each user's rows are in
/// time order, without one file order stands for time.
pub fn load_split_dir(dir: &Path) -> Result<Split, EvalError> {
    let train_rows = read_table(&dir.join("train.csv"))?.rows;
    let test_rows = read_table(&dir.join("test.csv"))?.rows;
    let id = |s: &str, what: &str, file: &str, line: usize| -> Result<u32, EvalError> {
        s.parse::<u32>().map_err(|_| EvalError::Parse {
            file: format!("{}: ", dir.join(file).display()),
            line,
            reason: format!("{what} {s:?} is not a non-negative integer id"),
        })
    };
    let mut pairs = Vec::with_capacity(train_rows.len());
    for (n, r) in train_rows.iter().enumerate() {
        let u = id(&r.user, "user", "train.csv", n + 2)?;
        let i = id(&r.item, "item", "train.csv", n + 2)?;
        // The third column of a dumped split is the time, not a rating.
        let t = r.rating.map_or(n as i64, |t| t as i64);
        pairs.push((u, i, t));
    }
    let mut held = Vec::with_capacity(test_rows.len());
    for (n, r) in test_rows.iter().enumerate() {
        held.push((
            id(&r.user, "user", "test.csv", n + 2)?,
            id(&r.item, "item", "test.csv", n + 2)?,
        ));
    }
    let n_users = pairs
        .iter()
        .map(|p| p.0)
        .chain(held.iter().map(|p| p.0))
        .max()
        .map_or(0, |m| m as usize + 1);
    let n_items = pairs
        .iter()
        .map(|p| p.1)
        .chain(held.iter().map(|p| p.1))
        .max()
        .map_or(0, |m| m as usize + 1);
    let mut train =
        InteractionsBuilder::with_ids(IdMap::identity(n_users), IdMap::identity(n_items));
    for (u, i, t) in pairs {
        train.push_idx(u, i, 1.0, t);
    }
    held.sort_unstable();
    held.dedup();
    let mut test: Vec<(UserIdx, Vec<ItemIdx>)> = Vec::new();
    for (u, i) in held {
        match test.last_mut() {
            Some((last, items)) if *last == u => items.push(i),
            _ => test.push((u, vec![i])),
        }
    }
    Ok(Split {
        train: train.build(Merge::Binary),
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// User "a" has 12 interactions, "b" 5, "c" 4; item ids 0..12, time = position.
    fn data() -> Interactions {
        let mut b = InteractionsBuilder::new();
        let mut t = 0;
        for (user, n) in [("a", 12), ("b", 5), ("c", 4)] {
            for i in 0..n {
                // Item order differs from time order so the time split must sort.
                b.push(user, &format!("{}", (i * 7) % 12), 1.0, t);
                t += 1;
            }
        }
        b.sort_ids();
        b.build(Merge::Binary)
    }

    #[test]
    fn hold_out_counts_follow_the_protocol() {
        assert_eq!(
            [4, 5, 9, 10, 14, 15, 100].map(held_out),
            [0, 1, 1, 2, 2, 3, 20]
        );
        let m = data();
        for mode in [SplitMode::Random, SplitMode::Time] {
            let s = split(&m, mode, 42);
            let sizes: Vec<(u32, usize)> = s.test.iter().map(|(u, i)| (*u, i.len())).collect();
            assert_eq!(sizes, vec![(0, 2), (1, 1)], "{mode:?}");
            assert_eq!(s.train.nnz() + s.test_pairs(), m.nnz());
            assert_eq!(s.train.user_items().row_len(2), 4);
            assert_eq!(s.train.n_items(), m.n_items());
        }
    }

    #[test]
    fn time_split_holds_out_the_latest_items() {
        let m = data();
        let s = split(&m, SplitMode::Time, 0);
        // a's last two events are items (10*7)%12 = 10 and (11*7)%12 = 5.
        let id = |x: &str| m.items.get(x).unwrap();
        let mut expected = vec![id("10"), id("5")];
        expected.sort_unstable();
        let mut got = s.test[0].1.clone();
        got.sort_unstable();
        assert_eq!(got, expected);
        // b's last event is item (4*7)%12 = 4.
        assert_eq!(s.test[1].1, vec![id("4")]);
    }

    #[test]
    fn random_split_is_deterministic_per_seed() {
        let m = data();
        let a = split(&m, SplitMode::Random, 42);
        let b = split(&m, SplitMode::Random, 42);
        assert_eq!(a.test, b.test);
        let differs = (0..20).any(|seed| split(&m, SplitMode::Random, seed).test != a.test);
        assert!(differs);
    }

    proptest::proptest! {
        #[test]
        fn splits_partition_every_users_interactions(
            counts in proptest::collection::vec(1usize..30, 1..20),
            seed in 0u64..1000,
            time in proptest::bool::ANY,
        ) {
            let mut b = InteractionsBuilder::new();
            let mut t = 0;
            for (u, &n) in counts.iter().enumerate() {
                for i in 0..n {
                    b.push(&u.to_string(), &((i * 13 + u) % 40).to_string(), 1.0, t);
                    t += 1;
                }
            }
            let m = b.build(Merge::Binary);
            let mode = if time { SplitMode::Time } else { SplitMode::Random };
            let s = split(&m, mode, seed);
            proptest::prop_assert_eq!(s.train.nnz() + s.test_pairs(), m.nnz());
            for (u, held) in &s.test {
                let n = m.user_items().row_len(*u);
                proptest::prop_assert_eq!(held.len(), held_out(n));
                for i in held {
                    proptest::prop_assert!(!s.train.user_items().row_indices(*u).contains(i));
                }
            }
        }
    }

    #[test]
    fn dumped_splits_load_with_their_times() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("train.csv"),
            "user,item,time\n0,3,10\n0,1,11\n1,0,5\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("test.csv"), "user,item\n0,2\n1,4\n0,0\n").unwrap();
        let s = load_split_dir(dir.path()).unwrap();
        assert_eq!((s.train.n_users(), s.train.n_items()), (2, 5));
        assert_eq!(s.train.user_sequence(0), vec![3, 1]);
        assert_eq!(s.test, vec![(0, vec![0, 2]), (1, vec![4])]);
        std::fs::write(dir.path().join("test.csv"), "user,item\n0,x\n").unwrap();
        let err = load_split_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("test.csv") && err.contains("line 2"), "{err}");
    }
}
