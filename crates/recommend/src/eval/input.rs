//! Reading interaction files: `user item [rating [timestamp]]` per line, comma-, tab- or
//! whitespace-separated, optionally with a header line, optionally gzip-compressed.
//!
//! Detection looks at the first lines only: a tab anywhere means tab-separated, else a comma
//! means comma-separated, else runs of spaces separate. The first line is a header when one of
//! its fields is not a number where the second line has one (`userID` over `2`), or when it
//! names a user or item column (for files whose ids are not numbers).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::EvalError;

/// Field separator of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    /// `,`
    Comma,
    /// `\t`
    Tab,
    /// One or more spaces.
    Whitespace,
}

/// One interaction row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// External user id.
    pub user: String,
    /// External item id.
    pub item: String,
    /// The third column, when present.
    pub rating: Option<f32>,
    /// The fourth column, when present.
    pub timestamp: Option<i64>,
}

/// A parsed file.
#[derive(Debug, Clone)]
pub struct Table {
    /// Detected separator.
    pub delimiter: Delimiter,
    /// Whether the first line was a header (and skipped).
    pub header: Option<Vec<String>>,
    /// Rows in file order.
    pub rows: Vec<Row>,
}

/// Opens a file, transparently decompressing gzip (detected by its magic bytes, so a `.gz`
/// name is not required and a misnamed plain file still reads).
pub fn open(path: &Path) -> Result<Box<dyn BufRead>, EvalError> {
    let io = |e| EvalError::Io(path.display().to_string(), e);
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(io)?;
    let file = File::open(path).map_err(io)?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::new(MultiGzDecoder::new(file))))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}

/// Reads and parses an interaction file.
pub fn read_table(path: &Path) -> Result<Table, EvalError> {
    let reader = open(path)?;
    parse(reader).map_err(|e| e.in_file(path))
}

fn split_fields(line: &str, delimiter: Delimiter) -> Vec<&str> {
    match delimiter {
        Delimiter::Comma => line.split(',').map(str::trim).collect(),
        Delimiter::Tab => line.split('\t').map(str::trim).collect(),
        Delimiter::Whitespace => line.split_whitespace().collect(),
    }
}

fn detect_delimiter(lines: &[String]) -> Delimiter {
    if lines.iter().any(|l| l.contains('\t')) {
        Delimiter::Tab
    } else if lines.iter().any(|l| l.contains(',')) {
        Delimiter::Comma
    } else {
        Delimiter::Whitespace
    }
}

fn is_number(s: &str) -> bool {
    s.parse::<f64>().is_ok()
}

fn detect_header(first: &[&str], second: Option<&[&str]>) -> bool {
    if let Some(second) = second
        && first
            .iter()
            .zip(second)
            .any(|(a, b)| !is_number(a) && is_number(b))
    {
        return true;
    }
    first.iter().take(2).any(|f| {
        let f = f.to_ascii_lowercase();
        f.contains("user") || f.contains("item")
    })
}

/// Parses interaction rows from any reader (see the module docs for the rules).
pub fn parse(reader: impl BufRead) -> Result<Table, EvalError> {
    let mut lines = reader.lines().enumerate();
    // Look ahead at the first two non-empty lines for detection.
    let mut head: Vec<(usize, String)> = Vec::new();
    for (n, line) in lines.by_ref() {
        let line = line.map_err(|e| EvalError::Io(String::new(), e))?;
        if !line.trim().is_empty() {
            head.push((n + 1, line));
            if head.len() == 2 {
                break;
            }
        }
    }
    let head_text: Vec<String> = head.iter().map(|(_, l)| l.clone()).collect();
    let delimiter = detect_delimiter(&head_text);
    let header = match head.first() {
        Some((_, first)) => {
            let f = split_fields(first, delimiter);
            let s = head.get(1).map(|(_, l)| split_fields(l, delimiter));
            detect_header(&f, s.as_deref()).then(|| f.iter().map(|x| (*x).to_owned()).collect())
        }
        None => None,
    };
    let mut rows = Vec::new();
    let skip = usize::from(header.is_some());
    let rest = lines.map(|(n, l)| (n + 1, l));
    for (line_no, line) in head
        .into_iter()
        .skip(skip)
        .map(|(n, l)| (n, Ok(l)))
        .chain(rest)
    {
        let line = line.map_err(|e| EvalError::Io(format!("line {line_no}"), e))?;
        if line.trim().is_empty() {
            continue;
        }
        rows.push(parse_row(&line, line_no, delimiter)?);
    }
    Ok(Table {
        delimiter,
        header,
        rows,
    })
}

