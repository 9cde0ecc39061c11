//! Drill scenarios: TOML files parsed and checked with line-numbered errors.
//!
//! The format is documented for users in the README ("Scenario files"): one `[drill]` table, up
//! to `OBJECTIVES_MAX` `[[objective]]` tables and 1 to `INJECTS_MAX` `[[inject]]` tables, each
//! inject of one kind with the keys of that kind only. Examples live in `deploy/drills/`.
//!
//! Every error names the line, the table (`[drill]`, `objective #2`, `inject "wave-2"`), the
//! field, what is wrong and what to write instead.

use std::fmt;
use std::io::Read as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::model::drill::{
    DRILL_MS_MAX, DrillRecord, INJECTS_MAX, Inject, InjectAction, NAME_BYTES_MAX, OBJECTIVES_MAX, Objective,
    ObjectiveKind, PARTICIPANTS_MAX, Scenario, TEXT_BYTES_MAX, WAVE_INDICATORS_MAX,
};
use crate::model::{Body, IndicatorType, NodeName, Tlp};

/// Largest scenario text read or parsed. The start record that carries a scenario is at most
/// `wire::BODY_BYTES_MAX` (16 KiB) encoded; this leaves room for comments and bounds the parser.
pub const SCENARIO_BYTES_MAX: usize = 256 * 1024;

/// Encoded bytes a scenario leaves free in its start record, for the note `Scenario::scaled` adds
/// to the description (" (run at 1000x speed)").
pub const START_RECORD_SLACK_BYTES: usize = 64;

/// Indicator types of a wave that names none.
pub const WAVE_TYPES_DEFAULT: [IndicatorType; 3] = [IndicatorType::Ipv4, IndicatorType::Domain, IndicatorType::Sha256];

/// Parses and checks a scenario. Injects come out sorted by `at` (ties keep file order) and
/// participants sorted; the result passes `Scenario::validate`.
pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    parse_text(text).map_err(|p| p.locate(text))
}

/// Reads and parses a scenario file; every error names `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let unreadable = |why: String| ScenarioError::new(Some(path), None, None, None, why);
    let file = std::fs::File::open(path)
        .map_err(|e| unreadable(format!("cannot open the scenario file: {e}; check the path and its permissions")))?;
    let mut bytes = Vec::new();
    file.take(SCENARIO_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(format!("cannot read the scenario file: {e}")))?;
    if bytes.len() > SCENARIO_BYTES_MAX {
        return Err(unreadable(format!(
            "the file is over {SCENARIO_BYTES_MAX} bytes; a scenario is a few KiB: is this the right file?"
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| unreadable(format!("the file is not UTF-8 text ({e}); save it as UTF-8")))?;
    parse(&text).map_err(|mut e| {
        e.0.path = Some(path.to_path_buf());
        e
    })
}

/// Checks that every participant is a member of the roster (`members`, in any order).
pub fn check_roster(s: &Scenario, members: &[NodeName]) -> Result<(), String> {
    let unknown: Vec<&str> = s.participants.iter().filter(|p| !members.contains(p)).map(NodeName::as_str).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut known: Vec<&str> = members.iter().map(NodeName::as_str).collect();
    known.sort_unstable();
    Err(format!(
        "scenario {:?}: {} {} not in the roster, which lists {}; change `participants` in [drill] to roster members",
        s.name,
        unknown.join(", "),
        if unknown.len() == 1 { "is" } else { "are" },
        known.join(", ")
    ))
}

/// A duration for people: `250ms`, `5s`, `1.5s`, `1m`, `1m30s`, `2h5m`; `parse_duration` reads
/// every output back to the same value.
pub fn format_duration(ms: u64) -> String {
    if ms < 1000 {
        return if ms == 0 { "0s".into() } else { format!("{ms}ms") };
    }
    let (h, m, rest) = (ms / 3_600_000, ms / 60_000 % 60, ms % 60_000);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if rest > 0 {
        let (s, frac) = (rest / 1000, rest % 1000);
        if frac == 0 {
            out += &format!("{s}s");
        } else {
            let frac = format!("{frac:03}");
            out += &format!("{s}.{}s", frac.trim_end_matches('0'));
        }
    }
    out
}

/// Reads a duration string: numbers with units `h`, `m`, `s`, `ms`, largest first, each once
/// (`"500ms"`, `"5s"`, `"1.5s"`, `"1m30s"`). Returns ms, or what is wrong and what to write.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let garbage = || {
        format!(
            "{s:?} is not a duration: write a number and a unit (ms, s, m or h), e.g. \"500ms\", \"5s\" or \"1m30s\""
        )
    };
    if t.starts_with('-') {
        return Err(format!("{s:?} is negative: durations count forward, e.g. \"5s\""));
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} has no unit: write \"{t}s\" for seconds (or use ms, m, h)"));
    }
    if t.is_empty() {
        return Err(garbage());
    }
    let digits = |r: &str| r.bytes().take_while(u8::is_ascii_digit).count();
    let (mut rest, mut total, mut last_rank) = (t, 0u128, u8::MAX);
    while !rest.is_empty() {
        let (int, r) = rest.split_at(digits(rest));
        let (frac, r) = match r.strip_prefix('.') {
            Some(r) if digits(r) > 0 => r.split_at(digits(r)),
            Some(_) => return Err(garbage()),
            None => ("", r),
        };
        let (unit, r) = r.split_at(r.bytes().take_while(u8::is_ascii_alphabetic).count());
        if int.is_empty() {
            return Err(garbage());
        }
        let (rank, unit_ms): (u8, u128) = match unit {
            "h" => (3, 3_600_000),
            "m" => (2, 60_000),
            "s" => (1, 1000),
            "ms" => (0, 1),
            "" => return Err(garbage()),
            other => return Err(format!("{s:?}: {other:?} is not a unit; use ms, s, m or h, e.g. \"1m30s\"")),
        };
        if rank >= last_rank {
            return Err(format!("{s:?}: give each unit once, largest first, e.g. \"1h30m\" or \"1m30s\""));
        }
        if int.len() > 12 || frac.len() > 9 {
            return Err(format!("{s:?} is too long; a drill lasts at most 24h"));
        }
        let scale = 10u128.pow(frac.len() as u32);
        let whole: u128 = int.parse().map_err(|_| garbage())?;
        let part: u128 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| garbage())? };
        let scaled = (whole * scale + part) * unit_ms;
        if !scaled.is_multiple_of(scale) {
            return Err(format!("{s:?} is finer than a millisecond; round it, e.g. \"1.5s\" or \"1500ms\""));
        }
        total += scaled / scale;
        (rest, last_rank) = (r, rank);
    }
    u64::try_from(total).map_err(|_| format!("{s:?} is too long; a drill lasts at most 24h"))
}

