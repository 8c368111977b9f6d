//! The goodbooks-10k catalog (`books.csv`, zygmuntz/goodbooks-10k) as the demo catalog.
//!
//! How a book becomes a product:
//! - id `gb-<book_id>`; title and description from the title, authors, year and ratings;
//! - category `books/<era>` from `original_publication_year`: `books/before-1800`,
//!   `books/19th-century`, `books/1900-1949`, then one per decade (`books/1990s`), and
//!   `books/unknown-era` without a year. Nearly every book is in English, so the era says
//!   more about a book than its language code does;
//! - brand: the first author;
//! - tags: the language (`english`, `french`, … or `lang-<code>`), the era, `bestseller`
//!   (a million ratings or more) and `highly-rated` (4.3 stars or more);
//! - price: 19 yuan + 12 yuan per average star + 2 yuan per order of magnitude of the ratings
//!   count, minus 0.10 (a 4.3-star book with 50,000 ratings costs 79.90);
//! - image: the CSV's cover URL (needs internet); Goodreads' "nophoto" placeholders become an
//!   offline tile;
//! - popularity: the ratings count; bought together: the next volume of a series (titles
//!   like `Catching Fire (The Hunger Games, #2)`) and the author's best-known other book.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context as _, bail};

use super::catalog::{Catalog, Product, tile};

/// Colour of the tile shown for books without a cover.
const NO_COVER_COLOUR: &str = "#0ea5e9";

/// Reads `<dir>/books.csv`.
pub fn load(dir: &Path) -> anyhow::Result<Catalog> {
    let path = dir.join("books.csv");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    parse(file)
}

/// Column positions of the fields used.
struct Columns {
    book_id: usize,
    authors: usize,
    year: usize,
    title: usize,
    language: usize,
    average_rating: usize,
    ratings_count: usize,
    image_url: usize,
}

/// Parses a goodbooks `books.csv` (header line first).
pub fn parse(input: impl Read) -> anyhow::Result<Catalog> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input);
    let headers = reader
        .headers()
        .context("books.csv: reading the header")?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| format!("books.csv: no `{name}` column in the header"))
    };
    let columns = Columns {
        book_id: column("book_id")?,
        authors: column("authors")?,
        year: column("original_publication_year")?,
        title: column("title")?,
        language: column("language_code")?,
        average_rating: column("average_rating")?,
        ratings_count: column("ratings_count")?,
        image_url: column("image_url")?,
    };
    let mut products = Vec::new();
    let mut popularity = Vec::new();
    let mut series = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|err| match err.position() {
            Some(at) => anyhow::anyhow!("books.csv line {}: {err}", at.line()),
            None => anyhow::anyhow!("books.csv: {err}"),
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let (product, ratings, volume) =
            book(&record, &columns).with_context(|| format!("books.csv line {line}"))?;
        products.push(product);
        popularity.push(ratings as f64);
        series.push(volume);
    }
    if products.is_empty() {
        bail!("books.csv has no books");
    }
    let companions = companions(&products, &popularity, &series);
    Ok(Catalog::new(products, &popularity, companions))
}

/// A series and a volume number in it, e.g. ("The Hunger Games", 2.0).
type Volume = (String, f64);

