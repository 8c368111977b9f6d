//! Unicode-aware tokenizer shared by indexing (TF-IDF), classification and sentiment.
//!
//! Text is cut into runs of Han characters and runs of everything else. Han runs are segmented
//! into words by jieba (Chinese has no spaces); other runs are split on Unicode word boundaries
//! (UAX #29), which drops punctuation and whitespace and keeps numbers such as `3.5` or `2,000`
//! whole. Tokens are lowercased with full Unicode case mapping, full-width ASCII (`ＮＯＫＩＡ１２`)
//! is folded to ASCII first, and the typographic apostrophe `’` becomes `'` so `don’t` and
//! `don't` are one token.

use std::borrow::Cow;
use std::sync::LazyLock;

use jieba_rs::Jieba;
use unicode_segmentation::UnicodeSegmentation;

/// One segmenter for the process: building jieba's dictionary takes ~100 ms and tens of MB,
/// so it must never happen per call.
static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// Tokens for indexing and classification: words of every script, lowercased, with
/// punctuation, whitespace and common English and Chinese stop words removed.
///
/// Stop words include negations (`not`, `不`), which carry no topic; use
/// [`tokenize_keep_stopwords`] where they matter, e.g. for sentiment.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for_each_token(text, |token| {
        if !is_stop_word(&token) {
            tokens.push(token);
        }
    });
    tokens
}

/// Like [`tokenize`] but keeps stop words, so negations and function words survive.
pub fn tokenize_keep_stopwords(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for_each_token(text, |token| tokens.push(token));
    tokens
}

/// Loads the segmentation dictionary now rather than on the first call, so a service can pay
/// that cost at startup instead of in its first request.
pub fn warm_up() {
    LazyLock::force(&JIEBA);
}

/// Calls `emit` with every token of `text` in order, stop words included. Never emits an empty
/// token.
pub(crate) fn for_each_token(text: &str, mut emit: impl FnMut(String)) {
    for (run, han) in script_runs(text) {
        if han {
            // Han runs contain no case, punctuation or spaces: jieba's words are final.
            for word in cut_han(run) {
                emit(word.to_owned());
            }
        } else {
            for_each_word(run, &mut emit);
        }
    }
}

/// Jieba's words of a run of Han characters (see [`script_runs`]).
pub(crate) fn cut_han(run: &str) -> impl Iterator<Item = &str> {
    JIEBA.cut(run, true).into_iter().map(|token| token.word)
}

/// Splits a non-Han run on Unicode word boundaries and normalises each word.
pub(crate) fn for_each_word(run: &str, emit: &mut impl FnMut(String)) {
    for word in fold_width(run).unicode_words() {
        emit(normalize_word(word));
    }
}

/// `text` with full-width ASCII folded to ASCII, borrowed when there is nothing to fold.
pub(crate) fn fold_width(text: &str) -> Cow<'_, str> {
    if text.chars().any(needs_folding) {
        Cow::Owned(text.chars().map(fold_char).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// Lowercases one word of a folded non-Han run.
pub(crate) fn normalize_word(word: &str) -> String {
    if word.is_ascii() {
        return word.to_ascii_lowercase();
    }
    // Full Unicode mapping: `İ` → `i̇`, `ΣΑΣ` → `σας`; the result is never empty for a word.
    word.to_lowercase()
}

/// Full-width forms (U+FF01..=U+FF5E) and the ideographic space appear in Chinese product text;
/// UAX #29 would treat `１２３` as a number anyway, but `ＮＯＫＩＡ` must match `nokia`.
fn needs_folding(c: char) -> bool {
    matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}' | '\u{2019}')
}

fn fold_char(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        '\u{2019}' => '\'',
        _ => c,
    }
}

/// Whether `c` is a Han (CJK ideograph) character, i.e. one that jieba should segment.
pub(crate) fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'     // Extension A
        | '\u{4E00}'..='\u{9FFF}'   // Unified Ideographs
        | '\u{F900}'..='\u{FAFF}'   // Compatibility Ideographs
        | '\u{20000}'..='\u{2A6DF}' // Extension B
        | '\u{2A700}'..='\u{2EBEF}' // Extensions C–F (and I)
        | '\u{2F800}'..='\u{2FA1F}' // Compatibility Supplement
        | '\u{30000}'..='\u{323AF}' // Extensions G–H
    )
}

/// Maximal runs of Han and of non-Han characters, in order, with a flag saying which.
pub(crate) fn script_runs(text: &str) -> impl Iterator<Item = (&str, bool)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let han = is_han(first);
        let end = rest
            .char_indices()
            .find(|&(_, c)| is_han(c) != han)
            .map_or(rest.len(), |(i, _)| i);
        let (run, tail) = rest.split_at(end);
        rest = tail;
        Some((run, han))
    })
}

