//! Per-type validation and normalisation of indicator values.
//!
//! Two spellings of one IOC (`EXAMPLE.com.` and `example.com`) must give one normal form, because
//! the content id is a hash of it. Every rule here is therefore also a canonicalisation rule, and
//! normalising a normal form returns it unchanged.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{IndicatorType, ModelError, VALUE_BYTES_MAX};

/// Longest input (after trimming) that is parsed at all. A work limit: the normal form is capped
/// at `VALUE_BYTES_MAX`, and real inputs do not shrink to a quarter of their size when normalised.
const INPUT_BYTES_MAX: usize = 4 * VALUE_BYTES_MAX;
/// Longest domain name in text form, without the trailing dot (RFC 1035 §2.3.4).
const DOMAIN_BYTES_MAX: usize = 253;
/// Longest label of a domain name (RFC 1035 §2.3.4).
const LABEL_BYTES_MAX: usize = 63;
/// Longest local part of an e-mail address (RFC 5321 §4.5.3.1.1).
const EMAIL_LOCAL_BYTES_MAX: usize = 64;
/// Longest file name on the common file systems (ext4, NTFS in UTF-16 units, APFS).
const FILENAME_BYTES_MAX: usize = 255;
/// How much of a rejected input an error message quotes.
const QUOTE_CHARS_MAX: usize = 64;

const _: () = assert!(DOMAIN_BYTES_MAX <= VALUE_BYTES_MAX && FILENAME_BYTES_MAX <= VALUE_BYTES_MAX);

/// URL schemes an indicator may carry: those of servers that deliver or receive something.
const URL_SCHEMES: [&str; 4] = ["http", "https", "ftp", "ftps"];

/// Validates `raw` as a value of type `itype` and returns its normal form, or an error naming
/// the `value` field and saying what is wrong.
///
/// Surrounding whitespace is ignored. The normal form of each type:
/// - `ipv4`: dotted decimal without leading zeros (`203.0.113.7`);
/// - `ipv6`: RFC 5952 text (`2001:db8::1`), without brackets or zone id;
/// - `cidr`: network address and prefix length, host bits cleared (`10.0.0.0/8`);
/// - `domain`: lower-case A-labels without the trailing dot (`xn--bcher-kva.example`);
/// - `url`: the WHATWG serialisation of the `url` crate, without fragment (see `normalize_url`);
/// - `email`: the local part as given, `@`, the domain as for `domain`;
/// - `md5`, `sha1`, `sha256`: lower-case hex;
/// - `filename`: as given (file systems differ on case);
/// - `cve`: `CVE-2021-44228`.
pub fn normalize_value(itype: IndicatorType, raw: &str) -> Result<String, ModelError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(invalid(format!("missing: give the {itype} value, e.g. {}", example(itype))));
    }
    if s.len() > INPUT_BYTES_MAX {
        return Err(invalid(format!("{} bytes is far too long for type {itype}: at most {VALUE_BYTES_MAX}", s.len())));
    }
    let normal = match itype {
        IndicatorType::Ipv4 => normalize_ipv4(s).map(|a| a.to_string()),
        IndicatorType::Ipv6 => normalize_ipv6(s).map(|a| a.to_string()),
        IndicatorType::Cidr => normalize_cidr(s),
        IndicatorType::Domain => normalize_domain(s),
        IndicatorType::Url => normalize_url(s),
        IndicatorType::Email => normalize_email(s),
        IndicatorType::Md5 | IndicatorType::Sha1 | IndicatorType::Sha256 => normalize_hash(itype, s),
        IndicatorType::Filename => normalize_filename(s),
        IndicatorType::Cve => normalize_cve(s),
    }
    .map_err(invalid)?;
    if normal.len() > VALUE_BYTES_MAX {
        return Err(invalid(format!(
            "the normal form of this {itype} is {} bytes: at most {VALUE_BYTES_MAX}",
            normal.len()
        )));
    }
    Ok(normal)
}

fn invalid(reason: String) -> ModelError {
    ModelError::new("value", reason)
}