/// One row: the product, its ratings count and its series volume, if any.
fn book(
    record: &csv::StringRecord,
    columns: &Columns,
) -> anyhow::Result<(Product, u64, Option<Volume>)> {
    let field = |i: usize| record.get(i).unwrap_or("").trim();
    let required = |i: usize, name: &str| {
        let value = field(i);
        if value.is_empty() {
            bail!("{name} is empty");
        }
        Ok(value)
    };
    let book_id = required(columns.book_id, "book_id")?;
    let authors = required(columns.authors, "authors")?;
    let title = required(columns.title, "title")?;
    let rating_text = required(columns.average_rating, "average_rating")?;
    let rating: f64 = rating_text
        .parse()
        .ok()
        .filter(|r: &f64| (0.0..=5.0).contains(r))
        .with_context(|| format!("average_rating `{rating_text}` is not a number in 0..=5"))?;
    let count_text = required(columns.ratings_count, "ratings_count")?;
    let ratings: u64 = count_text
        .parse()
        .with_context(|| format!("ratings_count `{count_text}` is not a whole number"))?;
    let year_text = field(columns.year);
    let year = if year_text.is_empty() {
        None
    } else {
        let year: f64 = year_text
            .parse()
            .with_context(|| format!("original_publication_year `{year_text}` is not a year"))?;
        Some(year.floor() as i64)
    };
    let brand = authors
        .split(',')
        .next()
        .unwrap_or(authors)
        .trim()
        .to_owned();
    let era = era(year);
    let mut tags = Vec::new();
    tags.extend(language(field(columns.language)));
    tags.push(era.clone());
    if ratings >= 1_000_000 {
        tags.push("bestseller".to_owned());
    }
    if rating >= 4.3 {
        tags.push("highly-rated".to_owned());
    }
    let published = year.map_or_else(String::new, |y| format!(" First published in {y}."));
    let image_url = match field(columns.image_url) {
        url if url.is_empty() || url.contains("nophoto") => tile(NO_COVER_COLOUR, 'B'),
        url => url.to_owned(),
    };
    let product = Product {
        item_id: format!("gb-{book_id}"),
        title: title.to_owned(),
        description: format!(
            "{title} by {authors}.{published} Rated {rating:.2} by {ratings} readers."
        ),
        category: format!("books/{era}"),
        brand: brand.clone(),
        tags,
        price_minor: price(rating, ratings),
        available: true,
        stock: 0,
        image_url,
        embedding: Vec::new(),
        keywords: vec![brand],
    };
    Ok((product, ratings, volume(title)))
}

/// The era of a publication year (see the module docs).
fn era(year: Option<i64>) -> String {
    match year {
        None => "unknown-era".to_owned(),
        Some(y) if y < 1800 => "before-1800".to_owned(),
        Some(y) if y < 1900 => "19th-century".to_owned(),
        Some(y) if y < 1950 => "1900-1949".to_owned(),
        Some(y) => format!("{}s", y / 10 * 10),
    }
}

/// A tag naming the language of a goodbooks language code.
fn language(code: &str) -> Option<String> {
    let name = match code {
        "" => return None,
        "eng" | "en" | "en-US" | "en-GB" | "en-CA" => "english",
        "fre" => "french",
        "spa" => "spanish",
        "ger" => "german",
        "ita" => "italian",
        "por" => "portuguese",
        "ara" => "arabic",
        "jpn" => "japanese",
        "ind" => "indonesian",
        other => return Some(format!("lang-{}", other.to_lowercase())),
    };
    Some(name.to_owned())
}

/// The price in fen (see the module docs).
fn price(rating: f64, ratings: u64) -> i64 {
    let magnitude = (ratings as f64 + 1.0).log10().floor() as i64;
    let yuan = 19 + (12.0 * rating).round() as i64 + 2 * magnitude;
    yuan * 100 - 10
}

/// `Catching Fire (The Hunger Games, #2)` → `("The Hunger Games", 2.0)`.
fn volume(title: &str) -> Option<Volume> {
    let inner = title.strip_suffix(')')?;
    let (_, inner) = inner.rsplit_once(" (")?;
    let (series, number) = inner.rsplit_once(", #")?;
    let number: f64 = number.trim().parse().ok()?;
    Some((series.trim().to_owned(), number))
}

