//! C-FIND attribute matching (PS3.4 C.2.2.2), as pure functions on strings.
//!
//! - Universal matching: an empty value (or a lone `*`) matches everything.
//! - Single value matching: equal after trimming padding spaces; case-sensitive, except
//!   for PN when [`MatchOptions::pn_case_insensitive`] is set (our default, as most PACS
//!   do and PS3.4 C.2.2.2.1 allows: names are often typed in different cases).
//! - Wildcard matching: `*` (any run of characters) and `?` (one character) for the text
//!   VRs (AE, CS, LO, LT, PN, SH, ST, UC, UR, UT), never for UIDs, dates or numbers.
//! - Range matching for DA, TM and DT: `A-B`, `-B` (up to B) and `A-` (from A); bounds
//!   are inclusive, a partial time `12` means 12:00:00.000000 as a lower bound and
//!   12:59:59.999999 as an upper bound. Combined date-time matching of a date key and a
//!   time key together is not done: each key is matched on its own.
//! - List of UID matching: `uid1\uid2\...` for UI.
//! - Multiple values: a query value `CT\MR` on a text attribute matches when any query
//!   value matches any of the attribute's values (ModalitiesInStudy in PS3.4 C.6.2.1.2).
//! - Sequence matching is minimal: sequence keys are returned empty and not matched.

/// How a query key's VR takes part in matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PN: wildcards, optional case-insensitivity.
    PersonName,
    /// Other text VRs: wildcards, case-sensitive.
    Text,
    /// UI: single value or list of UIDs.
    Uid,
    /// DA: date ranges.
    Date,
    /// TM: time ranges.
    Time,
    /// DT: date-time ranges.
    DateTime,
    /// IS, DS, numbers: single value (compared as text after trimming).
    Other,
}

impl Kind {
    /// The kind for a two-letter VR.
    pub fn of_vr(vr: &str) -> Kind {
        match vr {
            "PN" => Kind::PersonName,
            "AE" | "CS" | "LO" | "LT" | "SH" | "ST" | "UC" | "UR" | "UT" => Kind::Text,
            "UI" => Kind::Uid,
            "DA" => Kind::Date,
            "TM" => Kind::Time,
            "DT" => Kind::DateTime,
            _ => Kind::Other,
        }
    }
}

/// Matching options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchOptions {
    /// Match PN values ignoring case (default true).
    pub pn_case_insensitive: bool,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions { pn_case_insensitive: true }
    }
}

/// A parsed matching key value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Empty value: matches everything.
    Universal,
    /// One or more alternatives (backslash-separated), each a single value or a wildcard
    /// pattern: matches when any one matches.
    Values(Vec<Pattern>),
    /// A DA/TM/DT range with inclusive, normalised bounds.
    Range {
        /// Lower bound, None when open.
        lo: Option<String>,
        /// Upper bound, None when open.
        hi: Option<String>,
    },
    /// A list of UIDs.
    Uids(Vec<String>),
}

/// One alternative of a text key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Exact (after trimming; lower-cased when case-insensitive).
    Exact(String),
    /// With `*` / `?`, as chars (lower-cased when case-insensitive).
    Wildcard(Vec<char>),
}

fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c == ' ' || c == '\0')
}

fn fold(s: &str, ci: bool) -> String {
    if ci {
        s.to_lowercase()
    } else {
        s.to_owned()
    }
}

