//! Bit-exact port of the parts of numpy's random module that `recsys_baseline.py` uses for
//! its random split: `np.random.default_rng(seed)` (`SeedSequence` → `PCG64`) and
//! `Generator.choice(n, size, replace=False)`. With it, `--split random --seed 42` holds out
//! exactly the pairs the baseline holds out, without going through `--split-dir`.
//!
//! Sources: numpy `random/bit_generator.pyx` (SeedSequence), `random/src/pcg64/pcg64.h`
//! (PCG64 XSL-RR, 32-bit output buffering), `random/src/distributions/distributions.c`
//! (Lemire bounded integers) and `random/_generator.pyx` (`choice`: Floyd's sampling, or a
//! tail shuffle for large populations, then a shuffle of the picks).

const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const POOL_SIZE: usize = 4;

fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut v = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(MULT_A);
    v = v.wrapping_mul(*hash_const);
    v ^ (v >> 16)
}

fn mix(x: u32, y: u32) -> u32 {
    let r = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    r ^ (r >> 16)
}

/// `SeedSequence(seed).generate_state(n, np.uint64)` for a non-negative integer seed.
pub fn seed_sequence_u64(seed: u64, n: usize) -> Vec<u64> {
    // The seed as little-endian 32-bit words, as numpy's _coerce_to_uint32_array.
    let mut entropy = vec![seed as u32];
    if seed >> 32 != 0 {
        entropy.push((seed >> 32) as u32);
    }
    let mut pool = [0u32; POOL_SIZE];
    let mut hash_const = INIT_A;
    for (i, slot) in pool.iter_mut().enumerate() {
        *slot = hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash_const);
    }
    for src in 0..POOL_SIZE {
        for dst in 0..POOL_SIZE {
            if src != dst {
                let h = hashmix(pool[src], &mut hash_const);
                pool[dst] = mix(pool[dst], h);
            }
        }
    }
    for &e in entropy.iter().skip(POOL_SIZE) {
        for slot in &mut pool {
            *slot = mix(*slot, hashmix(e, &mut hash_const));
        }
    }
    let mut hash_const = INIT_B;
    let words: Vec<u32> = (0..2 * n)
        .map(|i| {
            let mut v = pool[i % POOL_SIZE] ^ hash_const;
            hash_const = hash_const.wrapping_mul(MULT_B);
            v = v.wrapping_mul(hash_const);
            v ^ (v >> 16)
        })
        .collect();
    words
        .chunks_exact(2)
        .map(|w| u64::from(w[0]) | (u64::from(w[1]) << 32))
        .collect()
}

const PCG_MULT: u128 = (2_549_297_995_355_413_924u128 << 64) + 4_865_540_595_714_422_341;

/// numpy's `PCG64` bit generator (PCG XSL-RR 128/64) with its 32-bit output buffer.
#[derive(Debug, Clone)]
pub struct Pcg64 {
    state: u128,
    inc: u128,
    buffered: Option<u32>,
}

impl Pcg64 {
    /// `PCG64(seed)`, i.e. what `np.random.default_rng(seed)` wraps.
    pub fn new(seed: u64) -> Self {
        let s = seed_sequence_u64(seed, 4);
        let init_state = (u128::from(s[0]) << 64) | u128::from(s[1]);
        let init_seq = (u128::from(s[2]) << 64) | u128::from(s[3]);
        let mut rng = Self {
            state: 0,
            inc: (init_seq << 1) | 1,
            buffered: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(init_state);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULT).wrapping_add(self.inc);
    }