/// Why a scenario was refused: `Display` gives the whole message, e.g. `deploy/drills/x.toml:
/// line 14, inject "wave-2", field "types": "ipv5" is not an indicator type; use one of …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(Box<Detail>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Detail {
    path: Option<PathBuf>,
    line: Option<usize>,
    column: Option<usize>,
    table: Option<String>,
    field: Option<String>,
    message: String,
}

impl ScenarioError {
    fn new(
        path: Option<&Path>,
        position: Option<(usize, usize)>,
        table: Option<String>,
        field: Option<String>,
        message: String,
    ) -> Self {
        ScenarioError(Box::new(Detail {
            path: path.map(Path::to_path_buf),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            table,
            field,
            message,
        }))
    }

    /// The file, for errors from `load`.
    pub fn path(&self) -> Option<&Path> {
        self.0.path.as_deref()
    }

    /// 1-based line of the offending key, value or table header, when known.
    pub fn line(&self) -> Option<usize> {
        self.0.line
    }

    /// 1-based column (in characters) on that line, when known.
    pub fn column(&self) -> Option<usize> {
        self.0.column
    }

    /// The field at fault, as written in the file (`types`, `within`, `participants`).
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }

    /// What is wrong and what to write instead, without the location.
    pub fn message(&self) -> &str {
        &self.0.message
    }
}

impl fmt::Display for ScenarioError {
    /// `path: line L, TABLE, field "F": MESSAGE`; the column is shown only when no table or field
    /// locates the error (TOML syntax errors), where it matters most.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        let mut parts: Vec<String> = Vec::new();
        if let Some(line) = d.line {
            parts.push(format!("line {line}"));
            if let (Some(col), None, None) = (d.column, &d.table, &d.field) {
                parts.push(format!("column {col}"));
            }
        }
        parts.extend(d.table.clone());
        parts.extend(d.field.as_ref().map(|x| format!("field {x:?}")));
        if let Some(p) = &d.path {
            write!(f, "{}: ", p.display())?;
        }
        if parts.is_empty() { f.write_str(&d.message) } else { write!(f, "{}: {}", parts.join(", "), d.message) }
    }
}

impl std::error::Error for ScenarioError {}

// ---------------------------------------------------------------------------------------------
// The file as written. Every field is optional and spanned, so that the checks below, not serde,
// say what is missing or wrong, and can point at the line.

