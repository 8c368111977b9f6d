//! The interaction matrix every algorithm trains on: users × items, stored twice (CSR by user
//! and its transpose by item) because every algorithm walks both directions.
//!
//! Internal ids are dense `u32` so that factor tables and similarity lists are flat arrays;
//! [`IdMap`] translates to and from the service's string ids.
//!
//! The CSR type is our own rather than `sprs`: we need `u32` column indices (half the memory of
//! `usize` on the hot paths), an aligned per-entry timestamp array, and nothing but row slices.

use foldhash::HashMap;
use serde::{Deserialize, Serialize};

/// Dense internal user id.
pub type UserIdx = u32;
/// Dense internal item id.
pub type ItemIdx = u32;

/// Two-way map between external string ids and dense internal ids. Looked up on every
/// request for every id it names, with ids callers send: foldhash, seeded per map.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct IdMap {
    ids: Vec<String>,
    index: HashMap<String, u32>,
}

impl From<Vec<String>> for IdMap {
    fn from(ids: Vec<String>) -> Self {
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
        Self { ids, index }
    }
}

impl From<IdMap> for Vec<String> {
    fn from(map: IdMap) -> Self {
        map.ids
    }
}

impl IdMap {
    /// The dense id of `id`, adding it if it is new.
    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(id.to_owned());
        self.index.insert(id.to_owned(), i);
        i
    }

    /// The dense id of a known external id.
    pub fn get(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The external id of a dense id.
    pub fn external(&self, idx: u32) -> Option<&str> {
        self.ids.get(idx as usize).map(String::as_str)
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Ids `0..n` named by their decimal value: for data that already uses dense ids
    /// (dumped splits).
    pub fn identity(n: usize) -> Self {
        (0..n).map(|i| i.to_string()).collect::<Vec<_>>().into()
    }

    /// Renumbers ids in sorted order (numeric when every id is an integer, else lexicographic)
    /// and returns `old -> new`. Sorted ids make internal ids, and so tie-breaks, match tools
    /// that number ids with `np.unique`.
    fn sorted(&self) -> (Self, Vec<u32>) {
        let mut order: Vec<u32> = (0..self.ids.len() as u32).collect();
        let numeric: Option<Vec<i64>> = self.ids.iter().map(|s| s.parse().ok()).collect();
        match numeric {
            Some(n) => order.sort_by_key(|&i| n[i as usize]),
            None => order.sort_by(|&a, &b| self.ids[a as usize].cmp(&self.ids[b as usize])),
        }
        let mut remap = vec![0; order.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        let ids = order
            .iter()
            .map(|&i| self.ids[i as usize].clone())
            .collect::<Vec<_>>();
        (ids.into(), remap)
    }
}

/// Compressed sparse rows with `f32` values; rows are sorted by column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Csr {
    n_rows: usize,
    n_cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f32>,
}

impl Csr {
    /// Builds from `(row, col, value)` triples that are already unique per `(row, col)`.
    /// Returns the matrix and, for each input triple, its position in the CSR arrays (so that
    /// aligned per-entry data such as timestamps can be placed).
    pub fn from_unique_triples(
        n_rows: usize,
        n_cols: usize,
        triples: &[(u32, u32, f32)],
    ) -> (Self, Vec<usize>) {
        let mut indptr = vec![0usize; n_rows + 1];
        for &(r, _, _) in triples {
            indptr[r as usize + 1] += 1;
        }
        for r in 0..n_rows {
            indptr[r + 1] += indptr[r];
        }
        // Sort by (row, col) through an index permutation so positions can be reported.
        let mut order: Vec<u32> = (0..triples.len() as u32).collect();
        order.sort_unstable_by_key(|&t| (triples[t as usize].0, triples[t as usize].1));
        let mut indices = Vec::with_capacity(triples.len());
        let mut data = Vec::with_capacity(triples.len());
        let mut position = vec![0usize; triples.len()];
        for (pos, &t) in order.iter().enumerate() {
            let (_, c, v) = triples[t as usize];
            indices.push(c);
            data.push(v);
            position[t as usize] = pos;
        }
        let m = Self {
            n_rows,
            n_cols,
            indptr,
            indices,
            data,
        };
        (m, position)
    }

    /// The transpose, also with sorted rows; the second value maps each entry of the
    /// transpose to its position in `self`.
    pub fn transpose(&self) -> (Self, Vec<usize>) {
        let mut indptr = vec![0usize; self.n_cols + 1];
        for &c in &self.indices {
            indptr[c as usize + 1] += 1;
        }
        for c in 0..self.n_cols {
            indptr[c + 1] += indptr[c];
        }
        let mut next = indptr.clone();
        let nnz = self.nnz();
        let mut indices = vec![0u32; nnz];
        let mut data = vec![0f32; nnz];
        let mut source = vec![0usize; nnz];
        // Rows are visited in order, so each transposed row ends up sorted.
        for r in 0..self.n_rows {
            for pos in self.indptr[r]..self.indptr[r + 1] {
                let c = self.indices[pos] as usize;
                let dst = next[c];
                next[c] += 1;
                indices[dst] = r as u32;
                data[dst] = self.data[pos];
                source[dst] = pos;
            }
        }
        let t = Self {
            n_rows: self.n_cols,
            n_cols: self.n_rows,
            indptr,
            indices,
            data,
        };
        (t, source)
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of columns.
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Column indices of a row (empty for an out-of-range row).
    pub fn row_indices(&self, r: u32) -> &[u32] {
        match self.range(r) {
            Some(range) => &self.indices[range],
            None => &[],
        }
    }

    /// Values of a row, aligned with [`Csr::row_indices`].
    pub fn row_data(&self, r: u32) -> &[f32] {
        match self.range(r) {
            Some(range) => &self.data[range],
            None => &[],
        }
    }

    /// `(column, value)` pairs of a row.
    pub fn row(&self, r: u32) -> impl Iterator<Item = (u32, f32)> + '_ {
        self.row_indices(r)
            .iter()
            .copied()
            .zip(self.row_data(r).iter().copied())
    }

    /// Position range of a row in the entry arrays.
    pub fn range(&self, r: u32) -> Option<std::ops::Range<usize>> {
        let r = r as usize;
        (r < self.n_rows).then(|| self.indptr[r]..self.indptr[r + 1])
    }

    /// Number of entries in a row.
    pub fn row_len(&self, r: u32) -> usize {
        self.range(r).map_or(0, |range| range.len())
    }

    /// Replaces every value by `f(row, col, value)`.
    pub fn map_values(&self, f: impl Fn(u32, u32, f32) -> f32) -> Self {
        let mut out = self.clone();
        for r in 0..self.n_rows {
            for pos in self.indptr[r]..self.indptr[r + 1] {
                out.data[pos] = f(r as u32, self.indices[pos], self.data[pos]);
            }
        }
        out
    }

    /// All values, in entry order.
    pub fn values(&self) -> &[f32] {
        &self.data
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.indptr.len() * 8 + self.indices.len() * 4 + self.data.len() * 4
    }
}

/// How repeated `(user, item)` events combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Merge {
    /// Weights add up (views of the same item count more).
    #[default]
    Sum,
    /// Every pair has weight 1: implicit feedback as in the evaluation protocol.
    Binary,
}