/// Whether a (lowercased) token is a stop word dropped by [`tokenize`].
///
/// A deliberately small list of function words that carry no topic: articles, pronouns,
/// auxiliaries, prepositions, conjunctions, negations and Chinese particles. Content words that
/// look generic in a shop (`good`, `buy`, `商品`) are left to IDF weighting.
pub fn is_stop_word(token: &str) -> bool {
    matches!(
        token,
        // English
        "a" | "an" | "the" | "and" | "or" | "but" | "nor" | "if" | "then" | "than" | "so"
            | "as" | "of" | "at" | "by" | "for" | "with" | "about" | "to" | "from" | "in"
            | "on" | "into" | "onto" | "over" | "under" | "up" | "down" | "out" | "off"
            | "is" | "are" | "was" | "were" | "be" | "been" | "being" | "am" | "do"
            | "does" | "did" | "doing" | "have" | "has" | "had" | "having" | "i" | "me"
            | "my" | "mine" | "we" | "us" | "our" | "ours" | "you" | "your" | "yours" | "he"
            | "him" | "his" | "she" | "her" | "hers" | "it" | "its" | "it's" | "they"
            | "them" | "their" | "theirs" | "this" | "that" | "these" | "those" | "there"
            | "here" | "what" | "which" | "who" | "whom" | "when" | "where" | "why" | "how"
            | "all" | "any" | "both" | "each" | "some" | "such" | "own" | "same" | "other"
            | "too" | "very" | "just" | "can" | "will" | "would" | "should" | "could"
            | "shall" | "may" | "might" | "must" | "not" | "no" | "don't" | "doesn't"
            | "didn't" | "isn't" | "aren't" | "wasn't" | "weren't" | "i'm" | "i've" | "s"
            | "t" | "also" | "again" | "once" | "only" | "while" | "because" | "until"
            | "after" | "before" | "between" | "through" | "during" | "above" | "below"
            | "more" | "most" | "few" | "further" | "myself" | "itself"
            // Chinese
            | "的" | "了" | "着" | "过" | "是" | "在" | "和" | "与" | "及" | "或" | "也"
            | "就" | "都" | "而" | "又" | "还" | "之" | "其" | "这" | "那" | "这个"
            | "那个" | "这些" | "那些" | "一个" | "我" | "你" | "他" | "她" | "它" | "我们"
            | "你们" | "他们" | "她们" | "它们" | "自己" | "吧" | "吗" | "呢" | "啊" | "呀"
            | "哦" | "嗯" | "啦" | "嘛" | "被" | "把" | "给" | "从" | "对" | "于" | "以"
            | "为" | "因为" | "所以" | "但" | "但是" | "而且" | "如果" | "等" | "很" | "非常"
            | "不" | "没" | "没有" | "有" | "让" | "得" | "地" | "个" | "些" | "就是" | "还是"
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn mixed_chinese_and_english_text_yields_words_of_both() {
        let tokens = tokenize("我喜欢这款手机 but the battery is NOT great!");
        for expected in ["喜欢", "手机", "battery", "great"] {
            assert!(
                tokens.contains(&expected.to_owned()),
                "{expected} in {tokens:?}"
            );
        }
        for dropped in ["我", "the", "is", "not", "but", "!", " "] {
            assert!(
                !tokens.contains(&dropped.to_owned()),
                "{dropped} in {tokens:?}"
            );
        }
    }

    #[test]
    fn keep_stopwords_keeps_negations_in_order() {
        let tokens = tokenize_keep_stopwords("It is NOT great, 我不喜欢");
        assert_eq!(tokens[..4], ["it", "is", "not", "great"]);
        assert!(tokens.contains(&"不".to_owned()) || tokens.contains(&"不喜欢".to_owned()));
    }

    #[test]
    fn numbers_are_kept_whole() {
        let tokens = tokenize("iPhone 15 Pro, 3.5mm jack, ¥2,999 包邮 128GB");
        for expected in [
            "iphone", "15", "pro", "3.5mm", "jack", "2,999", "128gb", "包邮",
        ] {
            assert!(
                tokens.contains(&expected.to_owned()),
                "{expected} in {tokens:?}"
            );
        }
    }

    #[test]
    fn full_width_and_unicode_case_are_folded() {
        assert_eq!(tokenize("ＮＯＫＩＡ　Ｘ１０"), ["nokia", "x10"]);
        assert_eq!(tokenize("ÉCOLE Straße ΣΟΦΙΑ"), ["école", "straße", "σοφια"]);
        assert_eq!(tokenize_keep_stopwords("DON’T"), ["don't"]);
    }

    #[test]
    fn punctuation_and_whitespace_only_text_yields_nothing() {
        assert!(tokenize("").is_empty());
        assert!(tokenize(" \t\n…！？。，、——《》").is_empty());
    }

    #[test]
    fn script_runs_cover_the_text_in_order() {
        let runs: Vec<_> = script_runs("ab中文 cd字").collect();
        assert_eq!(
            runs,
            [("ab", false), ("中文", true), (" cd", false), ("字", true)]
        );
    }

    proptest! {
        #[test]
        fn tokenize_never_panics_or_emits_empty_tokens(text in any::<String>()) {
            for token in tokenize_keep_stopwords(&text) {
                prop_assert!(!token.is_empty());
                prop_assert!(!token.chars().all(char::is_whitespace));
            }
            let _ = tokenize(&text);
        }

        #[test]
        fn tokenize_handles_mixed_scripts(text in "[a-zA-Z0-9 ,.!?的了好手机质量不错ＡＢ１２’]{0,60}") {
            for token in tokenize(&text) {
                prop_assert!(!token.is_empty());
                prop_assert!(!is_stop_word(&token));
                prop_assert_eq!(token.to_lowercase(), token.clone());
            }
        }
    }
}