type Text = Spanned<String>;
type Names = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    drill: Option<Spanned<DrillTable>>,
    #[serde(default)]
    objective: Vec<Spanned<ObjectiveTable>>,
    #[serde(default)]
    inject: Vec<Spanned<InjectTable>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DrillTable {
    name: Option<Text>,
    description: Option<Text>,
    participants: Option<Names>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectiveTable {
    name: Option<Text>,
    kind: Option<Text>,
    within: Option<Spanned<RawDuration>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InjectTable {
    name: Option<Text>,
    at: Option<Spanned<RawDuration>>,
    kind: Option<Text>,
    from: Option<Text>,
    count: Option<Spanned<i64>>,
    types: Option<Names>,
    tlp: Option<Text>,
    of: Option<Text>,
    reason: Option<Text>,
    text: Option<Text>,
    within: Option<Spanned<RawDuration>>,
    node: Option<Text>,
    link: Option<Names>,
    duration: Option<Spanned<RawDuration>>,
}

impl InjectTable {
    /// The kind-specific keys that are present, with where they start.
    fn kind_keys(&self) -> [(&'static str, Option<usize>); 10] {
        fn at<T>(v: &Option<Spanned<T>>) -> Option<usize> {
            v.as_ref().map(|s| s.span().start)
        }
        [
            ("count", at(&self.count)),
            ("types", at(&self.types)),
            ("tlp", at(&self.tlp)),
            ("of", at(&self.of)),
            ("reason", at(&self.reason)),
            ("text", at(&self.text)),
            ("within", at(&self.within)),
            ("node", at(&self.node)),
            ("link", at(&self.link)),
            ("duration", at(&self.duration)),
        ]
    }
}

/// Inject kinds as written, with the kind-specific keys each takes.
const INJECT_KINDS: [(&str, &[&str]); 7] = [
    ("indicators", &["count", "types", "tlp"]),
    ("sighting", &["of", "count"]),
    ("retraction", &["of", "reason"]),
    ("comm_check", &["text", "within"]),
    ("situation", &["text", "within"]),
    ("isolate", &["node", "duration"]),
    ("cut_link", &["link", "duration"]),
];

/// A duration as written: a string such as `"1m30s"`, or a bare integer of seconds.
enum RawDuration {
    Text(String),
    Seconds(i64),
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"5s\", \"500ms\" or \"1m30s\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawDuration, E> {
                Ok(RawDuration::Text(s.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<RawDuration, E> {
                Ok(RawDuration::Seconds(n))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<RawDuration, E> {
                Ok(RawDuration::Seconds(i64::try_from(n).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------------
// Errors before they know their line.

/// The kind of table an error is in, for the "write instead" examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Top,
    Drill,
    Objective,
    Inject,
}

/// An error with a byte offset into the text, turned into a `ScenarioError` by `locate`.
#[derive(Debug)]
struct Problem {
    offset: Option<usize>,
    table: Option<String>,
    field: Option<String>,
    message: String,
}

impl Problem {
    fn general(message: String) -> Problem {
        Problem { offset: None, table: None, field: None, message }
    }

    fn locate(self, text: &str) -> ScenarioError {
        let position = self.offset.map(|o| line_col(text, o));
        ScenarioError::new(None, position, self.table, self.field, self.message)
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut o = offset.min(text.len());
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    let before = &text[..o];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}

/// One table of the file, as errors name it (`[drill]`, `objective #2`, `inject "wave-2"`).
struct Table {
    label: String,
    section: Section,
    /// Where its header (or inline table) starts: the line for errors about the table as a whole.
    start: usize,
}

/// How errors name a table: `[drill]`, `inject "wave-2"`, or by position when it has no name.
fn label(section: Section, index: usize, name: Option<&str>) -> String {
    let what = if section == Section::Objective { "objective" } else { "inject" };
    match (section, name) {
        (Section::Top, _) => "the file".to_string(),
        (Section::Drill, _) => "[drill]".to_string(),
        (_, Some(n)) if !n.is_empty() => format!("{what} {n:?}"),
        _ => format!("{what} #{}", index + 1),
    }
}

impl Table {
    fn new(section: Section, index: usize, name: Option<&Text>, start: usize) -> Table {
        Table { label: label(section, index, name.map(|n| n.get_ref().as_str())), section, start }
    }

    fn at(&self, offset: usize, field: &str, message: impl Into<String>) -> Problem {
        Problem {
            offset: Some(offset),
            table: Some(self.label.clone()),
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    fn bad<T>(&self, v: &Spanned<T>, field: &str, message: impl Into<String>) -> Problem {
        self.at(v.span().start, field, message)
    }

    /// A required field, or an error at the table's header saying what to add.
    fn need<'v, T>(&self, v: &'v Option<Spanned<T>>, field: &str) -> Result<&'v Spanned<T>, Problem> {
        v.as_ref()
            .ok_or_else(|| self.at(self.start, field, format!("missing; add e.g. {}", example(self.section, field))))
    }

    /// A field required by the inject's kind.
    fn need_for<'v, T>(&self, kind: &str, v: &'v Option<Spanned<T>>, field: &str) -> Result<&'v Spanned<T>, Problem> {
        v.as_ref().ok_or_else(|| {
            self.at(
                self.start,
                field,
                format!("{} {kind} inject needs it; add e.g. {}", article(kind), example(self.section, field)),
            )
        })
    }
}

/// An example line for a field, shown in errors as what to write.
fn example(section: Section, field: &str) -> &'static str {
    match (section, field) {
        (Section::Top, "drill") => "a [drill] table with name = \"...\" and participants = [\"ee\", \"lv\"]",
        (Section::Top, "objective") => "[[objective]] tables with kind = \"delivery\" and within = \"5s\"",
        (Section::Top, "inject") => "[[inject]] tables with name, at and kind",
        (Section::Drill, "name") => "name = \"ransomware-energy\"",
        (Section::Drill, "description") => "description = \"ransomware against the energy sector\"",
        (Section::Drill, "participants") => "participants = [\"ee\", \"lv\", \"lt\"]",
        (Section::Objective, "name") => "name = \"delivery-5s\"",
        (Section::Objective, "kind") => "kind = \"delivery\" (or ack, relay)",
        (Section::Objective, "within") => "within = \"5s\"",
        (_, "name") => "name = \"wave-1\"",
        (_, "at") => "at = \"10s\"",
        (_, "kind") => "kind = \"indicators\" (or sighting, retraction, comm_check, situation, isolate, cut_link)",
        (_, "from") => "from = \"ee\"",
        (_, "count") => "count = 20",
        (_, "types") => "types = [\"ipv4\", \"domain\"]",
        (_, "tlp") => "tlp = \"amber\"",
        (_, "of") => "of = \"wave-1\"",
        (_, "reason") => "reason = \"false positive: a CDN address\"",
        (_, "text") => "text = \"Ransomware hits a grid operator: confirm your teams are on it\"",
        (_, "within") => "within = \"60s\"",
        (_, "node") => "node = \"lt\"",
        (_, "link") => "link = [\"ee\", \"lt\"]",
        (_, "duration") => "duration = \"20s\"",
        _ => "one of the keys in deploy/drills/*.toml",
    }
}

/// "a" or "an" before an inject kind.
fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

/// The keys a table may hold, for unknown-key errors.
fn known_keys(section: Section) -> &'static [&'static str] {
    match section {
        Section::Top => &["drill", "objective", "inject"],
        Section::Drill => &["name", "description", "participants"],
        Section::Objective => &["name", "kind", "within"],
        Section::Inject => &[
            "name", "at", "kind", "from", "count", "types", "tlp", "of", "reason", "text", "within", "node", "link",
            "duration",
        ],
    }
}

/// A TOML or serde error with the table and key it falls in, and what to write instead.
fn from_toml(text: &str, e: &toml::de::Error) -> Problem {
    let msg = e.message().trim().trim_end_matches('.');
    let Some(span) = e.span() else {
        return Problem::general(msg.to_string());
    };
    let (section, table, field) = place(text, span.start);
    let message = if msg.starts_with("unknown field") {
        let name = field.as_deref().unwrap_or("");
        let keys = known_keys(section);
        // The closest key, if it is a plausible typo (two-letter keys need a closer match).
        let near = keys
            .iter()
            .map(|k| (edit_distance(k, name), k))
            .filter(|(d, k)| *d <= 2 && *d < name.len().min(k.len()))
            .min()
            .map(|(_, k)| format!("did you mean {k:?}? "));
        match section {
            Section::Top => format!(
                "not part of a scenario; {}use [drill], [[objective]] and [[inject]] tables",
                near.unwrap_or_default()
            ),
            _ => format!("unknown key; {}the keys here are {}", near.unwrap_or_default(), keys.join(", ")),
        }
    } else if msg == "duplicate key" {
        let key = text.get(span.clone()).unwrap_or("").trim_matches('"');
        return Problem {
            offset: Some(span.start),
            table,
            field: Some(key.to_string()),
            message: "given twice in one table; keep one".into(),
        };
    } else if let Some(f) = &field {
        // serde names Rust types; say what they are in TOML.
        let mut msg = msg.replace("expected i64", "expected a whole number");
        for shape in ["ScenarioFile", "DrillTable", "ObjectiveTable", "InjectTable"] {
            msg = msg.replace(&format!("expected struct {shape}"), "expected a table");
        }
        format!("{msg}; write e.g. {}", example(section, f))
    } else {
        format!("{msg}; check the TOML syntax: strings in double quotes, lists in [ ], one `key = value` a line")
    };
    Problem { offset: Some(span.start), table, field, message }
}

/// The table and key a byte offset falls in, from a spanned (best-effort) parse of the text.
fn place(text: &str, offset: usize) -> (Section, Option<String>, Option<String>) {
    let (doc, _) = DeTable::parse_recoverable(text);
    let inside = |r: Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
    for (k, v) in doc.get_ref().iter() {
        let key = k.get_ref().to_string();
        if inside(k.span()) {
            return (Section::Top, None, Some(key));
        }
        let section = match key.as_str() {
            "drill" => Section::Drill,
            "objective" => Section::Objective,
            _ => Section::Inject,
        };
        let tables: Vec<(usize, &DeTable)> = match v.get_ref() {
            DeValue::Table(t) => vec![(0, t)],
            DeValue::Array(a) => {
                a.iter().enumerate().filter_map(|(i, e)| e.get_ref().as_table().map(|t| (i, t))).collect()
            }
            _ if inside(v.span()) => return (Section::Top, None, Some(key)),
            _ => continue,
        };
        for (i, t) in tables {
            for (k2, v2) in t.iter() {
                if inside(k2.span()) || inside(v2.span()) {
                    let name = t.get("name").and_then(|n| n.get_ref().as_str());
                    return (section, Some(label(section, i, name)), Some(k2.get_ref().to_string()));
                }
            }
        }
    }
    (Section::Top, None, None)
}

/// Levenshtein distance, for "did you mean" on short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

// ---------------------------------------------------------------------------------------------
// From the file's shape to the model, checking as we go.

fn parse_text(text: &str) -> Result<Scenario, Problem> {
    if text.len() > SCENARIO_BYTES_MAX {
        return Err(Problem::general(format!(
            "the scenario is {} bytes, over the limit of {SCENARIO_BYTES_MAX}; a scenario is a few KiB",
            text.len()
        )));
    }
    let file: ScenarioFile = toml::from_str(text).map_err(|e| from_toml(text, &e))?;
    let Some(drill) = &file.drill else {
        let message = format!("the [drill] table is missing; begin the file with {}", example(Section::Top, "drill"));
        return Err(Problem { offset: Some(0), table: None, field: Some("drill".into()), message });
    };
    let (name, description, participants) = read_drill(drill)?;
    if file.inject.is_empty() {
        let t = Table::new(Section::Drill, 0, None, drill.span().start);
        return Err(t.at(
            t.start,
            "inject",
            format!("the scenario has no inject; add {}", example(Section::Top, "inject")),
        ));
    }
    let injects = read_injects(text, &file.inject, &participants)?;
    let objectives = read_objectives(&file.objective, &injects)?;
    let scenario = Scenario {
        name,
        description,
        participants,
        objectives,
        injects: injects.iter().map(|r| r.inject.clone()).collect(),
    };
    check_length(&scenario, &injects)?;
    check_encoded_size(&scenario)?;
    // The checks above cover every rule of `validate`; this is the safety net for a rule added
    // there and not here.
    scenario.validate().map_err(|e| Problem {
        offset: None,
        table: None,
        field: Some(e.field.to_string()),
        message: format!("{} (a rule the scenario loader does not check yet)", e.reason),
    })?;
    Ok(scenario)
}

fn read_drill(d: &Spanned<DrillTable>) -> Result<(String, String, Vec<NodeName>), Problem> {
    let t = Table::new(Section::Drill, 0, None, d.span().start);
    let d = d.get_ref();
    let name = read_name(&t, t.need(&d.name, "name")?, "name")?;
    let description = match &d.description {
        Some(s) => read_text(&t, s, "description", false)?,
        None => String::new(),
    };
    let list = t.need(&d.participants, "participants")?;
    if list.get_ref().is_empty() || list.get_ref().len() > PARTICIPANTS_MAX {
        let msg = format!("list 1 to {PARTICIPANTS_MAX} nodes; write e.g. {}", example(Section::Drill, "participants"));
        return Err(t.bad(list, "participants", msg));
    }
    let mut participants: Vec<NodeName> = Vec::new();
    for p in list.get_ref() {
        let n = NodeName::new(p.get_ref()).map_err(|e| t.bad(p, "participants", e.reason))?;
        if participants.contains(&n) {
            return Err(t.bad(p, "participants", format!("{:?} is listed twice; list each node once", p.get_ref())));
        }
        participants.push(n);
    }
    participants.sort();
    Ok((name, description, participants))
}

/// A scenario or inject name: 1 to 64 of `a-z`, `0-9`, `-`.
fn read_name(t: &Table, s: &Text, field: &str) -> Result<String, Problem> {
    let v = s.get_ref();
    let ok = !v.is_empty()
        && v.len() <= NAME_BYTES_MAX
        && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(v.clone())
    } else {
        let msg = format!(
            "{v:?} is not a name: use 1 to {NAME_BYTES_MAX} of a-z, 0-9 and -, e.g. {}",
            example(t.section, field)
        );
        Err(t.bad(s, field, msg))
    }
}

/// Free text of at most `TEXT_BYTES_MAX` bytes; `required` texts must say something.
fn read_text(t: &Table, s: &Text, field: &str, required: bool) -> Result<String, Problem> {
    let v = s.get_ref();
    if required && v.trim().is_empty() {
        return Err(t.bad(
            s,
            field,
            format!("is empty; write what the teams should read, e.g. {}", example(t.section, field)),
        ));
    }
    if v.len() > TEXT_BYTES_MAX {
        return Err(t.bad(s, field, format!("is {} bytes; shorten it to at most {TEXT_BYTES_MAX}", v.len())));
    }
    Ok(v.clone())
}

/// A duration field in ms, at most `DRILL_MS_MAX`; `positive` ones must be more than zero.
fn read_duration(t: &Table, v: &Spanned<RawDuration>, field: &str, positive: bool) -> Result<u64, Problem> {
    let ms = match v.get_ref() {
        RawDuration::Seconds(n) if *n < 0 => {
            return Err(t.bad(
                v,
                field,
                format!("{n} is negative; durations count forward, e.g. {}", example(t.section, field)),
            ));
        }
        RawDuration::Seconds(n) => (*n as u64).saturating_mul(1000),
        RawDuration::Text(s) => parse_duration(s).map_err(|why| t.bad(v, field, why))?,
    };
    if positive && ms == 0 {
        return Err(t.bad(v, field, format!("must be more than zero; write e.g. {}", example(t.section, field))));
    }
    if ms > DRILL_MS_MAX {
        let max = format_duration(DRILL_MS_MAX);
        return Err(t.bad(v, field, format!("{} is longer than a drill may last ({max})", format_duration(ms))));
    }
    Ok(ms)
}

/// A node that must be a participant.
fn read_participant(t: &Table, s: &Text, field: &str, participants: &[NodeName]) -> Result<NodeName, Problem> {
    let n = NodeName::new(s.get_ref()).map_err(|e| t.bad(s, field, e.reason))?;
    if participants.binary_search(&n).is_err() {
        let known: Vec<&str> = participants.iter().map(NodeName::as_str).collect();
        let msg = format!(
            "{:?} is not a participant; use one of {} (or add it to participants in [drill])",
            n.as_str(),
            known.join(", ")
        );
        return Err(t.bad(s, field, msg));
    }
    Ok(n)
}

/// An inject converted from its table, with the table for the checks that span injects.
struct ReadInject<'f> {
    inject: Inject,
    table: Table,
    raw: &'f InjectTable,
}

fn read_injects<'f>(
    text: &str,
    list: &'f [Spanned<InjectTable>],
    participants: &[NodeName],
) -> Result<Vec<ReadInject<'f>>, Problem> {
    let mut out: Vec<ReadInject<'f>> = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let raw = s.get_ref();
        let table = Table::new(Section::Inject, i, raw.name.as_ref(), s.span().start);
        if i == INJECTS_MAX {
            return Err(table.at(table.start, "inject", format!("a scenario has at most {INJECTS_MAX} injects")));
        }
        let inject = read_inject(&table, raw, participants)?;
        if let Some(first) = out.iter().find(|r| r.inject.name == inject.name) {
            let line = line_col(text, first.table.start).0;
            let msg =
                format!("{:?} is already the name of the inject at line {line}; give each its own name", inject.name);
            return Err(table.at(raw.name.as_ref().map_or(table.start, |n| n.span().start), "name", msg));
        }
        out.push(ReadInject { inject, table, raw });
    }
    out.sort_by_key(|r| r.inject.at_ms); // stable: ties keep file order
    for i in 0..out.len() {
        check_target(&out, i)?;
    }
    Ok(out)
}

fn read_inject(t: &Table, raw: &InjectTable, participants: &[NodeName]) -> Result<Inject, Problem> {
    let name = read_name(t, t.need(&raw.name, "name")?, "name")?;
    let at_ms = read_duration(t, t.need(&raw.at, "at")?, "at", false)?;
    let kind_s = t.need(&raw.kind, "kind")?;
    let Some(&(kind, keys)) = INJECT_KINDS.iter().find(|k| k.0 == kind_s.get_ref().as_str()) else {
        let kinds: Vec<&str> = INJECT_KINDS.iter().map(|k| k.0).collect();
        let msg = format!("{:?} is not an inject kind; use one of {}", kind_s.get_ref(), kinds.join(", "));
        return Err(t.bad(kind_s, "kind", msg));
    };
    for (key, offset) in raw.kind_keys() {
        if let Some(offset) = offset.filter(|_| !keys.contains(&key)) {
            let takers: Vec<&str> = INJECT_KINDS.iter().filter(|k| k.1.contains(&key)).map(|k| k.0).collect();
            let msg = format!(
                "{} {kind} inject has no {key}; remove it ({key} belongs to {} injects)",
                article(kind),
                takers.join(" and ")
            );
            return Err(t.at(offset, key, msg));
        }
    }
    let from = raw.from.as_ref().map(|f| read_participant(t, f, "from", participants)).transpose()?;
    if from.is_none() && matches!(kind, "indicators" | "sighting" | "retraction") {
        return Err(t.at(
            t.start,
            "from",
            format!(
                "{} {kind} inject needs its source node; add e.g. from = {:?}",
                article(kind),
                participants[0].as_str()
            ),
        ));
    }
    let action = match kind {
        "indicators" => read_wave(t, raw)?,
        "sighting" => InjectAction::Sighting {
            of: read_name(t, t.need_for(kind, &raw.of, "of")?, "of")?,
            count: match &raw.count {
                Some(c) => read_count(t, c, u32::MAX)?,
                None => 1,
            },
        },
        "retraction" => InjectAction::Retraction {
            of: read_name(t, t.need_for(kind, &raw.of, "of")?, "of")?,
            reason: read_text(t, t.need_for(kind, &raw.reason, "reason")?, "reason", true)?,
        },
        "comm_check" | "situation" => {
            let text = read_text(t, t.need_for(kind, &raw.text, "text")?, "text", true)?;
            let within_ms = read_duration(t, t.need_for(kind, &raw.within, "within")?, "within", true)?;
            if kind == "comm_check" {
                InjectAction::CommCheck { text, within_ms }
            } else {
                InjectAction::Situation { text, within_ms }
            }
        }
        "isolate" => InjectAction::Isolate {
            node: read_participant(t, t.need_for(kind, &raw.node, "node")?, "node", participants)?,
            duration_ms: read_duration(t, t.need_for(kind, &raw.duration, "duration")?, "duration", true)?,
        },
        _ => {
            let (a, b) = read_link(t, t.need_for(kind, &raw.link, "link")?, participants)?;
            let duration_ms = read_duration(t, t.need_for(kind, &raw.duration, "duration")?, "duration", true)?;
            InjectAction::CutLink { a, b, duration_ms }
        }
    };
    Ok(Inject { name, at_ms, from, action })
}

fn read_count(t: &Table, c: &Spanned<i64>, max: u32) -> Result<u32, Problem> {
    match u32::try_from(*c.get_ref()) {
        Ok(n) if n >= 1 && n <= max => Ok(n),
        _ => Err(t.bad(c, "count", format!("{} is out of range; write a whole number from 1 to {max}", c.get_ref()))),
    }
}

fn read_wave(t: &Table, raw: &InjectTable) -> Result<InjectAction, Problem> {
    let count = read_count(t, t.need_for("indicators", &raw.count, "count")?, WAVE_INDICATORS_MAX)?;
    let types = match &raw.types {
        None => WAVE_TYPES_DEFAULT.to_vec(),
        Some(list) => {
            if list.get_ref().is_empty() {
                return Err(t.bad(
                    list,
                    "types",
                    format!(
                        "is empty; leave it out for ipv4, domain and sha256, or write e.g. {}",
                        example(Section::Inject, "types")
                    ),
                ));
            }
            let mut types: Vec<IndicatorType> = Vec::new();
            for s in list.get_ref() {
                let ty: IndicatorType = s.get_ref().parse().map_err(|_| {
                    let all: Vec<&str> = IndicatorType::ALL.iter().map(|k| k.as_str()).collect();
                    t.bad(
                        s,
                        "types",
                        format!("{:?} is not an indicator type; use one of {}", s.get_ref(), all.join(", ")),
                    )
                })?;
                if types.contains(&ty) {
                    return Err(t.bad(s, "types", format!("{:?} is listed twice; list each type once", s.get_ref())));
                }
                types.push(ty);
            }
            types
        }
    };
    let tlp = match &raw.tlp {
        None => Tlp::Amber,
        Some(s) => match s.get_ref().parse::<Tlp>() {
            Ok(Tlp::Red) => {
                return Err(t.bad(
                    s,
                    "tlp",
                    "red is refused: a drill wave goes to every participant; use amber or amber+strict",
                ));
            }
            Ok(tlp) => tlp,
            Err(_) => {
                let msg = format!("{:?} is not a TLP level; use one of clear, green, amber, amber+strict", s.get_ref());
                return Err(t.bad(s, "tlp", msg));
            }
        },
    };
    Ok(InjectAction::Indicators { count, types, tlp })
}

fn read_link(t: &Table, list: &Names, participants: &[NodeName]) -> Result<(NodeName, NodeName), Problem> {
    let [a, b] = list.get_ref().as_slice() else {
        let msg = format!("name the two ends of the link; write e.g. {}", example(Section::Inject, "link"));
        return Err(t.bad(list, "link", msg));
    };
    let (a, b) = (read_participant(t, a, "link", participants)?, read_participant(t, b, "link", participants)?);
    if a == b {
        return Err(t.bad(list, "link", format!("joins {a} to itself; name two different participants")));
    }
    Ok((a, b))
}

/// A sighting's or retraction's `of` must name an indicators inject earlier in the timeline, and
/// a retraction must come from that wave's source.
fn check_target(injects: &[ReadInject<'_>], i: usize) -> Result<(), Problem> {
    let r = &injects[i];
    let (InjectAction::Sighting { of, .. } | InjectAction::Retraction { of, .. }) = &r.inject.action else {
        return Ok(());
    };
    let kind = r.inject.action.kind();
    let of_at = r.raw.of.as_ref().map_or(r.table.start, |s| s.span().start);
    let waves: Vec<&str> = injects
        .iter()
        .filter(|w| matches!(w.inject.action, InjectAction::Indicators { .. }))
        .map(|w| w.inject.name.as_str())
        .collect();
    let Some(pos) = injects.iter().position(|w| w.inject.name == *of) else {
        let msg = format!("there is no inject {of:?}; name an indicators inject: {}", list_or_none(&waves));
        return Err(r.table.at(of_at, "of", msg));
    };
    let wave = &injects[pos];
    if !matches!(wave.inject.action, InjectAction::Indicators { .. }) {
        let msg = format!(
            "{of:?} is a {} inject; name an indicators inject: {}",
            wave.inject.action.kind(),
            list_or_none(&waves)
        );
        return Err(r.table.at(of_at, "of", msg));
    }
    if pos > i {
        let msg = format!(
            "{of:?} comes at {}, after this {kind} at {}; a {kind} must come after its wave: move one of them",
            format_duration(wave.inject.at_ms),
            format_duration(r.inject.at_ms)
        );
        return Err(r.table.at(of_at, "of", msg));
    }
    if kind == "retraction" && wave.inject.from != r.inject.from {
        let source = wave.inject.from.as_ref().map_or("the controller", NodeName::as_str);
        let from_at = r.raw.from.as_ref().map_or(r.table.start, |s| s.span().start);
        let msg =
            format!("only a wave's own source can retract it; {of:?} comes from {source}: write from = {source:?}");
        return Err(r.table.at(from_at, "from", msg));
    }
    Ok(())
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() { "the scenario has none yet".into() } else { names.join(", ") }
}

fn read_objectives(list: &[Spanned<ObjectiveTable>], injects: &[ReadInject<'_>]) -> Result<Vec<Objective>, Problem> {
    let mut out: Vec<Objective> = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let raw = s.get_ref();
        let t = Table::new(Section::Objective, i, raw.name.as_ref(), s.span().start);
        if i == OBJECTIVES_MAX {
            return Err(t.at(t.start, "objective", format!("a scenario has at most {OBJECTIVES_MAX} objectives")));
        }
        let kind_s = t.need(&raw.kind, "kind")?;
        let kind = match kind_s.get_ref().as_str() {
            "delivery" => ObjectiveKind::Delivery,
            "ack" => ObjectiveKind::Ack,
            "relay" => ObjectiveKind::Relay,
            other => {
                return Err(t.bad(
                    kind_s,
                    "kind",
                    format!("{other:?} is not an objective kind; use delivery, ack or relay"),
                ));
            }
        };
        let within = t.need(&raw.within, "within")?;
        let within_ms = read_duration(&t, within, "within", true)?;
        let name = match &raw.name {
            // As the author wrote the bound: `within = "90s"` gives `ack-90s`.
            None => match within.get_ref() {
                RawDuration::Text(s) => format!("{}-{}", kind_s.get_ref(), s.trim()),
                RawDuration::Seconds(n) => format!("{}-{n}s", kind_s.get_ref()),
            },
            Some(n) => {
                let v = n.get_ref();
                if v.trim().is_empty() || v.len() > NAME_BYTES_MAX || v.chars().any(char::is_control) {
                    let msg = format!(
                        "{v:?}: use a short label of 1 to {NAME_BYTES_MAX} bytes, e.g. {}",
                        example(Section::Objective, "name")
                    );
                    return Err(t.bad(n, "name", msg));
                }
                v.clone()
            }
        };
        if out.iter().any(|o| o.name == name) {
            let at = raw.name.as_ref().map_or(t.start, |n| n.span().start);
            return Err(t.at(at, "name", format!("{name:?} names two objectives; give each its own name")));
        }
        let needs = match kind {
            ObjectiveKind::Ack if !injects.iter().any(|r| r.inject.action.ack_within_ms().is_some()) => {
                Some("an ack objective needs a comm_check or situation inject to acknowledge")
            }
            ObjectiveKind::Relay if !injects.iter().any(|r| r.inject.action.fault().is_some()) => {
                Some("a relay objective needs an isolate or cut_link inject to route around")
            }
            _ => None,
        };
        if let Some(why) = needs {
            return Err(t.bad(kind_s, "kind", format!("{why}; add one or remove this objective")));
        }
        out.push(Objective { name, kind, within_ms });
    }
    Ok(out)
}

/// The whole drill, up to the last deadline plus the longest objective bound, fits in
/// `DRILL_MS_MAX`. Each part is at most `DRILL_MS_MAX`, so the sums cannot overflow.
fn check_length(s: &Scenario, injects: &[ReadInject<'_>]) -> Result<(), Problem> {
    let total = s.duration_ms();
    if total <= DRILL_MS_MAX {
        return Ok(());
    }
    let tail = |a: &InjectAction| a.fault().map(|f| f.1).or(a.ack_within_ms()).unwrap_or(0);
    let last = injects.iter().max_by_key(|r| r.inject.at_ms + tail(&r.inject.action)).expect("at least one inject");
    let at = last.raw.at.as_ref().map_or(last.table.start, |a| a.span().start);
    let msg = format!(
        "the drill would last {} (to the end of this inject plus the longest objective bound); a drill lasts at most {}",
        format_duration(total),
        format_duration(DRILL_MS_MAX)
    );
    Err(last.table.at(at, "at", msg))
}

/// The scenario travels in the start record, which must fit in one entry body, with room left
/// for a speed note.
fn check_encoded_size(s: &Scenario) -> Result<(), Problem> {
    let start = Body::Drill(DrillRecord::Start { scenario: s.clone(), start_ms: u64::MAX });
    let len = crate::wire::encode_body(&start).len();
    let max = crate::wire::BODY_BYTES_MAX - START_RECORD_SLACK_BYTES;
    if len > max {
        return Err(Problem::general(format!(
            "the scenario takes {len} bytes in its start record, over the limit of {max}; shorten the description and texts, or split it into two drills"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/drills");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("deploy/drills exists")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_example_parses_and_validates() {
        let files = examples();
        assert!(files.len() >= 3, "{files:?}");
        for p in files {
            let s = load(&p).unwrap_or_else(|e| panic!("{e}"));
            s.validate().unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(Some(s.name.as_str()), p.file_stem().and_then(|x| x.to_str()), "name matches the file");
            let names: Vec<&str> = s.participants.iter().map(NodeName::as_str).collect();
            assert_eq!(names, ["ee", "lt", "lv"]);
            // Short enough to run for real on loopback.
            assert!(s.injects.iter().all(|i| i.at_ms <= 30_000), "{}", p.display());
            assert!(s.duration_ms() <= 180_000, "{}: {}", p.display(), format_duration(s.duration_ms()));
        }
    }

    #[test]
    fn examples_say_what_they_promise() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/drills");
        let r = load(&dir.join("ransomware-energy.toml")).unwrap();
        let objectives: Vec<(&str, u64)> = r.objectives.iter().map(|o| (o.name.as_str(), o.within_ms)).collect();
        assert_eq!(objectives, [("delivery-5s", 5_000), ("ack-90s", 90_000)]);
        let kinds: Vec<&str> = r.injects.iter().map(|i| i.action.kind()).collect();
        assert_eq!(kinds, ["indicators", "situation", "indicators", "sighting", "retraction"]);
        assert!(r.injects.iter().any(|i| i.action.needs_human() && i.action.ack_within_ms() == Some(60_000)));

        let d = load(&dir.join("ddos-cut-link.toml")).unwrap();
        let cut = d.injects.iter().find_map(|i| i.action.fault()).unwrap();
        assert_eq!(cut, (vec![NodeName::new("ee").unwrap(), NodeName::new("lt").unwrap()], 20_000));
        assert!(d.duration_ms() < 60_000);

        let c = load(&dir.join("comms-check.toml")).unwrap();
        assert!(matches!(c.injects[0].action, InjectAction::CommCheck { within_ms: 10_000, .. }));
        assert_eq!(c.injects[0].from, None, "from the controller");
        assert!(c.duration_ms() < 30_000);
    }

    /// Line numbers below refer to this text.
    const BASE: &str = r#"[drill]
name = "t"
participants = ["lv", "ee", "lt"]

[[objective]]
kind = "delivery"
within = "5s"

[[inject]]
name = "wave-1"
at = "0s"
kind = "indicators"
from = "ee"
count = 20

[[inject]]
name = "sit"
at = "5s"
kind = "situation"
text = "hello"
within = "60s"
"#;

    /// `BASE` with line `n` (1-based) replaced by `with` (which may hold several lines).
    fn edit(n: usize, with: &str) -> String {
        let mut lines: Vec<&str> = BASE.lines().collect();
        lines[n - 1] = with;
        lines.join("\n") + "\n"
    }

    /// `BASE` with one more inject: its header is line 23, its first field line 24.
    fn extra(fields: &str) -> String {
        format!("{BASE}\n[[inject]]\n{fields}\n")
    }

    /// Parsing `text` fails with a message containing every one of `want`.
    fn reject(text: &str, want: &[&str]) {
        let e = parse(text).expect_err("must be refused").to_string();
        for w in want {
            assert!(e.contains(w), "{w:?} is not in the error:\n{e}\nfor:\n{text}");
        }
    }

    #[test]
    fn base_parses() {
        let s = parse(BASE).unwrap();
        assert_eq!(s.injects.len(), 2);
        assert_eq!(s.objectives[0].name, "delivery-5s");
        assert!(matches!(
            &s.injects[0].action,
            InjectAction::Indicators { count: 20, types, tlp: Tlp::Amber } if types == &WAVE_TYPES_DEFAULT
        ));
    }

    #[test]
    fn bad_values_name_line_table_and_field() {
        reject(
            &extra(
                "name = \"wave-2\"\nat = \"10s\"\nkind = \"indicators\"\nfrom = \"lv\"\ncount = 5\ntypes = [\"ipv4\", \"ipv5\"]",
            ),
            &[
                "line 29, inject \"wave-2\", field \"types\": \"ipv5\" is not an indicator type; use one of ipv4, ipv6, cidr, domain, url, email, md5, sha1, sha256, filename, cve",
            ],
        );
        reject(&edit(14, "cont = 20"), &["line 14, inject \"wave-1\", field \"cont\"", "did you mean \"count\"?"]);
        reject(
            &edit(21, "within = \"60s\"\ncount = 3"),
            &["line 22, inject \"sit\", field \"count\"", "a situation inject has no count; remove it"],
        );
        reject(
            &extra("name = \"s1\"\nat = \"10s\"\nkind = \"sighting\"\nfrom = \"lt\"\nof = \"wave-9\""),
            &["line 28, inject \"s1\", field \"of\"", "no inject \"wave-9\"", "wave-1"],
        );
        reject(
            &extra(
                "name = \"r1\"\nat = \"10s\"\nkind = \"retraction\"\nfrom = \"lv\"\nof = \"wave-1\"\nreason = \"fp\"",
            ),
            &["line 27, inject \"r1\", field \"from\"", "only a wave's own source", "from = \"ee\""],
        );
        reject(
            &extra("name = \"iso\"\nat = \"10s\"\nkind = \"isolate\"\nnode = \"pl\"\nduration = \"5s\""),
            &["line 27, inject \"iso\", field \"node\"", "\"pl\" is not a participant; use one of ee, lt, lv"],
        );
        reject(
            &edit(17, "name = \"wave-1\""),
            &["line 17, inject \"wave-1\", field \"name\"", "already the name of the inject at line 9"],
        );
        reject(
            &edit(7, "within = \"5 parsecs\""),
            &["line 7, objective #1, field \"within\"", "is not a duration", "\"1m30s\""],
        );
        reject(&edit(11, "at = -5"), &["line 11, inject \"wave-1\", field \"at\"", "negative"]);
        reject(&edit(21, "within = \"0s\""), &["line 21, inject \"sit\", field \"within\"", "more than zero"]);
        reject(
            &edit(14, "count = 20\ntlp = \"red\""),
            &["line 15, inject \"wave-1\", field \"tlp\"", "red is refused", "amber"],
        );
        reject(
            &edit(3, "participants = [\"ee\", \"lv\", \"ee\"]"),
            &["line 3, [drill], field \"participants\"", "\"ee\" is listed twice"],
        );
        reject(
            &edit(14, "count = \"20\""),
            &["line 14, inject \"wave-1\", field \"count\"", "invalid type", "count = 20"],
        );
        reject(&edit(14, "count = 0"), &["line 14, inject \"wave-1\", field \"count\"", "from 1 to 10000"]);
        reject(&edit(13, ""), &["line 9, inject \"wave-1\", field \"from\"", "needs its source node", "from = \"ee\""]);
        reject(
            &edit(12, "kind = \"indicator\""),
            &["line 12, inject \"wave-1\", field \"kind\"", "use one of indicators, sighting"],
        );
        reject(
            &edit(6, "kind = \"relay\""),
            &["line 6, objective #1, field \"kind\"", "needs an isolate or cut_link inject"],
        );
        reject(
            &edit(11, "at = \"25h\""),
            &["line 11, inject \"wave-1\", field \"at\"", "longer than a drill may last (24h)"],
        );
        reject(
            &extra("name = \"cut\"\nat = \"1s\"\nkind = \"cut_link\"\nlink = [\"ee\", \"ee\"]\nduration = 5"),
            &["line 27, inject \"cut\", field \"link\"", "two different participants"],
        );
        reject(
            &extra("name = \"cut\"\nat = \"1s\"\nkind = \"cut_link\"\nlink = [\"ee\", \"lv\"]"),
            &["line 23, inject \"cut\", field \"duration\"", "a cut_link inject needs it; add e.g. duration = \"20s\""],
        );
        reject(&edit(2, "name = \"Ransomware\""), &["line 2, [drill], field \"name\"", "a-z, 0-9 and -"]);
        reject(&edit(20, "text = \"  \""), &["line 20, inject \"sit\", field \"text\"", "is empty"]);
        reject(&edit(21, "within = \"60s\"\nwithin = \"30s\""), &["line 22", "field \"within\"", "given twice"]);
    }

    #[test]
    fn timeline_errors_name_the_referring_inject() {
        let text = extra(
            "name = \"early\"\nat = \"0s\"\nkind = \"sighting\"\nfrom = \"lt\"\nof = \"late\"\n\n[[inject]]\nname = \"late\"\nat = \"10s\"\nkind = \"indicators\"\nfrom = \"lv\"\ncount = 1",
        );
        reject(&text, &["line 28, inject \"early\", field \"of\"", "\"late\" comes at 10s, after this sighting at 0s"]);
        reject(
            &extra("name = \"s\"\nat = \"9s\"\nkind = \"sighting\"\nfrom = \"lt\"\nof = \"sit\""),
            &["field \"of\"", "\"sit\" is a situation inject; name an indicators inject: wave-1"],
        );
    }

    #[test]
    fn structural_errors_say_what_to_write() {
        reject("", &["line 1, field \"drill\"", "the [drill] table is missing"]);
        reject(
            &BASE.replace("[drill]", "[drills]"),
            &["line 1, field \"drills\"", "did you mean \"drill\"?", "[[inject]]"],
        );
        reject(
            &edit(10, "name = wave-1"),
            &["line 10, inject", "field \"name\"", "must be quoted", "name = \"wave-1\""],
        );
        reject(&edit(16, "[[inject]"), &["line 16, column 10: unclosed array table", "check the TOML syntax"]);
        reject(&BASE[..BASE.find("[[inject]]").unwrap()], &["line 1, [drill], field \"inject\"", "no inject"]);
        reject(&edit(3, "participants = [\"ee\", 3]"), &["line 3, [drill], field \"participants\"", "invalid type"]);
        reject(&edit(7, "within = 1.5"), &["line 7, objective #1, field \"within\"", "a duration such as \"5s\""]);
    }

    #[test]
    fn a_scenario_must_fit_in_its_start_record() {
        let mut text = BASE.to_string();
        let long = "x".repeat(2000);
        for i in 0..20 {
            text += &format!(
                "\n[[inject]]\nname = \"c{i}\"\nat = \"1s\"\nkind = \"comm_check\"\ntext = \"{long}\"\nwithin = 5\n"
            );
        }
        reject(&text, &["start record", "over the limit of 16320", "shorten"]);
    }

    #[test]
    fn injects_are_sorted_by_time_keeping_file_order_on_ties() {
        let mut text = "[drill]\nname = \"order\"\nparticipants = [\"ee\"]\n".to_string();
        for (name, at) in [("a", "10s"), ("b", "0s"), ("c", "10s"), ("d", "5s"), ("e", "0s"), ("f", "10000ms")] {
            text += &format!(
                "\n[[inject]]\nname = \"{name}\"\nat = \"{at}\"\nkind = \"indicators\"\nfrom = \"ee\"\ncount = 1\n"
            );
        }
        let s = parse(&text).unwrap();
        let names: Vec<&str> = s.injects.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["b", "e", "d", "a", "c", "f"]);
        s.validate().unwrap();
    }

    #[test]
    fn durations_parse() {
        for (text, ms) in [
            ("500ms", 500),
            ("5s", 5_000),
            ("2m", 120_000),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            ("1h2m3s4ms", 3_723_004),
            ("1.5s", 1_500),
            ("0.25s", 250),
            ("1.5m", 90_000),
            (" 0s ", 0),
        ] {
            assert_eq!(parse_duration(text), Ok(ms), "{text}");
        }
        for (text, why) in [
            ("", "not a duration"),
            ("5", "has no unit: write \"5s\""),
            ("-5s", "negative"),
            ("5 s", "not a duration"),
            ("5sec", "\"sec\" is not a unit"),
            ("30s1m", "largest first"),
            ("1s1s", "largest first"),
            ("1.0001s", "finer than a millisecond"),
            ("1.s", "not a duration"),
            (".5s", "not a duration"),
            ("5s!", "not a duration"),
            ("99999999999999h", "too long"),
        ] {
            let e = parse_duration(text).expect_err(text);
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn durations_format_and_read_back() {
        for (ms, text) in [
            (0, "0s"),
            (250, "250ms"),
            (1_500, "1.5s"),
            (5_000, "5s"),
            (60_000, "1m"),
            (90_000, "1m30s"),
            (61_250, "1m1.25s"),
            (3_600_000, "1h"),
            (86_400_000, "24h"),
        ] {
            assert_eq!(format_duration(ms), text);
        }
        let mut ms = 0u64;
        while ms < 2 * DRILL_MS_MAX {
            assert_eq!(parse_duration(&format_duration(ms)), Ok(ms), "{}", format_duration(ms));
            ms = ms * 3 / 2 + 7;
        }
        for ms in (0..5_000).chain(59_990..60_010) {
            assert_eq!(parse_duration(&format_duration(ms)), Ok(ms));
        }
    }

    #[test]
    fn integer_durations_are_seconds() {
        let s = parse(&edit(11, "at = 30")).unwrap();
        assert_eq!(s.inject("wave-1").unwrap().at_ms, 30_000);
    }

    #[test]
    fn roster_check_names_unknown_and_known_members() {
        let s = parse(BASE).unwrap();
        let n = |x: &str| NodeName::new(x).unwrap();
        assert_eq!(check_roster(&s, &[n("lv"), n("lt"), n("ee"), n("pl")]), Ok(()));
        let e = check_roster(&s, &[n("pl"), n("ee")]).unwrap_err();
        assert!(e.contains("lt, lv are not in the roster, which lists ee, pl"), "{e}");
    }

    #[test]
    fn load_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let e = load(&missing).unwrap_err();
        assert!(e.to_string().starts_with(&format!("{}: cannot open", missing.display())), "{e}");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, edit(12, "kind = \"wave\"")).unwrap();
        let e = load(&bad).unwrap_err();
        assert_eq!((e.line(), e.field(), e.path()), (Some(12), Some("kind"), Some(bad.as_path())));
        assert!(
            e.to_string().starts_with(&format!("{}: line 12, inject \"wave-1\", field \"kind\": ", bad.display())),
            "{e}"
        );
    }
}