    /// Next raw 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let rot = (self.state >> 122) as u32;
        (((self.state >> 64) as u64) ^ (self.state as u64)).rotate_right(rot)
    }

    /// Next 32-bit output: the low half of a 64-bit output, then its high half.
    pub fn next_u32(&mut self) -> u32 {
        if let Some(high) = self.buffered.take() {
            return high;
        }
        let next = self.next_u64();
        self.buffered = Some((next >> 32) as u32);
        next as u32
    }

    /// Uniform integer in `[0, max]` (numpy's `random_bounded_uint64` with Lemire's method).
    pub fn bounded(&mut self, max: u64) -> u64 {
        if max == 0 {
            0
        } else if max < 0xFFFF_FFFF {
            let excl = max as u32 + 1;
            let mut m = u64::from(self.next_u32()) * u64::from(excl);
            let mut leftover = m as u32;
            if leftover < excl {
                let threshold = (u32::MAX - max as u32) % excl;
                while leftover < threshold {
                    m = u64::from(self.next_u32()) * u64::from(excl);
                    leftover = m as u32;
                }
            }
            m >> 32
        } else if max == 0xFFFF_FFFF {
            u64::from(self.next_u32())
        } else if max == u64::MAX {
            self.next_u64()
        } else {
            let excl = max + 1;
            let mut m = u128::from(self.next_u64()) * u128::from(excl);
            let mut leftover = m as u64;
            if leftover < excl {
                let threshold = (u64::MAX - max) % excl;
                while leftover < threshold {
                    m = u128::from(self.next_u64()) * u128::from(excl);
                    leftover = m as u64;
                }
            }
            (m >> 64) as u64
        }
    }

    /// Fisher-Yates over `data[first..]`, from the end (numpy's `_shuffle_int`).
    fn shuffle_from(&mut self, data: &mut [u64], first: usize) {
        for i in (first.max(1)..data.len()).rev() {
            let j = self.bounded(i as u64) as usize;
            data.swap(i, j);
        }
    }

    /// `Generator.choice(pop, size, replace=False)`: `size` distinct values of `0..pop` in
    /// numpy's order. Panics only if `size > pop` (callers hold out at most 20%).
    pub fn choice_without_replacement(&mut self, pop: usize, size: usize) -> Vec<usize> {
        assert!(size <= pop, "cannot choose {size} of {pop}");
        if size == 0 {
            return Vec::new();
        }
        let picks: Vec<u64> = if pop > 10_000 && size > pop / 50 {
            let mut idx: Vec<u64> = (0..pop as u64).collect();
            // Shuffle only the tail numpy keeps: positions pop-1 down to pop-size.
            let first = pop.saturating_sub(size).max(1);
            for i in (first..pop).rev() {
                let j = self.bounded(i as u64) as usize;
                idx.swap(i, j);
            }
            idx[pop - size..].to_vec()
        } else {
            // Floyd's algorithm; then the picks are shuffled.
            let mut picks: Vec<u64> = Vec::with_capacity(size);
            let mut seen = std::collections::HashSet::with_capacity(size);
            for j in (pop - size) as u64..pop as u64 {
                let val = self.bounded(j);
                let v = if seen.insert(val) {
                    val
                } else {
                    seen.insert(j);
                    j
                };
                picks.push(v);
            }
            self.shuffle_from(&mut picks, 1);
            picks
        };
        picks.into_iter().map(|v| v as usize).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values printed by numpy 2.4:
    //   SeedSequence(42).generate_state(4, np.uint64)
    //   PCG64(42).random_raw(3)
    //   rng = default_rng(42); [rng.choice(n, max(1, int(0.2 n)), replace=False) for n in ...]

    #[test]
    fn seed_sequence_matches_numpy() {
        assert_eq!(
            seed_sequence_u64(42, 4),
            vec![
                0x9f1e_2e6d_cd54_0ab7,
                0xd578_73dc_79fb_94b6,
                0x7d28_2a1b_64d4_20b7,
                0x3365_7971_4692_d5ff
            ]
        );
    }

    #[test]
    fn pcg64_raw_output_matches_numpy() {
        let mut rng = Pcg64::new(42);
        let raw: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            raw,
            vec![
                0xc621_fbcd_16d9_2688,
                0x705a_5661_a791_ffc1,
                0xdbcd_12c2_6eda_1624
            ]
        );
    }

    #[test]
    fn choice_without_replacement_matches_numpy() {
        let mut rng = Pcg64::new(42);
        let got: Vec<Vec<usize>> = [5usize, 9, 10, 23, 7, 50, 6]
            .iter()
            .map(|&n| rng.choice_without_replacement(n, ((0.2 * n as f64) as usize).max(1)))
            .collect();
        let expected: Vec<Vec<usize>> = vec![
            vec![0],
            vec![6],
            vec![4, 5],
            vec![4, 15, 1, 17],
            vec![5],
            vec![18, 31, 22, 30, 21, 5, 33, 38, 24, 9],
            vec![0],
        ];
        assert_eq!(got, expected);
    }
}