/// A valid value of each type, for error messages.
fn example(itype: IndicatorType) -> &'static str {
    match itype {
        IndicatorType::Ipv4 => "203.0.113.7",
        IndicatorType::Ipv6 => "2001:db8::7",
        IndicatorType::Cidr => "203.0.113.0/24 or 2001:db8::/32",
        IndicatorType::Domain => "example.com",
        IndicatorType::Url => "https://example.com/path",
        IndicatorType::Email => "phish@example.com",
        IndicatorType::Md5 => "d41d8cd98f00b204e9800998ecf8427e",
        IndicatorType::Sha1 => "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        IndicatorType::Sha256 => "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        IndicatorType::Filename => "invoice.pdf.exe",
        IndicatorType::Cve => "CVE-2021-44228",
    }
}

/// Quotes user input for an error message: escaped (no control characters reach a log) and
/// shortened (a 4 KiB input does not make a 4 KiB error).
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS_MAX) {
        None => format!("{s:?}"),
        Some((end, _)) => format!("{:?}…", &s[..end]),
    }
}

/// A hint for defanged indicators (`hxxp://`, `example[.]com`), which reports often contain.
/// They are not refanged silently: a mistyped value must not become a live indicator unseen.
fn defanged(s: &str) -> Option<&'static str> {
    let lower = s.to_ascii_lowercase();
    let fanged = ["[.]", "(.)", "{.}", "[dot]", "(dot)", "[:]", "[://]", "[@]", "(@)", "[at]"];
    let schemes = ["hxxp:", "hxxps:", "hxxp[", "hxxps[", "fxp:", "fxp["];
    if schemes.iter().any(|p| lower.starts_with(p)) || fanged.iter().any(|f| lower.contains(f)) {
        Some("it looks defanged: refang it first (hxxp → http, [.] → ., [at] → @)")
    } else {
        None
    }
}

/// Dotted decimal with exactly four octets. Stricter than what `inet_aton` accepts (`127.1`,
/// `0x7f.0.0.1`, `010.0.0.1`), because those forms mean different addresses to different tools.
fn normalize_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    const USE: &str = "use dotted decimal such as 203.0.113.7";
    let q = quote(s);
    if s.contains('/') {
        return Err(format!("{q} has a prefix length: use type cidr for networks, or drop the /…"));
    }
    if parse_ipv6_text(s).is_ok() {
        return Err(format!("{q} is an IPv6 address: use type ipv6"));
    }
    if let Some((addr, port)) = s.rsplit_once(':')
        && addr.parse::<Ipv4Addr>().is_ok()
    {
        return Err(format!("{q} has a port: an ipv4 indicator is the address alone ({addr}), without :{port}"));
    }
    if let Some(hint) = defanged(s) {
        return Err(format!("{q} is not an IPv4 address: {hint}"));
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return Err(format!("{q} is not an IPv4 address: it has {} parts, not 4; {USE}", parts.len()));
    }
    let mut octets = [0u8; 4];
    for (octet, part) in octets.iter_mut().zip(&parts) {
        if part.is_empty() {
            return Err(format!("{q} is not an IPv4 address: an octet is empty; {USE}"));
        }
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{q} is not an IPv4 address: octet {} is not a decimal number; {USE}", quote(part)));
        }
        if part.len() > 1 && part.starts_with('0') {
            return Err(format!(
                "{q} is not an IPv4 address: octet {part} has a leading zero, which some tools read as octal; {USE}"
            ));
        }
        *octet = match part.parse::<u8>() {
            Ok(v) => v,
            Err(_) => return Err(format!("{q} is not an IPv4 address: octet {part} is over 255; {USE}")),
        };
    }
    Ok(Ipv4Addr::from(octets))
}

/// Any text form std accepts, in optional brackets; zone ids are refused. The normal form is
/// std's `Display`, which follows RFC 5952 (and prints IPv4-mapped addresses as `::ffff:a.b.c.d`).
fn normalize_ipv6(s: &str) -> Result<Ipv6Addr, String> {
    let q = quote(s);
    if s.contains('/') {
        return Err(format!("{q} has a prefix length: use type cidr for networks, or drop the /…"));
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return Err(format!("{q} is an IPv4 address: use type ipv4"));
    }
    parse_ipv6_text(s).map_err(|why| format!("{q} is not an IPv6 address: {why}"))
}

