//! CSV text to a [`Dataset`]: header detection, label, target and soft-label columns (reading the
//! file is [`crate::preset::io`]'s).

use crate::core::data::{Dataset, MAX_COORDINATE, check_soft};

/// A parsed CSV table: coordinate columns, an optional `label` column, optional `target…`
/// columns, optional soft-label columns `soft0 … soft{C−1}`.
///
/// A UTF-8 byte-order mark at the start is skipped. The first row is a header when none of its
/// fields is a number (so `1,2x` is a data row with a typo, reported as such); with a header
/// columns are named: `label`
/// holds integer labels (an empty cell is unlabelled), names starting with `target` hold
/// regression targets, `soft` followed by a class number holds that class's probability, every
/// other column is a coordinate. A row gives either a label or soft probabilities (all of them,
/// non-negative, summing to 1) or neither. Without a header every column is a coordinate.
/// `source` names the file in messages.
///
/// # Errors
/// A message naming the line and column of the first field that does not parse, a row of the
/// wrong length, or a soft label that is not a probability vector.
pub fn parse_csv(text: &str, source: &str) -> Result<Dataset, String> {
    let mut lines = rows(text).peekable();
    let Some(&(_, first)) = lines.peek() else {
        return Err(format!("{source}: no rows"));
    };
    let (names, kinds, has_header) = columns(first);
    if has_header {
        lines.next();
    }
    let dim = kinds.iter().filter(|&&k| k == Col::Coord).count();
    let target_dim = kinds.iter().filter(|&&k| k == Col::Target).count();
    if dim == 0 {
        return Err(format!(
            "{source}: no coordinate columns (a header names them, e.g. `x,y,label`)"
        ));
    }
    if kinds.iter().filter(|&&k| k == Col::Label).count() > 1 {
        return Err(format!("{source}: more than one `label` column"));
    }
    let soft_classes = kinds.iter().filter(|k| matches!(k, Col::Soft(_))).count();
    for c in 0..soft_classes {
        if kinds.iter().filter(|&&k| k == Col::Soft(c)).count() != 1 {
            return Err(format!(
                "{source}: soft-label columns must be soft0 … soft{} (one per class, each once); `soft{c}` is {}",
                soft_classes - 1,
                if kinds.contains(&Col::Soft(c)) {
                    "repeated"
                } else {
                    "missing"
                }
            ));
        }
    }
    let mut data = Dataset {
        dim,
        target_dim,
        names: if has_header {
            names
                .iter()
                .zip(&kinds)
                .filter(|&(_, &k)| k == Col::Coord)
                .map(|(n, _)| n.clone())
                .collect()
        } else {
            Vec::new()
        },
        ..Dataset::default()
    };
    parse_rows(lines, &names, &kinds, soft_classes, source, &mut data)?;
    if data.is_empty() {
        return Err(format!("{source}: a header but no data rows"));
    }
    Ok(data)
}

