//! Parsers for the small value syntaxes flags share: lists, ranges and pairs.

/// A list flag's value (a newtype, so clap takes `1,2` as one value rather than many flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<T>(pub Vec<T>);

/// `--subjects` as a clap value parser.
pub fn subject_list(s: &str) -> Result<List<u8>, String> {
    subjects(s).map(List)
}

/// `--classes`, `--channels`, `--sessions` as a clap value parser.
pub fn name_list(s: &str) -> Result<List<String>, String> {
    names(s).map(List)
}

/// Parses `1,2,5` or `1-9` or `1-3,7` into a sorted, de-duplicated list of subject numbers.
pub fn subjects(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let number = |t: &str| {
            t.trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("`{t}` is not a subject number (1-255)"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(format!("`{part}` is an empty range"));
                }
                out.extend(a..=b);
            }
            None => out.push(number(part)?),
        }
    }
    if out.is_empty() {
        return Err(format!("`{s}` names no subject"));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Parses `a,b` into two finite numbers.
pub fn pair(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("`{s}` is not a pair `A,B`"))?;
    let num = |t: &str| {
        t.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("`{t}` is not a finite number"))
    };
    Ok((num(a)?, num(b)?))
}

/// Parses a comma-separated list of non-empty names.
pub fn names(s: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if list.is_empty() {
        return Err(format!("`{s}` is an empty list"));
    }
    Ok(list)
}

/// Parses `CODE=NAME`, e.g. `769=left`.
pub fn event(s: &str) -> Result<(u16, String), String> {
    let (code, name) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not `CODE=NAME`"))?;
    let code = code
        .trim()
        .parse::<u16>()
        .map_err(|_| format!("`{code}` is not an event code (0-65535)"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("`{s}` has an empty class name"));
    }
    Ok((code, name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_lists_and_ranges() {
        assert_eq!(subjects("1-3,7,2").unwrap(), vec![1, 2, 3, 7]);
        assert_eq!(subjects("9").unwrap(), vec![9]);
        assert!(subjects("3-1").unwrap_err().contains("`3-1`"));
        assert!(subjects("0").unwrap_err().contains("`0`"));
        assert!(subjects("x").is_err());
        assert!(subjects(",").is_err());
    }

    #[test]
    fn pairs_and_events() {
        assert_eq!(pair("8, 30").unwrap(), (8.0, 30.0));
        assert!(pair("8").is_err());
        assert!(pair("8,nan").is_err());
        assert_eq!(event("769=left").unwrap(), (769, "left".to_owned()));
        assert!(event("769").is_err());
        assert!(event("70000=x").is_err());
        assert!(event("769=").is_err());
    }
}