/// Parses IPv6 text in optional brackets, explaining a failure (std's error says only "invalid").
fn parse_ipv6_text(s: &str) -> Result<Ipv6Addr, String> {
    const USE: &str = "use a form such as 2001:db8::7";
    let inner = match s.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']').ok_or_else(|| format!("'[' without a closing ']'; {USE}"))?,
        None => s,
    };
    if let Some((_, zone)) = inner.split_once('%') {
        return Err(format!(
            "it has a zone id (%{zone}), which names an interface on one host and means nothing elsewhere; drop the %… suffix"
        ));
    }
    if let Ok(a) = inner.parse::<Ipv6Addr>() {
        return Ok(a);
    }
    if !inner.contains(':') {
        return Err(format!("it has no ':'; {USE}"));
    }
    if let Some(c) = inner.chars().find(|c| !(c.is_ascii_hexdigit() || *c == ':' || *c == '.')) {
        return Err(format!("{c:?} is not a hex digit; {USE}"));
    }
    if inner.matches("::").count() > 1 {
        return Err(format!("'::' may appear only once; {USE}"));
    }
    if let Some(g) = inner.split(':').find(|g| g.len() > 4 && !g.contains('.')) {
        return Err(format!("group {g} has more than 4 hex digits; {USE}"));
    }
    Err(format!("wrong number of groups (8, or fewer with one '::'); {USE}"))
}

/// `addr/prefix` with the host bits cleared, so `10.1.2.3/8` and `10.0.0.0/8` are one indicator.
fn normalize_cidr(s: &str) -> Result<String, String> {
    let q = quote(s);
    let Some((addr, prefix)) = s.split_once('/') else {
        return Err(format!(
            "{q} has no prefix length: use type ipv4 or ipv6 for a single address, or add one such as /24"
        ));
    };
    let bad_prefix = |max: u32| {
        format!("{q} is not a network: the prefix length must be a number from 0 to {max}, as in 203.0.113.0/24")
    };
    let parse_prefix = |max: u32| -> Result<u32, String> {
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_prefix(max));
        }
        prefix.parse::<u32>().ok().filter(|&p| p <= max).ok_or_else(|| bad_prefix(max))
    };
    if addr.contains(':') {
        let a = parse_ipv6_text(addr).map_err(|why| format!("{q} is not a network: {why}"))?;
        let p = parse_prefix(128)?;
        let mask = u128::MAX.checked_shl(128 - p).unwrap_or(0);
        Ok(format!("{}/{p}", Ipv6Addr::from(a.to_bits() & mask)))
    } else {
        let a = normalize_ipv4(addr).map_err(|why| format!("{q} is not a network: {why}"))?;
        let p = parse_prefix(32)?;
        let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
        Ok(format!("{}/{p}", Ipv4Addr::from(a.to_bits() & mask)))
    }
}

/// A host name: IDNA (UTS #46, as browsers do it, through the `url` crate) to lower-case
/// A-labels, then the LDH rules of RFC 1035/5890 on the result; no trailing dot.
fn normalize_domain(s: &str) -> Result<String, String> {
    let q = quote(s);
    const USE: &str = "use a name such as example.com";
    if s.contains('*') {
        return Err(format!(
            "{q} is a wildcard: an indicator names one domain; give the parent domain (without *.) instead"
        ));
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return Err(format!("{q} is an IP address, not a domain: use type ipv4"));
    }
    if parse_ipv6_text(s).is_ok() {
        return Err(format!("{q} is an IP address, not a domain: use type ipv6"));
    }
    if let Some(hint) = defanged(s) {
        return Err(format!("{q} is not a domain name: {hint}"));
    }
    if s.contains('/') {
        return Err(format!("{q} is not a domain name: it has a scheme or path; use type url, or give the host alone"));
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control() || matches!(c, '%' | '@' | ':')) {
        return Err(format!("{q} is not a domain name: {c:?} may not appear in one; {USE}"));
    }
    let ascii = match url::Host::parse(s) {
        Ok(url::Host::Domain(d)) => d,
        Ok(url::Host::Ipv4(a)) => {
            return Err(format!("{q} is not a domain name: software reads it as the IPv4 address {a}; use type ipv4"));
        }
        Ok(url::Host::Ipv6(a)) => {
            return Err(format!("{q} is an IP address, not a domain: use type ipv6 ({a})"));
        }
        Err(url::ParseError::InvalidIpv4Address) => {
            return Err(format!("{q} is not a domain name: its last label is numeric, which no top-level domain is"));
        }
        Err(e) => return Err(format!("{q} is not a domain name: {e}; {USE}")),
    };
    let name = ascii.strip_suffix('.').unwrap_or(&ascii);
    check_ldh(name).map_err(|why| format!("{q} is not a domain name: {why}"))?;
    Ok(name.to_owned())
}