/// The rows of CSV `text` with their 1-based line numbers, trimmed: a leading byte-order mark
/// skipped, blank lines and `#` comments left out.
fn rows(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.strip_prefix('\u{feff}')
        .unwrap_or(text)
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// The role of a CSV column.
#[derive(Clone, Copy, PartialEq)]
enum Col {
    Coord,
    Label,
    Target,
    Soft(usize),
}

/// The comma-separated fields of line `l`, each trimmed.
fn split_fields(l: &str) -> Vec<String> {
    l.split(',').map(|f| f.trim().to_string()).collect()
}

/// The column names and roles given by the first row `first`, and whether that row is a header.
fn columns(first: &str) -> (Vec<String>, Vec<Col>, bool) {
    let first_fields = split_fields(first);
    let has_header = first_fields.iter().all(|f| f.parse::<f64>().is_err());
    let (names, kinds): (Vec<String>, Vec<Col>) = if has_header {
        first_fields
            .iter()
            .map(|f| {
                let lower = f.to_ascii_lowercase();
                let kind = if lower == "label" {
                    Col::Label
                } else if let Some(c) = lower.strip_prefix("soft").and_then(|c| c.parse::<usize>().ok()) {
                    Col::Soft(c)
                } else if lower.starts_with("target") {
                    Col::Target
                } else {
                    Col::Coord
                };
                (f.clone(), kind)
            })
            .unzip()
    } else {
        (
            (1..=first_fields.len()).map(|c| format!("column {c}")).collect(),
            vec![Col::Coord; first_fields.len()],
        )
    };
    (names, kinds, has_header)
}

/// How the first row of CSV `text` was read, in words: `header row x, y, label` or `no header
/// row (3 coordinate columns)`, for a summary that says which was chosen.
#[must_use]
pub fn header_summary(text: &str) -> String {
    let Some((_, first)) = rows(text).next() else {
        return "no rows".into();
    };
    let (names, _, has_header) = columns(first);
    if has_header {
        format!("header row {}", quote(&names.join(", ")))
    } else {
        format!("no header row ({} columns, all coordinates)", names.len())
    }
}

/// Input text as quoted in a message: control characters escaped and at most
/// [`QUOTE_LIMIT`] characters, so a huge or binary field never floods the terminal.
#[must_use]
pub fn quote(text: &str) -> String {
    quote_at_most(text, QUOTE_LIMIT)
}

/// [`quote`] with a limit of `limit` characters.
#[must_use]
pub fn quote_at_most(text: &str, limit: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == limit {
            out += &format!("… ({} characters in all)", text.chars().count());
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Most characters of input a message quotes.
pub const QUOTE_LIMIT: usize = 60;

/// Appends the rows `lines` (line number, text) to `data`; the columns are `names`, with roles `kinds`.
fn parse_rows<'a>(
    lines: impl Iterator<Item = (usize, &'a str)>,
    names: &[String],
    kinds: &[Col],
    soft_classes: usize,
    source: &str,
    data: &mut Dataset,
) -> Result<(), String> {
    let mut x = Vec::with_capacity(data.dim);
    let mut t = Vec::with_capacity(data.target_dim);
    let mut soft = vec![f64::NAN; soft_classes];
    for (line, l) in lines {
        let fields = split_fields(l);
        if fields.len() != kinds.len() {
            return Err(format!(
                "{source}, line {line}: {} fields, expected {} ({})",
                fields.len(),
                kinds.len(),
                quote(&names.join(","))
            ));
        }
        x.clear();
        t.clear();
        soft.fill(f64::NAN);
        let mut label = None;
        for ((f, kind), name) in fields.iter().zip(kinds).zip(names) {
            match kind {
                Col::Soft(c) => {
                    if !f.is_empty() {
                        soft[*c] = f.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                            format!(
                                "{source}, line {line}, column `{}`: `{}` is not a probability",
                                quote(name),
                                quote(f)
                            )
                        })?;
                    }
                }
                Col::Label => {
                    if !f.is_empty() {
                        label = Some(f.parse::<u32>().map_err(|_| {
                            format!(
                                "{source}, line {line}, column `{}`: `{}` is not a non-negative integer label",
                                quote(name),
                                quote(f)
                            )
                        })?);
                    }
                }
                Col::Coord | Col::Target => {
                    let v = f.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                        format!(
                            "{source}, line {line}, column `{}`: `{}` is not a finite number",
                            quote(name),
                            quote(f)
                        )
                    })?;
                    if v.abs() > MAX_COORDINATE {
                        return Err(format!(
                            "{source}, line {line}, column `{}`: {v:e} is outside ±{MAX_COORDINATE:e} (squared distances would overflow)",
                            quote(name)
                        ));
                    }
                    if *kind == Col::Coord { x.push(v) } else { t.push(v) }
                }
            }
        }
        let given = soft.iter().filter(|v| !v.is_nan()).count();
        if given == 0 {
            data.push(&x, label, &t);
            continue;
        }
        if given < soft_classes {
            return Err(format!(
                "{source}, line {line}: a soft label needs all {soft_classes} soft columns, {given} given (leave all empty for none)"
            ));
        }
        if label.is_some() {
            return Err(format!(
                "{source}, line {line}: both a `label` and soft labels; give one (the soft label's most probable class becomes its label)"
            ));
        }
        check_soft(&soft).map_err(|e| format!("{source}, line {line}, soft label: {e}"))?;
        data.push_soft(&x, &soft, &t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_header_labels_and_targets() {
        let d = parse_csv("x,y,label,target\n1,2,0,0.5\n3,4,,1.5\n", "t.csv").unwrap();
        assert_eq!(d.dim, 2);
        assert_eq!(d.points, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(d.labels, vec![Some(0), None]);
        assert_eq!(d.targets, vec![0.5, 1.5]);
        assert_eq!(d.names, ["x", "y"]);
    }

    #[test]
    fn csv_without_header_is_all_coordinates() {
        let d = parse_csv("1,2,3\n4,5,6\n", "t.csv").unwrap();
        assert!(d.names.is_empty());
        assert_eq!(d.dim, 3);
        assert_eq!(d.labels, vec![None, None]);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let e = parse_csv("x,y\n1,2\n3,abc\n", "t.csv").unwrap_err();
        assert!(
            e.contains("line 3") && e.contains("`abc`") && e.contains("column `y`"),
            "{e}"
        );
        let e = parse_csv("x,y\n1,2\n3\n", "t.csv").unwrap_err();
        assert!(e.contains("line 3") && e.contains("1 fields, expected 2"), "{e}");
        let e = parse_csv("x,label\n1,-1\n", "t.csv").unwrap_err();
        assert!(e.contains("line 2") && e.contains("label"), "{e}");
    }
}
