//! Feature extraction for the sentiment models. The feature strings are the model file's keys,
//! so changing anything here changes what a shipped model means: retrain after any edit.
//!
//! Chinese: jieba words, and `~ab` for every pair of adjacent Han characters, which catches
//! sentiment phrases jieba splits differently from one review to the next and negations
//! (`~不好`, `~没用`); Latin words as in English. (Explicit negation features like English's
//! did not change cross-validated accuracy, given the bigrams, so they are left out.)
//!
//! English: lowercased words; up to [`NEGATION_SCOPE`] words after a negation (`not`, `never`,
//! `…n't`) within the clause become `not_w` instead of `w`, so "not good" does not count as
//! "good"; `a b` for adjacent words in a clause. The VADER compound score is a separate, dense
//! input (see [`super::vader`]).

use unicode_segmentation::UnicodeSegmentation;

use crate::tokenize::{cut_han, fold_width, for_each_word, normalize_word, script_runs};

/// How many following words an English negation flips.
const NEGATION_SCOPE: usize = 3;

/// The distinct features of a Chinese text, sorted.
pub(crate) fn chinese(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (run, han) in script_runs(text) {
        if !han {
            for_each_word(run, &mut |word| out.push(word));
            continue;
        }
        out.extend(cut_han(run).map(str::to_owned));
        // Punctuation is never Han, so bigrams stay within a clause.
        let mut chars = run.chars();
        if let Some(mut prev) = chars.next() {
            for c in chars {
                out.push(format!("~{prev}{c}"));
                prev = c;
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The distinct features of an English text, sorted.
pub(crate) fn english(text: &str) -> Vec<String> {
    let text = fold_width(text);
    let mut out = Vec::new();
    let mut prev: Option<String> = None;
    let mut negated = 0;
    for segment in text.split_word_bounds() {
        if segment.chars().any(char::is_alphanumeric) {
            let word = normalize_word(segment).replace('\u{2019}', "'");
            if negated > 0 {
                out.push(format!("not_{word}"));
                negated -= 1;
            } else {
                out.push(word.clone());
            }
            if let Some(prev) = &prev {
                out.push(format!("{prev} {word}"));
            }
            if is_english_negator(&word) {
                negated = NEGATION_SCOPE;
            }
            prev = Some(word);
        } else if segment.chars().any(is_clause_break) {
            negated = 0;
            prev = None;
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn is_english_negator(word: &str) -> bool {
    matches!(
        word,
        "not"
            | "no"
            | "never"
            | "nothing"
            | "none"
            | "nor"
            | "neither"
            | "nobody"
            | "nowhere"
            | "cannot"
            | "without"
            | "hardly"
            | "barely"
            | "dont"
            | "doesnt"
            | "didnt"
            | "isnt"
            | "wasnt"
            | "wont"
            | "cant"
            | "couldnt"
            | "wouldnt"
            | "shouldnt"
    ) || word.ends_with("n't")
}

fn is_clause_break(c: char) -> bool {
    c.is_ascii_punctuation() && !matches!(c, '\'' | '-' | '&' | '/')
        || matches!(c, '，' | '。' | '！' | '？' | '；' | '：' | '…' | '—')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(features: &[String], feature: &str) -> bool {
        features.iter().any(|f| f == feature)
    }

    #[test]
    fn english_negation_scopes_to_the_clause() {
        let f = english("The battery is not good, but the screen is great");
        assert!(has(&f, "not_good"), "{f:?}");
        assert!(!has(&f, "good"), "{f:?}");
        assert!(has(&f, "great") && !has(&f, "not_great"), "{f:?}");
        assert!(has(&f, "not good") && has(&f, "screen is"), "{f:?}");
        assert!(!has(&f, "good but"), "bigrams stop at commas: {f:?}");
    }

    #[test]
    fn english_contractions_negate_with_either_apostrophe() {
        for text in ["It doesn't work", "It doesn’t work"] {
            assert!(has(&english(text), "not_work"), "{text}");
        }
    }

    #[test]
    fn chinese_features_include_words_and_char_bigrams() {
        let f = chinese("质量不好，不会再买了。iPhone");
        for feature in ["质量", "~量不", "~不好", "~再买", "iphone"] {
            assert!(has(&f, feature), "{feature} in {f:?}");
        }
        assert!(!has(&f, "~好不"), "bigrams stop at punctuation: {f:?}");
    }

    #[test]
    fn features_are_sorted_and_distinct() {
        let f = chinese("好好好，好好好");
        assert!(f.windows(2).all(|w| w[0] < w[1]), "{f:?}");
        assert!(english("").is_empty() && chinese("").is_empty());
    }
}