/// The length and character rules of a lower-case ASCII host name.
fn check_ldh(name: &str) -> Result<(), String> {
    if name.len() > DOMAIN_BYTES_MAX {
        return Err(format!("it is {} bytes long (as A-labels): at most {DOMAIN_BYTES_MAX}", name.len()));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(
            "a single label is not a public domain (local names differ by network); give the full name such as host.example.com"
                .into(),
        );
    }
    for label in labels {
        if label.is_empty() {
            return Err("it has an empty label (two dots in a row, or a leading dot)".into());
        }
        if label.len() > LABEL_BYTES_MAX {
            return Err(format!("label {} is {} bytes: at most {LABEL_BYTES_MAX}", quote(label), label.len()));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
            return Err(format!(
                "label {} has {c:?}: only letters, digits and '-' are allowed (international names are fine)",
                quote(label)
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {} starts or ends with '-'", quote(label)));
        }
    }
    Ok(())
}

/// A URL of a scheme in `URL_SCHEMES`, with a host. The normal form is the WHATWG serialisation
/// of the `url` crate (lower-case scheme and host, IDNA hosts, default port dropped, dot segments
/// resolved, percent-encoding as browsers do it) without the fragment, which never reaches a
/// server. `ftps` is not a WHATWG "special" scheme, so its host and default port (990) are
/// normalised here the way the crate does it for the other three.
fn normalize_url(s: &str) -> Result<String, String> {
    let q = quote(s);
    let schemes = URL_SCHEMES.join(", ");
    let refang = |why: String| match defanged(s) {
        Some(hint) => format!("{q} is not a URL: {hint}"),
        None => why,
    };
    let mut url = match url::Url::parse(s) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Err(refang(format!("{q} has no scheme: write the URL in full, e.g. https://example.com/path")));
        }
        Err(e) => {
            return Err(refang(format!("{q} is not a URL: {e}; write it in full, e.g. https://example.com/path")));
        }
    };
    if !URL_SCHEMES.contains(&url.scheme()) {
        let scheme = url.scheme();
        return Err(refang(format!(
            "{q} has the scheme {scheme:?}: use one of {schemes} (or type domain/ipv4 for a host)"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{q} has no host: write it as {}://example.com/path", url.scheme()));
    }
    if url.scheme() == "ftps" {
        normalize_opaque_host(&mut url).map_err(|why| format!("{q} is not a URL: {why}"))?;
    }
    url.set_fragment(None);
    Ok(url.into())
}

/// Brings the host and port of a non-special URL (`ftps`) to the form a special one would have.
fn normalize_opaque_host(url: &mut url::Url) -> Result<(), String> {
    if let Some(url::Host::Domain(opaque)) = url.host() {
        let host = match url::Host::parse(opaque).map_err(|e| format!("bad host: {e}"))? {
            url::Host::Domain(d) => d,
            url::Host::Ipv4(a) => a.to_string(),
            url::Host::Ipv6(a) => format!("[{a}]"),
        };
        url.set_host(Some(&host)).map_err(|e| format!("bad host: {e}"))?;
    }
    if url.port() == Some(990) {
        url.set_port(None).map_err(|()| "cannot drop the default port".to_owned())?;
    }
    Ok(())
}

/// `local@domain`: the domain as for type domain; the local part as given, since RFC 5321 leaves
/// its case to the receiving server.
fn normalize_email(s: &str) -> Result<String, String> {
    let q = quote(s);
    const USE: &str = "use local@domain such as phish@example.com";
    let (local, domain) = match s.split_once('@') {
        Some((l, d)) if !d.contains('@') => (l, d),
        Some(_) => return Err(format!("{q} is not an e-mail address: it has more than one '@'; {USE}")),
        None => match defanged(s) {
            Some(hint) => return Err(format!("{q} is not an e-mail address: {hint}")),
            None => return Err(format!("{q} is not an e-mail address: it has no '@'; {USE}")),
        },
    };
    if local.is_empty() || local.len() > EMAIL_LOCAL_BYTES_MAX {
        return Err(format!(
            "{q} is not an e-mail address: the part before '@' must be 1 to {EMAIL_LOCAL_BYTES_MAX} bytes; {USE}"
        ));
    }
    if let Some(c) = local.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{q} is not an e-mail address: {c:?} may not appear before '@'; {USE}"));
    }
    let domain = normalize_domain(domain).map_err(|why| format!("{q} is not an e-mail address: {why}"))?;
    Ok(format!("{local}@{domain}"))
}

/// Hex digests, lower-cased. A wrong length usually means the wrong type was picked, so the
/// error names the type whose length it is.
fn normalize_hash(itype: IndicatorType, s: &str) -> Result<String, String> {
    let q = quote(s);
    let want = hex_digits(itype);
    if let Some((i, c)) = s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "{q} is not {} hash: {c:?} at byte {i} is not a hex digit; give {want} hex digits such as {}",
            a_hash(itype),
            example(itype)
        ));
    }
    if s.len() != want {
        let fits = [IndicatorType::Md5, IndicatorType::Sha1, IndicatorType::Sha256]
            .into_iter()
            .find(|&t| hex_digits(t) == s.len())
            .map(|t| format!(": that is {}, not {}", a_hash(t), a_hash(itype)))
            .unwrap_or_default();
        return Err(format!("{q} is {} hex digits{fits}; {} hash is {want} hex digits", s.len(), a_hash(itype)));
    }
    Ok(s.to_ascii_lowercase())
}

