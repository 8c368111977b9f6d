//! A port of VADER (Hutto & Gilbert, ICWSM 2014; vaderSentiment 3.3.2, MIT) used as one input
//! of the English model: 1,000 labelled sentences are too few to learn the polarity of most
//! English words, and VADER's hand-rated lexicon supplies exactly that.
//!
//! The rules follow `vaderSentiment.py` (boosters, ALL-CAPS emphasis, negation within three
//! words, "but", "least", idioms, `!`/`?` emphasis, compound normalisation) with two deliberate
//! differences: the emoji lexicon is not shipped, and the "but" rule scales by position as
//! intended rather than through Python's `list.index` quirk with repeated values.

use std::collections::HashMap;
use std::sync::LazyLock;

/// The vendored lexicon; see `models/vader_lexicon.tsv` for origin and licence.
const LEXICON_TSV: &str = include_str!("../../models/vader_lexicon.tsv");

static SHIPPED: LazyLock<Vader> = LazyLock::new(|| Vader::parse(LEXICON_TSV));

const B_INCR: f32 = 0.293;
const B_DECR: f32 = -0.293;
const C_INCR: f32 = 0.733;
const N_SCALAR: f32 = -0.74;

const NEGATE: [&str; 59] = [
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "uh-uh",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
];

const SPECIAL_CASES: [(&str, f32); 9] = [
    ("the shit", 3.0),
    ("the bomb", 3.0),
    ("bad ass", 1.5),
    ("badass", 1.5),
    ("bus stop", 0.0),
    ("yeah right", -2.0),
    ("kiss of death", -1.5),
    ("to die for", 3.0),
    ("beating heart", 3.5),
];

/// Degree adverbs that raise or lower the intensity of the word they precede.
fn booster(word: &str) -> Option<f32> {
    match word {
        "absolutely" | "amazingly" | "awfully" | "completely" | "considerable" | "considerably"
        | "decidedly" | "deeply" | "effing" | "enormous" | "enormously" | "entirely"
        | "especially" | "exceptional" | "exceptionally" | "extreme" | "extremely"
        | "fabulously" | "flipping" | "flippin" | "frackin" | "fracking" | "fricking"
        | "frickin" | "frigging" | "friggin" | "fully" | "fuckin" | "fucking" | "fuggin"
        | "fugging" | "greatly" | "hella" | "highly" | "hugely" | "incredible" | "incredibly"
        | "intensely" | "major" | "majorly" | "more" | "most" | "particularly" | "purely"
        | "quite" | "really" | "remarkably" | "so" | "substantially" | "thoroughly" | "total"
        | "totally" | "tremendous" | "tremendously" | "uber" | "unbelievably" | "unusually"
        | "utter" | "utterly" | "very" => Some(B_INCR),
        "almost" | "barely" | "hardly" | "just enough" | "kind of" | "kinda" | "kindof"
        | "kind-of" | "less" | "little" | "marginal" | "marginally" | "occasional"
        | "occasionally" | "partly" | "scarce" | "scarcely" | "slight" | "slightly"
        | "somewhat" | "sort of" | "sorta" | "sortof" | "sort-of" => Some(B_DECR),
        _ => None,
    }
}

fn negated(word: &str) -> bool {
    NEGATE.contains(&word) || word.contains("n't")
}

/// Python's `str.isupper`: at least one cased character and no lowercase one.
fn is_upper(word: &str) -> bool {
    word.chars().any(char::is_uppercase) && !word.chars().any(char::is_lowercase)
}

/// A VADER scorer over one lexicon.
#[derive(Debug)]
pub(crate) struct Vader {
    lexicon: HashMap<String, f32>,
}