fn parse_row(line: &str, line_no: usize, delimiter: Delimiter) -> Result<Row, EvalError> {
    let fields = split_fields(line, delimiter);
    let bad = |reason: String| EvalError::Parse {
        file: String::new(),
        line: line_no,
        reason,
    };
    if fields.len() < 2 || fields[0].is_empty() || fields[1].is_empty() {
        return Err(bad(format!(
            "expected at least 2 columns (user item), found {:?}",
            line.trim()
        )));
    }
    let rating = match fields.get(2) {
        Some(f) if !f.is_empty() => Some(
            f.parse::<f32>()
                .map_err(|_| bad(format!("rating {f:?} is not a number")))?,
        ),
        _ => None,
    };
    let timestamp = match fields.get(3) {
        Some(f) if !f.is_empty() => Some(match f.parse::<i64>() {
            Ok(t) => t,
            Err(_) => f
                .parse::<f64>()
                .map(|t| t as i64)
                .map_err(|_| bad(format!("timestamp {f:?} is not a number")))?,
        }),
        _ => None,
    };
    Ok(Row {
        user: fields[0].to_owned(),
        item: fields[1].to_owned(),
        rating,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn parse_str(s: &str) -> Result<Table, EvalError> {
        parse(s.as_bytes())
    }

    #[test]
    fn space_separated_without_header() {
        let t = parse_str("1 10\n1 11\n\n2  10\n").unwrap();
        assert_eq!(t.delimiter, Delimiter::Whitespace);
        assert!(t.header.is_none());
        assert_eq!(t.rows.len(), 3);
        assert_eq!(
            (t.rows[2].user.as_str(), t.rows[2].item.as_str()),
            ("2", "10")
        );
        assert_eq!(t.rows[0].rating, None);
    }

    #[test]
    fn tab_separated_with_header_and_weights() {
        let t = parse_str("userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n").unwrap();
        assert_eq!(t.delimiter, Delimiter::Tab);
        assert_eq!(t.header.as_deref().map(<[String]>::len), Some(3));
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[1].rating, Some(11690.0));
    }

    #[test]
    fn comma_separated_with_timestamps_and_string_ids() {
        let t = parse_str("user,item,rating,time\nalice,sku-1,5,1700000000\nbob,sku-2,3,1.5e9\n")
            .unwrap();
        assert_eq!(t.delimiter, Delimiter::Comma);
        assert!(t.header.is_some());
        assert_eq!(t.rows[0].timestamp, Some(1_700_000_000));
        assert_eq!(t.rows[1].timestamp, Some(1_500_000_000));
        // String ids without a header are data, not a header.
        let t = parse_str("alice,sku-1\nbob,sku-2\n").unwrap();
        assert!(t.header.is_none());
        assert_eq!(t.rows.len(), 2);
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_str("1 10\n1 11\n7\n").unwrap_err().to_string();
        assert!(
            err.contains("line 3") && err.contains("at least 2 columns"),
            "{err}"
        );
        let err = parse_str("1,10,x\n").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("rating"), "{err}");
    }

    #[test]
    fn gzip_is_detected_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.txt.gz");
        let file = File::create(&path).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        gz.write_all(b"u\ti\n1\t2\n3\t4\n").unwrap();
        gz.finish().unwrap();
        let t = read_table(&path).unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[1].item, "4");
        let err = read_table(&dir.path().join("missing.txt")).unwrap_err();
        assert!(err.to_string().contains("missing.txt"));
    }
}
