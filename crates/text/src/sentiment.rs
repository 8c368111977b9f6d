//! Review sentiment for Chinese and English, with a small model shipped inside the crate.
//!
//! Each language has a logistic regression over TF-IDF-weighted word and n-gram features (see
//! `src/sentiment/features.rs` for what they are); English also takes the VADER lexicon
//! score as one dense input, since its training set is tiny. The model is trained by
//! [`train`] on the data described in the crate README and embedded with `include_str!`.
//!
//! # Model file format (`models/sentiment.tsv`)
//! UTF-8 text, one record per line, `\n`-terminated:
//! - line 1 is the magic `tailor-sentiment<TAB>1` (format version 1);
//! - lines starting with `# ` are comments;
//! - every other line is `<lang><TAB><name><TAB><weight>[<TAB><idf>]`, where `<lang>` is `zh`
//!   or `en`, numbers are decimal, and `<name>` is either one of the two reserved names `@bias`
//!   (the intercept) and `@lexicon` (the weight of the VADER score), which have no `<idf>`, or a
//!   feature string, which has one.
//!
//! Records are grouped by language (`en`, then `zh`), reserved names first, then features
//! sorted by bytes; weights are written with four decimals and idf with three, so retraining on
//! the same data gives a byte-identical file.
//!
//! Scoring follows TF-IDF with L2 normalisation: a text's known features `F` each get the value
//! `idf_f / sqrt(Σ_{g∈F} idf_g²)`, so long and short reviews weigh alike. The logit is
//! `z = @bias + @lexicon × VADER compound + Σ_{f∈F} weight_f × value_f` and the polarity
//! `tanh(z / 2) = 2·σ(z) − 1`, the probability of "positive" mapped onto `-1..=1`.

mod data;
mod features;
mod train;
mod vader;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::LazyLock;

pub use data::{DataStats, SPLIT_SEED};
pub use train::{
    Confusion, EvalReport, FeatureOptions, LanguageReport, LanguageTrainStats, TrainOptions,
    TrainReport, evaluate, train,
};

use crate::error::{Error, Result};
use crate::tokenize::is_han;

const MAGIC: &str = "tailor-sentiment\t1";
const BIAS: &str = "@bias";
const LEXICON: &str = "@lexicon";

/// Polarity magnitudes below this are labelled [`Label::Neutral`]: the model is less than 60 %
/// sure either way.
pub const NEUTRAL_BAND: f32 = 0.2;

static SHIPPED: LazyLock<SentimentModel> = LazyLock::new(|| {
    SentimentModel::parse(include_str!("../models/sentiment.tsv"))
        .expect("the shipped sentiment model parses (checked by the crate's tests)")
});

/// The sentiment of one text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sentiment {
    /// From -1 (surely negative) to 1 (surely positive); 0 when nothing in the text is known.
    pub polarity: f32,
    /// `polarity` bucketed with [`NEUTRAL_BAND`].
    pub label: Label,
    /// The language whose model scored the text.
    pub language: Language,
}

/// Coarse sentiment class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    /// Clearly favourable.
    Positive,
    /// Clearly unfavourable.
    Negative,
    /// Neither, or unscorable.
    Neutral,
}

/// The languages the models know, detected per text by [`detect_language`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// Chinese (mostly Han characters, no Japanese kana).
    Zh,
    /// English (mostly Latin letters).
    En,
    /// Anything else, including text without letters; always scored neutral.
    Other,
}

impl Sentiment {
    const NEUTRAL: Sentiment = Sentiment {
        polarity: 0.0,
        label: Label::Neutral,
        language: Language::Other,
    };

    fn from_polarity(polarity: f32, language: Language) -> Sentiment {
        let label = if polarity >= NEUTRAL_BAND {
            Label::Positive
        } else if polarity <= -NEUTRAL_BAND {
            Label::Negative
        } else {
            Label::Neutral
        };
        Sentiment {
            polarity,
            label,
            language,
        }
    }
}

/// Detects the language from the letters of `text`: Chinese when at least a quarter of them are
/// Han (a Han character carries about a word, so mixed text such as "这款iPhone很好用" stays
/// Chinese) and there is no kana, English when most of them are Latin, otherwise
/// [`Language::Other`].
pub fn detect_language(text: &str) -> Language {
    let (mut han, mut kana, mut latin, mut other) = (0usize, 0usize, 0usize, 0usize);
    for c in text.chars() {
        if is_han(c) {
            han += 1;
        } else if matches!(c, '\u{3040}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}') {
            kana += 1;
        } else if c.is_ascii_alphabetic()
            || matches!(c, '\u{C0}'..='\u{24F}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}')
                && c.is_alphabetic()
        {
            latin += 1;
        } else if c.is_alphabetic() {
            other += 1;
        }
    }
    let letters = han + kana + latin + other;
    if letters == 0 {
        Language::Other
    } else if han * 4 >= letters && kana * 10 < han {
        Language::Zh
    } else if latin * 2 > letters {
        Language::En
    } else {
        Language::Other
    }
}