/// The next volume of the series, and the author's most popular other book.
fn companions(
    products: &[Product],
    popularity: &[f64],
    series: &[Option<Volume>],
) -> Vec<Vec<usize>> {
    let mut volumes: HashMap<&str, Vec<(f64, usize)>> = HashMap::new();
    for (i, entry) in series.iter().enumerate() {
        if let Some((name, number)) = entry {
            volumes.entry(name).or_default().push((*number, i));
        }
    }
    let mut by_author: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in products.iter().enumerate() {
        by_author.entry(&p.brand).or_default().push(i);
    }
    for books in by_author.values_mut() {
        books.sort_by(|&a, &b| popularity[b].total_cmp(&popularity[a]).then(a.cmp(&b)));
    }
    (0..products.len())
        .map(|i| {
            let mut list = Vec::new();
            if let Some((name, number)) = &series[i] {
                let next = volumes.get(name.as_str()).and_then(|v| {
                    v.iter()
                        .filter(|(n, _)| n > number)
                        .min_by(|a, b| a.0.total_cmp(&b.0))
                });
                list.extend(next.map(|&(_, j)| j));
            }
            let other = by_author
                .get(products[i].brand.as_str())
                .and_then(|books| books.iter().find(|&&j| j != i && !list.contains(&j)));
            list.extend(other.copied());
            list
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "book_id,goodreads_book_id,best_book_id,work_id,books_count,isbn,isbn13,authors,original_publication_year,original_title,title,language_code,average_rating,ratings_count,work_ratings_count,work_text_reviews_count,ratings_1,ratings_2,ratings_3,ratings_4,ratings_5,image_url,small_image_url";

    #[allow(clippy::too_many_arguments)] // one argument per column of a books.csv row
    fn row(
        id: u32,
        authors: &str,
        year: &str,
        title: &str,
        lang: &str,
        rating: &str,
        count: &str,
        image: &str,
    ) -> String {
        format!(
            "{id},1,1,1,1,,,\"{authors}\",{year},,\"{title}\",{lang},{rating},{count},0,0,0,0,0,0,0,{image},"
        )
    }

    fn sample() -> String {
        [
            HEADER.to_owned(),
            row(1, "Suzanne Collins", "2008.0", "The Hunger Games (The Hunger Games, #1)", "eng", "4.34", "4780653", "https://images.gr-assets.com/books/1447303603m/2767052.jpg"),
            row(2, "J.K. Rowling, Mary GrandPré", "1997.0", "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)", "eng", "4.44", "4602479", "https://images.gr-assets.com/books/1474154022m/3.jpg"),
            row(17, "Suzanne Collins", "2009.0", "Catching Fire (The Hunger Games, #2)", "en-US", "4.3", "1831039", "https://s.gr-assets.com/assets/nophoto/book/111x148-bcc042a9c91a29c1d680899eff700a03.png"),
            row(40, "Jane Austen", "1813.0", "Pride and Prejudice", "", "4.24", "2035490", ""),
            row(99, "Homer", "-750.0", "The Odyssey", "fre", "3.73", "670326", ""),
            row(120, "Anonymous", "", "Untitled Notes", "xyz", "3.0", "9", ""),
        ]
        .join("\n")
    }

    #[test]
    fn books_become_products() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("books.csv"), sample()).unwrap();
        let catalog = load(dir.path()).unwrap();
        let p = &catalog.products;
        assert_eq!(p.len(), 6);
        assert_eq!(p[0].item_id, "gb-1");
        assert_eq!(p[0].category, "books/2000s");
        assert_eq!(p[0].brand, "Suzanne Collins");
        assert_eq!(
            p[0].tags,
            ["english", "2000s", "bestseller", "highly-rated"]
        );
        assert_eq!(p[0].price_minor, (19 + 52 + 12) * 100 - 10);
        assert!(p[0].image_url.starts_with("https://images.gr-assets.com/"));
        assert_eq!(p[1].brand, "J.K. Rowling", "the first author");
        assert_eq!(p[1].category, "books/1990s");
        assert!(
            p[2].image_url.starts_with("data:image/svg+xml"),
            "nophoto → tile"
        );
        assert_eq!(p[3].category, "books/19th-century");
        assert_eq!(
            p[3].tags,
            ["19th-century", "bestseller"],
            "no language code, no tag"
        );
        assert_eq!(p[4].category, "books/before-1800");
        assert_eq!(p[4].tags[0], "french");
        assert_eq!(p[5].category, "books/unknown-era");
        assert_eq!(p[5].tags[0], "lang-xyz");
        // The Hunger Games #1 is bought with #2; #2 with the author's best-known other book.
        assert_eq!(catalog.companions[0], [2]);
        assert_eq!(catalog.companions[2], [0]);
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let bad = format!(
            "{}\n{}",
            sample(),
            row(121, "A", "2001", "T", "eng", "high", "3", "")
        );
        let err = parse(bad.as_bytes()).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "books.csv line 8: average_rating `high` is not a number in 0..=5"
        );
        let err = parse("book_id,title\n1,x\n".as_bytes()).unwrap_err();
        assert!(
            format!("{err:#}").contains("no `authors` column"),
            "{err:#}"
        );
        let missing = format!("{HEADER}\n{}", row(5, "", "2001", "T", "eng", "4", "3", ""));
        let err = parse(missing.as_bytes()).unwrap_err();
        assert_eq!(format!("{err:#}"), "books.csv line 2: authors is empty");
    }

    #[test]
    fn series_volumes_are_read_from_titles() {
        assert_eq!(
            volume("Catching Fire (The Hunger Games, #2)"),
            Some(("The Hunger Games".to_owned(), 2.0))
        );
        assert_eq!(volume("Pride and Prejudice"), None);
        assert_eq!(volume("Odd (Title)"), None);
    }
}