impl Matcher {
    /// Parses a query value for a key of `kind`.
    pub fn parse(kind: Kind, value: &str, opts: MatchOptions) -> Matcher {
        let v = trim(value);
        if v.is_empty() || v == "*" {
            return Matcher::Universal;
        }
        let ci = kind == Kind::PersonName && opts.pn_case_insensitive;
        match kind {
            Kind::Uid => Matcher::Uids(
                v.split('\\').map(trim).filter(|u| !u.is_empty()).map(str::to_owned).collect(),
            ),
            Kind::Date | Kind::Time | Kind::DateTime if v.contains('-') && !v.contains('\\') => {
                let (a, b) = v.split_once('-').unwrap_or((v, ""));
                let (a, b) = (trim(a), trim(b));
                Matcher::Range {
                    lo: (!a.is_empty()).then(|| normalise(kind, a, false)),
                    hi: (!b.is_empty()).then(|| normalise(kind, b, true)),
                }
            }
            Kind::Date | Kind::Time | Kind::DateTime => {
                // A single value is the range [v, v] at its precision.
                let alts: Vec<&str> = v.split('\\').map(trim).collect();
                if alts.len() == 1 {
                    Matcher::Range {
                        lo: Some(normalise(kind, v, false)),
                        hi: Some(normalise(kind, v, true)),
                    }
                } else {
                    Matcher::Values(alts.iter().map(|a| Pattern::Exact((*a).to_owned())).collect())
                }
            }
            Kind::PersonName | Kind::Text => Matcher::Values(
                v.split('\\')
                    .map(trim)
                    .map(|a| {
                        if a.contains(['*', '?']) {
                            Pattern::Wildcard(fold(a, ci).chars().collect())
                        } else {
                            Pattern::Exact(fold(a, ci))
                        }
                    })
                    .collect(),
            ),
            Kind::Other => Matcher::Values(
                v.split('\\').map(trim).map(|a| Pattern::Exact(a.to_owned())).collect(),
            ),
        }
    }

    /// Whether an attribute value (possibly multi-valued, backslash-separated) matches.
    pub fn matches(&self, kind: Kind, value: &str, opts: MatchOptions) -> bool {
        let value = trim(value);
        match self {
            Matcher::Universal => true,
            Matcher::Uids(list) => list.iter().any(|u| u == value),
            Matcher::Range { lo, hi } => {
                if value.is_empty() {
                    return false;
                }
                value.split('\\').map(trim).any(|one| {
                    let lo_v = normalise(kind, one, false);
                    let hi_v = normalise(kind, one, true);
                    lo.as_ref().is_none_or(|l| hi_v >= *l) && hi.as_ref().is_none_or(|h| lo_v <= *h)
                })
            }
            Matcher::Values(alts) => {
                let ci = kind == Kind::PersonName && opts.pn_case_insensitive;
                let values: Vec<String> = if kind == Kind::PersonName {
                    // PN values are never split: '\' separates values, but names rarely have
                    // several; a multi-valued PN matches when any value matches.
                    value.split('\\').map(|s| fold(trim(s), ci)).collect()
                } else {
                    value.split('\\').map(|s| trim(s).to_owned()).collect()
                };
                alts.iter().any(|p| {
                    values.iter().any(|v| match p {
                        Pattern::Exact(e) => e == v,
                        Pattern::Wildcard(w) => wildcard(w, &v.chars().collect::<Vec<_>>()),
                    })
                })
            }
        }
    }
}

/// Normalises a DA/TM/DT value for comparison, padding a partial value to the start
/// (`upper` false) or the end (`upper` true) of the period it names. Separators that old
/// systems write (`2024.01.31`, `12:30`) are dropped.
fn normalise(kind: Kind, v: &str, upper: bool) -> String {
    let clean: String = v.chars().filter(|c| c.is_ascii_digit() || *c == '.').collect();
    match kind {
        Kind::Date => {
            let d: String = clean.chars().filter(char::is_ascii_digit).take(8).collect();
            pad(&d, if upper { "99991231" } else { "00000101" })
        }
        Kind::Time => time_key(&clean, upper),
        _ => {
            // DT: YYYYMMDDHHMMSS.FFFFFF (an offset suffix is ignored).
            let digits: String = v
                .split(['+', '-'])
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let (date, rest) = digits.split_at(digits.len().min(8));
            let date = pad(date, if upper { "99991231" } else { "00000101" });
            format!("{date}{}", time_key(rest, upper))
        }
    }
}

fn time_key(t: &str, upper: bool) -> String {
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let whole: String = whole.chars().filter(char::is_ascii_digit).take(6).collect();
    let frac: String = frac.chars().filter(char::is_ascii_digit).take(6).collect();
    let whole = pad(&whole, if upper { "235959" } else { "000000" });
    let frac = pad(&frac, if upper { "999999" } else { "000000" });
    format!("{whole}.{frac}")
}

/// `v` followed by the rest of `template` beyond `v`'s length.
fn pad(v: &str, template: &str) -> String {
    let mut s = v.to_owned();
    if s.len() < template.len() {
        s.push_str(&template[s.len()..]);
    }
    s
}