/// One language's logistic regression.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Weights {
    pub(crate) bias: f32,
    /// Weight of the VADER compound score (English only; 0 for Chinese).
    pub(crate) lexicon: f32,
    pub(crate) features: HashMap<String, Feature>,
}

/// One sparse feature's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Feature {
    pub(crate) weight: f32,
    /// Inverse document frequency in the training reviews, `ln((1 + n) / (1 + df)) + 1`.
    pub(crate) idf: f32,
}

impl Weights {
    /// The logit for a text's (distinct) features, or `None` when the model knows none of
    /// them and the lexicon score is 0.
    fn logit(&self, features: &[String], lexicon_score: f32) -> Option<f32> {
        let (mut weighted, mut norm2) = (0.0f32, 0.0f32);
        for feature in features {
            if let Some(f) = self.features.get(feature) {
                weighted += f.weight * f.idf;
                norm2 += f.idf * f.idf;
            }
        }
        if norm2 == 0.0 && lexicon_score == 0.0 {
            return None;
        }
        let sparse = if norm2 > 0.0 {
            weighted / norm2.sqrt()
        } else {
            0.0
        };
        Some(self.bias + self.lexicon * lexicon_score + sparse)
    }
}

/// Review sentiment models for Chinese and English.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SentimentModel {
    pub(crate) zh: Weights,
    pub(crate) en: Weights,
}