impl Vader {
    /// The scorer over the vendored lexicon.
    pub(crate) fn shipped() -> &'static Vader {
        &SHIPPED
    }

    /// Parses `token<TAB>valence` lines; `# ` lines are comments. Malformed lines are skipped:
    /// the only input is the vendored file, which a test checks line by line.
    fn parse(tsv: &str) -> Vader {
        let lexicon = tsv
            .lines()
            .filter(|line| !line.starts_with("# "))
            .filter_map(|line| {
                let (token, valence) = line.split_once('\t')?;
                Some((token.to_owned(), valence.parse().ok()?))
            })
            .collect();
        Vader { lexicon }
    }

    fn valence_of(&self, lower: &str) -> Option<f32> {
        self.lexicon.get(lower).copied()
    }

    /// VADER's compound score in `-1..=1`; exactly 0 when no word of `text` is in the lexicon.
    pub(crate) fn compound(&self, text: &str) -> f32 {
        let words: Vec<&str> = text.split_whitespace().map(strip_punctuation).collect();
        if words.is_empty() {
            return 0.0;
        }
        let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
        let upper_count = words.iter().filter(|w| is_upper(w)).count();
        let cap_diff = upper_count > 0 && upper_count < words.len();

        let mut sentiments: Vec<f32> = (0..words.len())
            .map(|i| {
                let skip = booster(&lower[i]).is_some()
                    || (lower[i] == "kind" && lower.get(i + 1).is_some_and(|w| w == "of"));
                if skip {
                    0.0
                } else {
                    self.word_valence(&words, &lower, i, cap_diff)
                }
            })
            .collect();

        // Contrast: what follows "but" weighs more than what precedes it.
        if let Some(but) = lower.iter().position(|w| w == "but") {
            for (i, s) in sentiments.iter_mut().enumerate() {
                if i < but {
                    *s *= 0.5;
                } else if i > but {
                    *s *= 1.5;
                }
            }
        }

        let mut sum: f32 = sentiments.iter().sum();
        let emphasis = punctuation_emphasis(text);
        if sum > 0.0 {
            sum += emphasis;
        } else if sum < 0.0 {
            sum -= emphasis;
        }
        (sum / (sum * sum + 15.0).sqrt()).clamp(-1.0, 1.0)
    }

    fn word_valence(&self, words: &[&str], lower: &[String], i: usize, cap_diff: bool) -> f32 {
        let Some(base) = self.valence_of(&lower[i]) else {
            return 0.0;
        };
        let at = |k: usize| lower[k].as_str();
        let mut valence = base;
        // "no" before another lexicon word negates it instead of counting on its own.
        if at(i) == "no" && i + 1 < lower.len() && self.valence_of(at(i + 1)).is_some() {
            valence = 0.0;
        }
        if (i > 0 && at(i - 1) == "no")
            || (i > 1 && at(i - 2) == "no")
            || (i > 2 && at(i - 3) == "no" && matches!(at(i - 1), "or" | "nor"))
        {
            valence = base * N_SCALAR;
        }
        if is_upper(words[i]) && cap_diff {
            valence += if valence > 0.0 { C_INCR } else { -C_INCR };
        }
        for start in 0..3 {
            if i <= start || self.valence_of(at(i - start - 1)).is_some() {
                continue;
            }
            let prev = i - start - 1;
            let mut scalar = booster(at(prev)).map_or(0.0, |b| {
                let mut s = if valence < 0.0 { -b } else { b };
                if is_upper(words[prev]) && cap_diff {
                    s += if valence > 0.0 { C_INCR } else { -C_INCR };
                }
                s
            });
            scalar *= [1.0, 0.95, 0.9][start];
            valence += scalar;
            valence = negation_check(valence, lower, start, i);
            if start == 2 {
                valence = special_idioms(valence, lower, i);
            }
        }
        least_check(valence, lower, i)
    }
}

fn negation_check(valence: f32, lower: &[String], start: usize, i: usize) -> f32 {
    let at = |k: usize| lower[k].as_str();
    match start {
        0 if negated(at(i - 1)) => valence * N_SCALAR,
        1 if at(i - 2) == "never" && matches!(at(i - 1), "so" | "this") => valence * 1.25,
        1 if at(i - 2) == "without" && at(i - 1) == "doubt" => valence,
        1 if negated(at(i - 2)) => valence * N_SCALAR,
        // Python's precedence, kept: `(never and so|this) or (so|this)`.
        2 if (at(i - 3) == "never" && matches!(at(i - 2), "so" | "this"))
            || matches!(at(i - 1), "so" | "this") =>
        {
            valence * 1.25
        }
        2 if at(i - 3) == "without" && (at(i - 2) == "doubt" || at(i - 1) == "doubt") => valence,
        2 if negated(at(i - 3)) => valence * N_SCALAR,
        _ => valence,
    }
}