/// `*` and `?` matching, iterative with backtracking to the last star (linear-ish, no
/// recursion, so a hostile pattern cannot blow the stack).
fn wildcard(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: Kind, q: &str, v: &str) -> bool {
        let o = MatchOptions::default();
        Matcher::parse(kind, q, o).matches(kind, v, o)
    }

    #[test]
    fn universal_single_and_wildcards() {
        assert!(m(Kind::Text, "", "anything"));
        assert!(m(Kind::Text, "*", ""));
        assert!(m(Kind::Text, "ABC", "ABC "));
        assert!(!m(Kind::Text, "ABC", "abc"), "non-PN text is case-sensitive");
        assert!(m(Kind::Text, "A*C", "ABBBC"));
        assert!(m(Kind::Text, "A?C", "ABC"));
        assert!(!m(Kind::Text, "A?C", "ABBC"));
        assert!(m(Kind::Text, "*B*", "ABC"));
        assert!(!m(Kind::Text, "*X*", "ABC"));
        assert!(m(Kind::Text, "CT\\MR", "MR"));
        assert!(m(Kind::Text, "MR", "CT\\MR"), "any value of a multi-valued attribute");
        assert!(!m(Kind::Text, "PT", "CT\\MR"));
    }

    #[test]
    fn person_names_ignore_case_by_default() {
        assert!(m(Kind::PersonName, "doe^john", "DOE^JOHN"));
        assert!(m(Kind::PersonName, "DOE*", "Doe^Jane"));
        assert!(m(Kind::PersonName, "Müll*", "MÜLLER^JÖRG"));
        let strict = MatchOptions { pn_case_insensitive: false };
        assert!(!Matcher::parse(Kind::PersonName, "doe*", strict).matches(
            Kind::PersonName,
            "DOE^JOHN",
            strict
        ));
    }

    #[test]
    fn uids_lists_and_no_wildcards() {
        assert!(m(Kind::Uid, "1.2.3\\1.2.4", "1.2.4"));
        assert!(!m(Kind::Uid, "1.2.3\\1.2.4", "1.2.5"));
        assert!(!m(Kind::Uid, "1.2.*", "1.2.3"), "no wildcard for UIDs");
    }

    #[test]
    fn date_and_time_ranges() {
        assert!(m(Kind::Date, "20240101", "20240101"));
        assert!(!m(Kind::Date, "20240101", "20240102"));
        assert!(m(Kind::Date, "20240101-20240131", "20240115"));
        assert!(!m(Kind::Date, "20240101-20240131", "20240201"));
        assert!(m(Kind::Date, "-20240101", "19991231"));
        assert!(!m(Kind::Date, "-20240101", "20240102"));
        assert!(m(Kind::Date, "20240101-", "20250101"));
        assert!(!m(Kind::Date, "20240101-", "20231231"));
        assert!(!m(Kind::Date, "20240101-", ""), "an empty value never matches a range");
        assert!(m(Kind::Time, "1200-1300", "123000.5"));
        assert!(m(Kind::Time, "1200-1300", "130059"), "upper bound 13 means 13:00:59 too");
        assert!(!m(Kind::Time, "1200-1300", "130100"));
        assert!(m(Kind::Time, "12", "125959"));
        assert!(m(Kind::Time, "-0900", "083000"));
        assert!(m(Kind::DateTime, "20240101-20240102", "20240102235959"));
        assert!(!m(Kind::DateTime, "20240101-20240102", "20240103000000"));
    }

    #[test]
    fn hostile_patterns_are_cheap() {
        let p = "*a".repeat(200) + "b";
        let s = "a".repeat(5000);
        let start = std::time::Instant::now();
        assert!(!m(Kind::Text, &p, &s));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn random_keys_and_values_never_panic() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet: Vec<char> = "*?\\-.0123456789 ^=aZéü王\u{0}".chars().collect();
        let o = MatchOptions::default();
        for _ in 0..5000 {
            let mut s = |n: u64| -> String {
                (0..next() % n).map(|_| alphabet[(next() as usize) % alphabet.len()]).collect()
            };
            let (q, v) = (s(24), s(24));
            for kind in [
                Kind::PersonName,
                Kind::Text,
                Kind::Uid,
                Kind::Date,
                Kind::Time,
                Kind::DateTime,
                Kind::Other,
            ] {
                let _ = Matcher::parse(kind, &q, o).matches(kind, &v, o);
            }
        }
    }
}