fn hex_digits(hash: IndicatorType) -> usize {
    match hash {
        IndicatorType::Md5 => 32,
        IndicatorType::Sha1 => 40,
        _ => 64,
    }
}

/// The hash type with its article, as read aloud ("an md5", "a sha256").
fn a_hash(hash: IndicatorType) -> String {
    match hash {
        IndicatorType::Md5 => "an md5".into(),
        t => format!("a {t}"),
    }
}

/// A bare file name as given (case matters on some file systems and not on others, so it is
/// kept; matching case-insensitively is the consumer's choice).
fn normalize_filename(s: &str) -> Result<String, String> {
    let q = quote(s);
    if s.contains(['/', '\\']) {
        return Err(format!("{q} is a path: give the bare file name (the part after the last / or \\)"));
    }
    if s == "." || s == ".." {
        return Err(format!(
            "{q} is not a file name: give the name of a file such as {}",
            example(IndicatorType::Filename)
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{q} contains NUL or control characters, which no file name may hold"));
    }
    if s.len() > FILENAME_BYTES_MAX {
        return Err(format!("{q} is {} bytes: a file name is at most {FILENAME_BYTES_MAX}", s.len()));
    }
    Ok(s.to_owned())
}

/// `CVE-YYYY-NNNN…`, upper-case prefix. Sequence numbers are 4 digits with leading zeros, or
/// more digits without (the CVE id syntax of 2014), so each id has one spelling.
fn normalize_cve(s: &str) -> Result<String, String> {
    let q = quote(s);
    const USE: &str = "use CVE-YYYY-NNNN such as CVE-2021-44228";
    let rest = match s.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("cve-") => &s[4..],
        _ => return Err(format!("{q} is not a CVE id: it must start with CVE-; {USE}")),
    };
    let Some((year, seq)) = rest.split_once('-') else {
        return Err(format!("{q} is not a CVE id: {USE}"));
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if year.len() != 4 || !all_digits(year) {
        return Err(format!("{q} is not a CVE id: the year must be 4 digits; {USE}"));
    }
    if year < "1999" {
        return Err(format!("{q} is not a CVE id: CVE ids start in 1999; {USE}"));
    }
    if seq.len() < 4 || !all_digits(seq) {
        return Err(format!("{q} is not a CVE id: the sequence number must be 4 or more digits; {USE}"));
    }
    if seq.len() > 4 && seq.starts_with('0') {
        return Err(format!(
            "{q} is not a CVE id: sequence numbers over 4 digits have no leading zeros (write CVE-{year}-{})",
            format_args!("{:0>4}", seq.trim_start_matches('0'))
        ));
    }
    Ok(format!("CVE-{year}-{seq}"))
}