impl SentimentModel {
    /// The model shipped with the crate, parsed on first use.
    pub fn shipped() -> &'static SentimentModel {
        &SHIPPED
    }

    /// Scores a review. Empty text, text in another language and text the model knows
    /// nothing of are [`Label::Neutral`] with polarity 0.
    pub fn score(&self, text: &str) -> Sentiment {
        let language = detect_language(text);
        let logit = match language {
            Language::Zh => self.zh.logit(&features::chinese(text), 0.0),
            Language::En => self.en.logit(
                &features::english(text),
                vader::Vader::shipped().compound(text),
            ),
            Language::Other => None,
        };
        match logit {
            Some(z) => Sentiment::from_polarity((z / 2.0).tanh(), language),
            None => Sentiment {
                language,
                ..Sentiment::NEUTRAL
            },
        }
    }

    /// Number of sparse features per language, `(zh, en)`.
    pub fn feature_counts(&self) -> (usize, usize) {
        (self.zh.features.len(), self.en.features.len())
    }

    /// Parses the model file format described in the [module docs](self).
    pub fn parse(text: &str) -> Result<SentimentModel> {
        let mut lines = text.lines().enumerate();
        if lines.next().map(|(_, l)| l) != Some(MAGIC) {
            return Err(Error::Model {
                line: 1,
                reason: format!("expected the header {MAGIC:?}"),
            });
        }
        let mut model = SentimentModel::default();
        for (i, line) in lines {
            if line.starts_with("# ") {
                continue;
            }
            let bad = |reason: &str| Error::Model {
                line: i + 1,
                reason: reason.to_owned(),
            };
            let fields: Vec<&str> = line.split('\t').collect();
            let number = |field: &str| match field.parse::<f32>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(bad("not a finite number")),
            };
            let weights = match fields.first() {
                Some(&"zh") => &mut model.zh,
                Some(&"en") => &mut model.en,
                _ => return Err(bad("language must be `zh` or `en`")),
            };
            match fields[1..] {
                [BIAS, weight] => weights.bias = number(weight)?,
                [LEXICON, weight] => weights.lexicon = number(weight)?,
                ["", _, _] => return Err(bad("empty feature")),
                [name, weight, idf] if !name.starts_with('@') => {
                    let feature = Feature {
                        weight: number(weight)?,
                        idf: number(idf)?,
                    };
                    if weights.features.insert(name.to_owned(), feature).is_some() {
                        return Err(bad("duplicate feature"));
                    }
                }
                _ => return Err(bad("expected `lang<TAB>name<TAB>weight[<TAB>idf]`")),
            }
        }
        Ok(model)
    }

    /// Writes the model in the file format described in the [module docs](self); `comment`
    /// lines (provenance, accuracy) go after the header.
    pub fn to_text(&self, comment: &str) -> String {
        let mut out = format!("{MAGIC}\n");
        for line in comment.lines() {
            let _ = writeln!(out, "# {line}");
        }
        for (lang, weights) in [("en", &self.en), ("zh", &self.zh)] {
            let _ = writeln!(out, "{lang}\t{BIAS}\t{:.4}", weights.bias);
            if weights.lexicon != 0.0 {
                let _ = writeln!(out, "{lang}\t{LEXICON}\t{:.4}", weights.lexicon);
            }
            let mut sparse: Vec<(&String, &Feature)> = weights.features.iter().collect();
            sparse.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (name, f) in sparse {
                let _ = writeln!(out, "{lang}\t{name}\t{:.4}\t{:.3}", f.weight, f.idf);
            }
        }
        out
    }

    /// Writes [`Self::to_text`] to `path`.
    pub fn save(&self, path: &Path, comment: &str) -> Result<()> {
        std::fs::write(path, self.to_text(comment)).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_model_parses_and_has_both_languages() {
        let (zh, en) = SentimentModel::shipped().feature_counts();
        assert!(zh > 1000 && en > 100, "zh {zh}, en {en}");
    }

    #[test]
    fn obvious_chinese_reviews_get_the_right_label() {
        let model = SentimentModel::shipped();
        for (text, label) in [
            ("质量很好，非常满意", Label::Positive),
            ("物流很快，包装完好，推荐购买！", Label::Positive),
            ("太差了，再也不买了", Label::Negative),
            ("质量不好，用了两天就坏了，退货", Label::Negative),
        ] {
            let s = model.score(text);
            assert_eq!(
                (s.label, s.language),
                (label, Language::Zh),
                "{text}: {s:?}"
            );
        }
    }

    #[test]
    fn obvious_english_reviews_get_the_right_label() {
        let model = SentimentModel::shipped();
        for (text, label) in [
            ("Great phone, works perfectly", Label::Positive),
            ("I love it, excellent battery life!", Label::Positive),
            ("Terrible, broke after a day", Label::Negative),
            ("Not good at all, waste of money.", Label::Negative),
        ] {
            let s = model.score(text);
            assert_eq!(
                (s.label, s.language),
                (label, Language::En),
                "{text}: {s:?}"
            );
        }
    }

    #[test]
    fn unscorable_text_is_neutral_with_zero_polarity() {
        let model = SentimentModel::shipped();
        for text in [
            "",
            "   ",
            "!!! ???",
            "12345",
            "Это отличный телефон",
            "とても良い",
        ] {
            let s = model.score(text);
            assert_eq!((s.polarity, s.label), (0.0, Label::Neutral), "{text:?}");
        }
    }

    #[test]
    fn polarity_stays_in_range() {
        let model = SentimentModel::shipped();
        let long = "great ".repeat(500) + &"好".repeat(500);
        for text in [
            long.as_str(),
            "AWFUL!!!!! horrible terrible worst",
            "差差差差差差差差",
        ] {
            let p = model.score(text).polarity;
            assert!((-1.0..=1.0).contains(&p), "{p}");
        }
    }

    #[test]
    fn language_is_detected_from_the_share_of_han_characters() {
        assert_eq!(detect_language("这款iPhone 15很好用"), Language::Zh);
        assert_eq!(detect_language("Great phone, 很好"), Language::En);
        assert_eq!(detect_language("日本語のレビューです"), Language::Other);
        assert_eq!(detect_language("Très bien"), Language::En);
        assert_eq!(detect_language("Отлично"), Language::Other);
        assert_eq!(detect_language("2024!"), Language::Other);
    }

    #[test]
    fn model_text_round_trips() {
        let mut model = SentimentModel::default();
        model.zh.bias = -0.25;
        let feature = |weight, idf| Feature { weight, idf };
        model.zh.features.insert("~很好".into(), feature(1.5, 2.25));
        model.en.lexicon = 2.0;
        model
            .en
            .features
            .insert("not good".into(), feature(-0.125, 4.5));
        let text = model.to_text("test model\nsecond line");
        assert!(text.starts_with("tailor-sentiment\t1\n# test model\n# second line\n"));
        assert_eq!(SentimentModel::parse(&text).unwrap(), model);
    }

    #[test]
    fn malformed_model_lines_are_rejected_with_their_line_number() {
        for (text, line) in [
            ("nope", 1),
            ("tailor-sentiment\t1\nzh\tx", 2),
            ("tailor-sentiment\t1\n# c\nfr\tx\t1", 3),
            ("tailor-sentiment\t1\nzh\tx\tNaN\t1", 2),
            ("tailor-sentiment\t1\nzh\t@bias\t1\t1", 2),
            ("tailor-sentiment\t1\nzh\tx\t1\t1\nzh\tx\t2\t1", 3),
        ] {
            match SentimentModel::parse(text) {
                Err(Error::Model { line: got, .. }) => assert_eq!(got, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