/// Collects `(user, item, weight, timestamp)` events before building [`Interactions`].
#[derive(Debug, Default)]
pub struct InteractionsBuilder {
    users: IdMap,
    items: IdMap,
    events: Vec<(u32, u32, f32, i64)>,
    min_size: (usize, usize),
}

impl InteractionsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from known id maps, so the built matrix keeps their numbering (new ids are
    /// appended after them).
    pub fn with_ids(users: IdMap, items: IdMap) -> Self {
        Self {
            users,
            items,
            events: Vec::new(),
            min_size: (0, 0),
        }
    }

    /// Makes the matrix at least `n_users × n_items` even if the last ids have no event
    /// (their external ids are their decimal values).
    pub fn with_size(mut self, n_users: usize, n_items: usize) -> Self {
        self.min_size = (n_users, n_items);
        self
    }

    /// Adds one event. Without a real clock, pass the event's position as `timestamp`.
    pub fn push(&mut self, user: &str, item: &str, weight: f32, timestamp: i64) {
        let u = self.users.intern(user);
        let i = self.items.intern(item);
        self.events.push((u, i, weight, timestamp));
    }

    /// Adds one event by internal ids (which must be below the sizes given at build time).
    pub fn push_idx(&mut self, user: UserIdx, item: ItemIdx, weight: f32, timestamp: i64) {
        self.events.push((user, item, weight, timestamp));
    }

    /// Number of events pushed so far.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event was pushed.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Renumbers users and items in sorted id order (see [`IdMap`]): matches tools that number
    /// ids with `np.unique`, which matters for tie-breaks by item id.
    pub fn sort_ids(&mut self) {
        let (users, user_map) = self.users.sorted();
        let (items, item_map) = self.items.sorted();
        for e in &mut self.events {
            e.0 = user_map[e.0 as usize];
            e.1 = item_map[e.1 as usize];
        }
        self.users = users;
        self.items = items;
    }

    /// Builds the matrix; duplicate pairs merge by `merge` and keep their latest timestamp.
    pub fn build(self, merge: Merge) -> Interactions {
        let n_users = self.users.len().max(self.min_size.0).max(
            self.events
                .iter()
                .map(|e| e.0 as usize + 1)
                .max()
                .unwrap_or(0),
        );
        let n_items = self.items.len().max(self.min_size.1).max(
            self.events
                .iter()
                .map(|e| e.1 as usize + 1)
                .max()
                .unwrap_or(0),
        );
        let mut merged: std::collections::HashMap<(u32, u32), (f32, i64)> =
            std::collections::HashMap::with_capacity(self.events.len());
        for &(u, i, w, t) in &self.events {
            merged
                .entry((u, i))
                .and_modify(|(mw, mt)| {
                    *mw += w;
                    *mt = (*mt).max(t);
                })
                .or_insert((w, t));
        }
        let mut triples = Vec::with_capacity(merged.len());
        let mut times = Vec::with_capacity(merged.len());
        for ((u, i), (w, t)) in merged {
            let w = match merge {
                Merge::Sum => w,
                Merge::Binary => 1.0,
            };
            triples.push((u, i, w));
            times.push(t);
        }
        let (user_items, position) = Csr::from_unique_triples(n_users, n_items, &triples);
        let mut aligned = vec![0i64; times.len()];
        for (t, &pos) in times.iter().zip(&position) {
            aligned[pos] = *t;
        }
        let mut users = self.users;
        let mut items = self.items;
        // Ids pushed by index only get their decimal value as external id.
        while users.len() < n_users {
            let next = users.len();
            users.intern(&next.to_string());
        }
        while items.len() < n_items {
            let next = items.len();
            items.intern(&next.to_string());
        }
        Interactions::from_parts(users, items, user_items, aligned)
    }
}