fn special_idioms(mut valence: f32, lower: &[String], i: usize) -> f32 {
    let join = |range: std::ops::Range<usize>| lower[range].join(" ");
    let special = |seq: &str| {
        SPECIAL_CASES
            .iter()
            .find(|(k, _)| *k == seq)
            .map(|(_, v)| *v)
    };
    // Only called with i >= 3.
    let preceding = [
        join(i - 1..i + 1),
        join(i - 2..i + 1),
        join(i - 2..i),
        join(i - 3..i),
        join(i - 3..i - 1),
    ];
    if let Some(v) = preceding.iter().find_map(|seq| special(seq)) {
        valence = v;
    }
    if i + 1 < lower.len()
        && let Some(v) = special(&join(i..i + 2))
    {
        valence = v;
    }
    if i + 2 < lower.len()
        && let Some(v) = special(&join(i..i + 3))
    {
        valence = v;
    }
    for ngram in [join(i - 3..i), join(i - 3..i - 1), join(i - 2..i)] {
        if let Some(b) = booster(&ngram) {
            valence += b;
        }
    }
    valence
}

/// "least good" negates, "at least good" and "very least good" do not. ("least" is not in the
/// lexicon, so VADER's extra lexicon check is moot.)
fn least_check(valence: f32, lower: &[String], i: usize) -> f32 {
    let negates = i > 0
        && lower[i - 1] == "least"
        && (i == 1 || !matches!(lower[i - 2].as_str(), "at" | "very"));
    if negates { valence * N_SCALAR } else { valence }
}

fn punctuation_emphasis(text: &str) -> f32 {
    let exclamations = text.matches('!').count().min(4);
    let questions = text.matches('?').count();
    let question_emphasis = match questions {
        0 | 1 => 0.0,
        2 | 3 => questions as f32 * 0.18,
        _ => 0.96,
    };
    exclamations as f32 * 0.292 + question_emphasis
}

/// Strips ASCII punctuation from both ends unless that leaves two characters or fewer, which
/// keeps emoticons such as `:)` whole (VADER's `_strip_punc_if_word`).
fn strip_punctuation(token: &str) -> &str {
    let stripped = token.trim_matches(|c: char| c.is_ascii_punctuation());
    if stripped.chars().count() <= 2 {
        token
    } else {
        stripped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compound(text: &str) -> f32 {
        Vader::shipped().compound(text)
    }

    #[test]
    fn shipped_lexicon_parses_every_entry() {
        let mut tokens = std::collections::HashSet::new();
        for line in LEXICON_TSV.lines().filter(|l| !l.starts_with("# ")) {
            let (token, valence) = line.split_once('\t').unwrap();
            assert!(valence.parse::<f32>().is_ok(), "{line:?}");
            tokens.insert(token);
        }
        // Repeated tokens (14 in 3.3.2) keep their last valence, as in Python's dict.
        assert_eq!(Vader::shipped().lexicon.len(), tokens.len());
        assert_eq!(Vader::shipped().valence_of("ok"), Some(1.2));
    }

    /// Reference values from vaderSentiment 3.3.2's `polarity_scores(...)["compound"]`.
    #[test]
    fn matches_reference_implementation() {
        for (text, expected) in [
            ("VADER is smart, handsome, and funny.", 0.8316),
            ("VADER is smart, handsome, and funny!", 0.8439),
            ("VADER is very smart, handsome, and funny.", 0.8545),
            ("VADER is VERY SMART, handsome, and FUNNY.", 0.9227),
            ("VADER is not smart, handsome, nor funny.", -0.7424),
            ("The book was good.", 0.4404),
            ("At least it isn't a horrible book.", 0.431),
            ("The book was only kind of good.", 0.3832),
            (
                "The plot was good, but the characters are uncompelling and the dialog is not great.",
                -0.7042,
            ),
            ("Today SUX!", -0.5461),
            ("Make sure you :) or :D today!", 0.8633),
            ("Not bad at all", 0.431),
            ("It was never so good", 0.6626),
            ("the movie was the bomb", 0.6124),
            ("kind of great", 0.6249),
            ("no problems at all", 0.3089),
            ("I have no good reason", -0.3412),
            ("least favorite phone", -0.357),
            ("", 0.0),
        ] {
            let got = compound(text);
            assert!(
                (got - expected).abs() < 1e-3,
                "{text:?}: {got} vs {expected}"
            );
        }
    }
}