/// Users × items interactions, with both orientations and the latest timestamp per pair.
#[derive(Debug, Clone)]
pub struct Interactions {
    /// External user ids.
    pub users: IdMap,
    /// External item ids.
    pub items: IdMap,
    user_items: Csr,
    item_users: Csr,
    /// Latest timestamp of each entry of `user_items`.
    times: Vec<i64>,
}

impl Interactions {
    fn from_parts(users: IdMap, items: IdMap, user_items: Csr, times: Vec<i64>) -> Self {
        let (item_users, _) = user_items.transpose();
        Self {
            users,
            items,
            user_items,
            item_users,
            times,
        }
    }

    /// Rows = users.
    pub fn user_items(&self) -> &Csr {
        &self.user_items
    }

    /// Rows = items.
    pub fn item_users(&self) -> &Csr {
        &self.item_users
    }

    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.user_items.n_rows()
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.user_items.n_cols()
    }

    /// Number of distinct (user, item) pairs.
    pub fn nnz(&self) -> usize {
        self.user_items.nnz()
    }

    /// Timestamps aligned with a user's row of [`Interactions::user_items`].
    pub fn user_times(&self, user: UserIdx) -> &[i64] {
        match self.user_items.range(user) {
            Some(range) => &self.times[range],
            None => &[],
        }
    }

    /// A user's items ordered by time (ties by item id): the history sequence models read.
    pub fn user_sequence(&self, user: UserIdx) -> Vec<ItemIdx> {
        let items = self.user_items.row_indices(user);
        let times = self.user_times(user);
        let mut seq: Vec<(i64, u32)> = times.iter().copied().zip(items.iter().copied()).collect();
        seq.sort_unstable();
        seq.into_iter().map(|(_, i)| i).collect()
    }

    /// All `(user, item, weight, time)` entries in user-major order.
    pub fn entries(&self) -> impl Iterator<Item = (UserIdx, ItemIdx, f32, i64)> + '_ {
        (0..self.n_users() as u32).flat_map(move |u| {
            self.user_items
                .row(u)
                .zip(self.user_times(u).iter().copied())
                .map(move |((i, w), t)| (u, i, w, t))
        })
    }

    /// Latest timestamp in the data (0 when empty).
    pub fn max_time(&self) -> i64 {
        self.times.iter().copied().max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_merge_and_both_orientations_agree() {
        let mut b = InteractionsBuilder::new();
        b.push("u1", "a", 1.0, 5);
        b.push("u1", "b", 2.0, 1);
        b.push("u1", "a", 3.0, 2);
        b.push("u2", "b", 1.0, 7);
        let m = b.build(Merge::Sum);
        assert_eq!((m.n_users(), m.n_items(), m.nnz()), (2, 2, 3));
        let a = m.items.get("a").unwrap();
        let bi = m.items.get("b").unwrap();
        let u1 = m.users.get("u1").unwrap();
        assert_eq!(
            m.user_items().row(u1).collect::<Vec<_>>(),
            vec![(a, 4.0), (bi, 2.0)]
        );
        assert_eq!(m.user_times(u1), &[5, 1]);
        assert_eq!(m.user_sequence(u1), vec![bi, a]);
        assert_eq!(m.item_users().row_indices(bi), &[0, 1]);
        assert_eq!(m.item_users().row_data(bi), &[2.0, 1.0]);
    }

    #[test]
    fn binary_merge_gives_unit_weights() {
        let mut b = InteractionsBuilder::new();
        b.push("u", "x", 3.0, 0);
        b.push("u", "x", 4.0, 1);
        let m = b.build(Merge::Binary);
        assert_eq!(m.user_items().values(), &[1.0]);
        assert_eq!(m.user_times(0), &[1]);
    }

    #[test]
    fn sorted_ids_are_numeric_when_possible() {
        let mut b = InteractionsBuilder::new();
        b.push("10", "9", 1.0, 0);
        b.push("2", "10", 1.0, 1);
        b.sort_ids();
        let m = b.build(Merge::Binary);
        assert_eq!(m.users.external(0), Some("2"));
        assert_eq!(m.items.external(0), Some("9"));
        assert_eq!(m.items.get("10"), Some(1));
    }

    #[test]
    fn id_map_round_trips_through_serde() {
        let mut map = IdMap::default();
        map.intern("x");
        map.intern("y");
        let json = serde_json::to_string(&map).unwrap();
        let back: IdMap = serde_json::from_str(&json).unwrap();
        assert_eq!(back.get("y"), Some(1));
        assert_eq!(back.external(0), Some("x"));
    }
}
