//! Indicator values and submissions: normal forms, rejections with useful reasons, times.

use ctix::model::time::{format_time, parse_time};
use ctix::model::{Indicator, IndicatorInput, IndicatorType, Tlp, content_id, normalize_value};
use proptest::prelude::*;

use crate::support::T0;

/// Asserts that `input` of type `itype` normalises to `expected`, and that the normal form is a
/// fixed point.
#[track_caller]
fn check(itype: &str, input: &str, expected: &str) {
    let t: IndicatorType = itype.parse().unwrap();
    match normalize_value(t, input) {
        Ok(got) => {
            assert_eq!(got, expected, "{itype} {input:?}");
            assert_eq!(normalize_value(t, &got).as_deref(), Ok(expected), "{itype} {input:?}: not a fixed point");
        }
        Err(e) => panic!("{itype} {input:?} rejected: {e}"),
    }
}

/// Asserts that `input` of type `itype` is rejected, blaming `value`, with `phrase` in the reason.
#[track_caller]
fn reject(itype: &str, input: &str, phrase: &str) {
    let t: IndicatorType = itype.parse().unwrap();
    match normalize_value(t, input) {
        Ok(got) => panic!("{itype} {input:?} accepted as {got:?}; expected an error with {phrase:?}"),
        Err(e) => {
            assert_eq!(e.field, "value", "{itype} {input:?}: {e}");
            assert!(e.reason.contains(phrase), "{itype} {input:?}: reason {:?} lacks {phrase:?}", e.reason);
        }
    }
}

#[test]
fn ipv4() {
    check("ipv4", "203.0.113.7", "203.0.113.7");
    check("ipv4", "  198.51.100.1\n", "198.51.100.1");
    check("ipv4", "0.0.0.0", "0.0.0.0");
    check("ipv4", "255.255.255.255", "255.255.255.255");

    reject("ipv4", "300.1.2.3", "octet 300 is over 255");
    reject("ipv4", "300.1.2.3", "use dotted decimal such as 203.0.113.7");
    reject("ipv4", "99999999999999999999.1.2.3", "is over 255");
    reject("ipv4", "010.0.0.1", "leading zero");
    reject("ipv4", "010.0.0.1", "octal");
    reject("ipv4", "10.0.0.0/8", "use type cidr");
    reject("ipv4", "127.1", "it has 2 parts, not 4");
    reject("ipv4", "1.2.3.4.5", "5 parts");
    reject("ipv4", "0x7f.0.0.1", "not a decimal number");
    reject("ipv4", "1..2.3", "an octet is empty");
    reject("ipv4", "+1.2.3.4", "not a decimal number");
    reject("ipv4", "192.0.2.1:443", "has a port");
    reject("ipv4", "2001:db8::1", "use type ipv6");
    reject("ipv4", "192.0.2[.]1", "defanged");
    reject("ipv4", "", "missing");
    reject("ipv4", "   ", "missing");
    reject("ipv4", "١.٢.٣.٤", "not a decimal number");
}

#[test]
fn ipv6() {
    check("ipv6", "2001:DB8:0:0:0:0:0:1", "2001:db8::1");
    check("ipv6", "2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:db8::ff00:42:8329");
    check("ipv6", "[::1]", "::1");
    check("ipv6", "::", "::");
    check("ipv6", "::ffff:192.0.2.1", "::ffff:192.0.2.1");
    check("ipv6", "::FFFF:C000:0201", "::ffff:192.0.2.1");
    check("ipv6", "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1");
    // RFC 5952 §4.2.3: the longest run of zeros is compressed, the first of equal runs.
    check("ipv6", "2001:0:0:1:0:0:0:1", "2001:0:0:1::1");
    check("ipv6", "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1");
    check("ipv6", "FE80::1", "fe80::1");

    reject("ipv6", "fe80::1%eth0", "zone id");
    reject("ipv6", "[fe80::1%25eth0]", "zone id");
    reject("ipv6", "2001:db8::/32", "use type cidr");
    reject("ipv6", "192.0.2.1", "use type ipv4");
    reject("ipv6", "2001:db8::1::2", "'::' may appear only once");
    reject("ipv6", "2001:db8:12345::1", "more than 4 hex digits");
    reject("ipv6", "2001:db8::g", "not a hex digit");
    reject("ipv6", "1:2:3:4:5:6:7", "wrong number of groups");
    reject("ipv6", "[::1", "closing ']'");
    reject("ipv6", "example.com", "no ':'");
}

#[test]
fn cidr() {
    check("cidr", "10.1.2.3/8", "10.0.0.0/8");
    check("cidr", "203.0.113.77/24", "203.0.113.0/24");
    check("cidr", "203.0.113.77/32", "203.0.113.77/32");
    check("cidr", "203.0.113.77/0", "0.0.0.0/0");
    check("cidr", "192.168.255.255/17", "192.168.128.0/17");
    check("cidr", "2001:DB8:AB:CD::1/32", "2001:db8::/32");
    check("cidr", "[2001:db8::1]/64", "2001:db8::/64");
    check("cidr", "2001:db8::1/128", "2001:db8::1/128");
    check("cidr", "::1/0", "::/0");
    check("cidr", "10.0.0.0/08", "10.0.0.0/8");

    reject("cidr", "10.0.0.1", "no prefix length");
    reject("cidr", "10.0.0.1", "use type ipv4 or ipv6");
    reject("cidr", "10.0.0.0/33", "0 to 32");
    reject("cidr", "2001:db8::/129", "0 to 128");
    reject("cidr", "10.0.0.0/", "prefix length must be a number");
    reject("cidr", "10.0.0.0/-1", "prefix length must be a number");
    reject("cidr", "10.0.0.0/8/8", "prefix length must be a number");
    reject("cidr", "010.0.0.0/8", "leading zero");
    reject("cidr", "300.0.0.0/8", "over 255");
    reject("cidr", "fe80::%eth0/64", "zone id");
}

#[test]
fn domain() {
    check("domain", "example.com", "example.com");
    check("domain", "EXAMPLE.com.", "example.com");
    check("domain", "Bücher.example", "xn--bcher-kva.example");
    check("domain", "xn--bcher-kva.example", "xn--bcher-kva.example");
    check("domain", "XN--BCHER-KVA.example", "xn--bcher-kva.example");
    check("domain", "münchen.de", "xn--mnchen-3ya.de");
    check("domain", "пример.рф", "xn--e1afmkfd.xn--p1ai");
    check("domain", "例え.テスト", "xn--r8jz45g.xn--zckzah");
    // UTS #46 maps full-width letters and the ideographic full stop, as browsers do.
    check("domain", "ｅｘａｍｐｌｅ。com", "example.com");
    check("domain", "r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com");
    check("domain", "a.b.c.d.e.example.co.uk", "a.b.c.d.e.example.co.uk");
    check("domain", "123.example", "123.example");
    let longest = format!("{}com", "abcdefghi.".repeat(25));
    assert_eq!(longest.len(), 253);
    check("domain", &longest, &longest);
    check("domain", &format!("{}.com", "a".repeat(63)), &format!("{}.com", "a".repeat(63)));

    reject("domain", "localhost", "single label");
    reject("domain", "*.example.com", "wildcard");
    reject("domain", "192.0.2.1", "use type ipv4");
    reject("domain", "2001:db8::1", "use type ipv6");
    reject("domain", "0x7f.1", "reads it as the IPv4 address 127.0.0.1");
    reject("domain", "example.123", "last label is numeric");
    reject("domain", "example..com", "empty label");
    reject("domain", ".example.com", "empty label");
    reject("domain", "example.com..", "empty label");
    reject("domain", &format!("{}.com", "a".repeat(64)), "at most 63");
    reject("domain", &format!("{}com", "abcdefghi.".repeat(26)), "at most 253");
    reject("domain", "exa_mple.com", "only letters, digits and '-'");
    reject("domain", "-example.com", "starts or ends with '-'");
    reject("domain", "example-.com", "starts or ends with '-'");
    reject("domain", "https://example.com/", "use type url");
    reject("domain", "example.com/path", "use type url");
    reject("domain", "exa mple.com", "may not appear");
    reject("domain", "ex%41mple.com", "may not appear");
    reject("domain", "user@example.com", "may not appear");
    reject("domain", "example.com:443", "may not appear");
    reject("domain", "example[.]com", "defanged");
    reject("domain", "xn--zz.example", "invalid international domain name");
}

#[test]
fn url() {
    check("url", "HTTP://Example.COM:80/a?b=1#frag", "http://example.com/a?b=1");
    check("url", "https://example.com", "https://example.com/");
    check("url", "https://example.com:443/", "https://example.com/");
    check("url", "https://example.com:8443/x", "https://example.com:8443/x");
    check("url", "https://Bücher.example/Pfad", "https://xn--bcher-kva.example/Pfad");
    check("url", "http://example.com/a/../b/./c", "http://example.com/b/c");
    check("url", "http://example.com/a b?q=x y", "http://example.com/a%20b?q=x%20y");
    check("url", "http://example.com/Case/Kept?Q=V", "http://example.com/Case/Kept?Q=V");
    check("url", "http://user:pw@example.com/", "http://user:pw@example.com/");
    check("url", "http://[2001:DB8::1]:8080/x", "http://[2001:db8::1]:8080/x");
    check("url", "http://0x7f.1/", "http://127.0.0.1/");
    check("url", "ftp://files.example.com:21/pub/x.exe", "ftp://files.example.com/pub/x.exe");
    check("url", "FTPS://Files.EXAMPLE.com:990/x#y", "ftps://files.example.com/x");
    check("url", "ftps://Bücher.example:2990/x", "ftps://xn--bcher-kva.example:2990/x");
    check("url", "ftps://[2001:DB8::1]/x", "ftps://[2001:db8::1]/x");

    reject("url", "javascript:alert(1)", "use one of http, https, ftp, ftps");
    reject("url", "file:///etc/passwd", "use one of http, https, ftp, ftps");
    reject("url", "mailto:a@example.com", "scheme");
    reject("url", "example.com/path", "has no scheme");
    reject("url", "hxxp://example[.]com/x", "defanged");
    reject("url", "http://exa mple.com/", "is not a URL");
    reject("url", "http://", "is not a URL");
    reject("url", "ftps:///x", "has no host");
    reject("url", "ftps:x", "has no host");
    reject("url", &format!("https://example.com/{}", "a".repeat(3000)), "at most 2048");
    reject("url", &format!("https://example.com/{}", "a".repeat(10_000)), "far too long");
}

#[test]
fn email() {
    check("email", "Phish@EXAMPLE.com", "Phish@example.com");
    check("email", "ceo.office+urgent@Bücher.example.", "ceo.office+urgent@xn--bcher-kva.example");
    check("email", &format!("{}@example.com", "a".repeat(64)), &format!("{}@example.com", "a".repeat(64)));

    reject("email", "phish.example.com", "no '@'");
    reject("email", "phish[at]example.com", "defanged");
    reject("email", "a@b@example.com", "more than one '@'");
    reject("email", "@example.com", "1 to 64 bytes");
    reject("email", &format!("{}@example.com", "a".repeat(65)), "1 to 64 bytes");
    reject("email", "phi sh@example.com", "may not appear before '@'");
    reject("email", "phish@localhost", "single label");
    reject("email", "phish@[192.0.2.1]", "is not an e-mail address");
    reject("email", "phish@", "is not an e-mail address");
}

#[test]
fn hashes() {
    let md5 = "D41D8CD98F00B204E9800998ECF8427E";
    let sha1 = "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709";
    let sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    check("md5", md5, &md5.to_lowercase());
    check("sha1", sha1, &sha1.to_lowercase());
    check("sha256", sha256, &sha256.to_lowercase());
    check("sha256", &format!(" {sha256}\t"), &sha256.to_lowercase());

    reject("md5", sha256, "64 hex digits: that is a sha256, not an md5");
    reject("md5", sha1, "that is a sha1, not an md5");
    reject("sha1", md5, "that is an md5, not a sha1");
    reject("sha256", md5, "an md5, not a sha256");
    reject("sha256", &sha256[1..], "63 hex digits; a sha256 hash is 64 hex digits");
    reject("md5", &md5.replace('D', "G"), "'G' at byte 0 is not a hex digit");
    reject("sha1", &format!("0x{}", &sha1[2..]), "'x' at byte 1 is not a hex digit");
    reject("sha256", &format!("sha256:{sha256}"), "is not a hex digit");
}

#[test]
fn filename() {
    check("filename", "Invoice.PDF.exe", "Invoice.PDF.exe");
    check("filename", " setup (1).msi ", "setup (1).msi");
    check("filename", "отчёт.docm", "отчёт.docm");
    check("filename", ".bashrc", ".bashrc");
    check("filename", &"x".repeat(255), &"x".repeat(255));

    reject("filename", "C:\\Users\\x\\evil.exe", "is a path");
    reject("filename", "/tmp/evil.sh", "is a path");
    reject("filename", ".", "is not a file name");
    reject("filename", "..", "is not a file name");
    reject("filename", "a\0b", "control characters");
    reject("filename", "a\u{1b}[31mb", "control characters");
    reject("filename", &"x".repeat(256), "at most 255");
    reject("filename", &"ё".repeat(128), "at most 255");
}

#[test]
fn cve() {
    check("cve", "CVE-2021-44228", "CVE-2021-44228");
    check("cve", "cve-2021-44228", "CVE-2021-44228");
    check("cve", "Cve-1999-0001", "CVE-1999-0001");
    check("cve", "CVE-2024-1234567", "CVE-2024-1234567");

    reject("cve", "CVE-1998-0001", "start in 1999");
    reject("cve", "CVE-2021-123", "4 or more digits");
    reject("cve", "CVE-21-44228", "year must be 4 digits");
    reject("cve", "2021-44228", "must start with CVE-");
    reject("cve", "CVE 2021 44228", "must start with CVE-");
    reject("cve", "CVE-2021-44228a", "4 or more digits");
    reject("cve", "CVE‑2021‑44228", "must start with CVE-");
    reject("cve", "CVE-2021", "CVE-YYYY-NNNN");
    reject("cve", "CVE-2021-044228", "write CVE-2021-44228");
}

#[test]
fn every_type_rejects_empty_and_oversized_input() {
    for t in IndicatorType::ALL {
        let e = normalize_value(t, " \t").unwrap_err();
        assert_eq!(e.field, "value");
        assert!(e.reason.contains("missing"), "{t}: {}", e.reason);
        let e = normalize_value(t, &"a".repeat(1 << 20)).unwrap_err();
        assert!(e.reason.contains("at most 2048"), "{t}: {}", e.reason);
        assert!(e.to_string().len() < 300, "{t}: an error quotes a whole megabyte");
    }
}

#[test]
fn times() {
    let check_time = |s: &str, ms: u64| assert_eq!(parse_time(s, T0), Ok(ms), "{s:?}");
    check_time("2026-11-28T12:00:00Z", T0);
    check_time("2026-11-28t12:00:00z", T0);
    check_time("2026-11-28 12:00:00Z", T0);
    check_time("2026-11-28T14:00:00+02:00", T0);
    check_time("2026-11-28T07:30:00-04:30", T0);
    check_time("2026-11-28T12:00:00.1239Z", T0 + 123);
    check_time("2026-11-28T12:00:00.5+00:00", T0 + 500);
    check_time("2026-11-28", T0 - 12 * 3_600_000);
    check_time(" 1970-01-01 ", 0);
    check_time("90s", T0 + 90_000);
    check_time("15m", T0 + 15 * 60_000);
    check_time("12h", T0 + 12 * 3_600_000);
    check_time("+30d", T0 + 30 * 86_400_000);
    check_time("2w", T0 + 14 * 86_400_000);
    check_time("0s", T0);

    let reject_time = |s: &str, phrase: &str| match parse_time(s, T0) {
        Ok(ms) => panic!("{s:?} accepted as {ms}"),
        Err(e) => assert!(e.contains(phrase), "{s:?}: {e:?} lacks {phrase:?}"),
    };
    check_time("-30d", T0 - 30 * 86_400_000);
    reject_time("yesterday", "a duration from now (90s, 15m, 12h, 30d, 2w; -24h for 24 hours ago)");
    reject_time("", "RFC 3339");
    reject_time("30", "RFC 3339");
    reject_time("30y", "RFC 3339");
    reject_time("-30x", "RFC 3339");
    reject_time("-99999d", "before 1970");
    reject_time("d", "RFC 3339");
    reject_time("2026-11-28T12:00:00", "RFC 3339");
    reject_time("2026-13-01T00:00:00Z", "not an RFC 3339 time (month");
    reject_time("2026-02-30", "not a calendar date");
    reject_time("1969-12-31T23:59:59.999Z", "before 1970");
    reject_time("1969-12-31", "before 1970");
    reject_time("9999-12-31T23:59:59-00:01", "after the year 9999");
    reject_time("9999999999w", "after the year 9999");
    reject_time("99999999999999999999999w", "after the year 9999");

    assert_eq!(format_time(T0), "2026-11-28T12:00:00.000Z");
    assert_eq!(format_time(T0 + 7), "2026-11-28T12:00:00.007Z");
    assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(format_time(u64::MAX), format!("{}ms", u64::MAX));
}

fn input(itype: &str, value: &str) -> IndicatorInput {
    IndicatorInput { itype: itype.into(), value: value.into(), ..Default::default() }
}

#[track_caller]
fn reject_input(input: &IndicatorInput, field: &str, phrase: &str) {
    match Indicator::from_input(input, T0) {
        Ok(ind) => panic!("accepted: {ind:?}"),
        Err(e) => {
            assert_eq!(e.field, field, "{e}");
            assert!(e.reason.contains(phrase), "{e} lacks {phrase:?}");
        }
    }
}

#[test]
fn from_input_defaults_and_normalisation() {
    let ind = Indicator::from_input(
        &IndicatorInput {
            tags: vec!["Phishing ".into(), "phishing".into(), "APT28".into()],
            techniques: vec!["t1566.001".into(), "Delivery".into(), "T1566.001".into()],
            description: "  lure  ".into(),
            ..input("domain", " Bücher.EXAMPLE. ")
        },
        T0,
    )
    .unwrap();
    assert_eq!(ind.itype, IndicatorType::Domain);
    assert_eq!(ind.value, "xn--bcher-kva.example");
    assert_eq!(ind.tlp, Tlp::Amber);
    assert_eq!(ind.confidence, 50);
    assert_eq!(ind.valid_from_ms, T0);
    assert_eq!(ind.valid_until_ms, None);
    assert!(ind.recipients.is_empty());
    assert_eq!(ind.tags, ["apt28", "phishing"]);
    assert_eq!(ind.techniques, ["T1566.001", "delivery"]);
    assert_eq!(ind.description, "lure");
    assert_eq!(ind.content_id(), content_id(IndicatorType::Domain, "xn--bcher-kva.example"));
    ind.validate().unwrap();

    let red = Indicator::from_input(
        &IndicatorInput {
            tlp: "TLP:RED".into(),
            recipients: vec!["lv".into(), " lt".into(), "lv".into()],
            confidence: Some(100),
            valid_from: Some("2026-11-28".into()),
            valid_until: Some("30d".into()),
            ..input("ipv4", "203.0.113.7")
        },
        T0,
    )
    .unwrap();
    assert_eq!(red.tlp, Tlp::Red);
    assert_eq!(red.recipients.iter().map(|n| n.as_str()).collect::<Vec<_>>(), ["lt", "lv"]);
    assert_eq!(red.confidence, 100);
    assert_eq!(red.valid_from_ms, T0 - 12 * 3_600_000);
    assert_eq!(red.valid_until_ms, Some(T0 + 30 * 86_400_000));
}

#[test]
fn from_input_rejections() {
    reject_input(&input("", "example.com"), "type", "missing");
    reject_input(&input("hostname", "example.com"), "type", "use one of ipv4");
    reject_input(&input("ipv4", "300.1.2.3"), "value", "over 255");
    reject_input(&IndicatorInput { tlp: "red".into(), ..input("ipv4", "192.0.2.1") }, "recipients", "TLP:RED needs");
    reject_input(
        &IndicatorInput { tlp: "amber".into(), recipients: vec!["lv".into()], ..input("ipv4", "192.0.2.1") },
        "recipients",
        "only to TLP:RED",
    );
    reject_input(
        &IndicatorInput { tlp: "red".into(), recipients: vec!["Not A Node".into()], ..input("ipv4", "192.0.2.1") },
        "recipients",
        "not a node name",
    );
    reject_input(&IndicatorInput { tlp: "purple".into(), ..input("ipv4", "192.0.2.1") }, "tlp", "TLP 2.0");
    reject_input(&IndicatorInput { confidence: Some(101), ..input("ipv4", "192.0.2.1") }, "confidence", "0 to 100");
    reject_input(&IndicatorInput { confidence: Some(-1), ..input("ipv4", "192.0.2.1") }, "confidence", "0 to 100");
    reject_input(
        &IndicatorInput {
            valid_from: Some("2026-12-01T00:00:00Z".into()),
            valid_until: Some("2026-11-30T00:00:00Z".into()),
            ..input("ipv4", "192.0.2.1")
        },
        "valid_until",
        "later than valid_from",
    );
    reject_input(
        &IndicatorInput { valid_from: Some("last tuesday".into()), ..input("ipv4", "192.0.2.1") },
        "valid_from",
        "RFC 3339",
    );
    reject_input(
        &IndicatorInput { valid_until: Some("1969-01-01".into()), ..input("ipv4", "192.0.2.1") },
        "valid_until",
        "before 1970",
    );
    reject_input(
        &IndicatorInput { techniques: vec!["phishing".into()], ..input("ipv4", "192.0.2.1") },
        "techniques",
        "kill-chain phase",
    );
}

#[test]
fn validate_rejects_values_not_in_normal_form() {
    let mut ind = Indicator::from_input(&input("domain", "example.com"), T0).unwrap();
    ind.value = "EXAMPLE.com".into();
    let e = ind.validate().unwrap_err();
    assert_eq!(e.field, "value");
    assert!(e.reason.contains("not in normal form"), "{e}");
}

#[test]
fn same_ioc_same_content_id() {
    let id = |itype: &str, value: &str| Indicator::from_input(&input(itype, value), T0).unwrap().content_id();
    assert_eq!(id("domain", "EXAMPLE.com."), id("domain", "example.com"));
    assert_eq!(id("ipv6", "[2001:DB8::0:1]"), id("ipv6", "2001:db8::1"));
    assert_eq!(id("url", "HTTP://Example.COM:80/a?b=1#x"), id("url", "http://example.com/a?b=1"));
    assert_eq!(
        id("sha1", "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709"),
        id("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );
    assert_ne!(id("filename", "Evil.exe"), id("filename", "evil.exe"));
    assert_ne!(id("ipv4", "192.0.2.1"), id("cidr", "192.0.2.1/32"));
}

fn arb_ipv4() -> impl Strategy<Value = std::net::Ipv4Addr> {
    any::<u32>().prop_map(std::net::Ipv4Addr::from)
}

/// IPv6 addresses with runs of zero groups, the interesting case for RFC 5952.
fn arb_ipv6() -> impl Strategy<Value = std::net::Ipv6Addr> {
    prop::array::uniform8(prop_oneof![Just(0u16), Just(0xffff), any::<u16>()]).prop_map(std::net::Ipv6Addr::from)
}

fn arb_label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?"
}

fn arb_domain() -> impl Strategy<Value = String> {
    let unicode = prop_oneof![Just("bücher"), Just("пример"), Just("例え"), Just("münchen"), Just("ελλάδα")];
    (prop::collection::vec(prop_oneof![arb_label(), unicode.prop_map(String::from)], 1..4), "[a-z]{2,6}", any::<bool>())
        .prop_map(|(labels, tld, dot)| format!("{}.{tld}{}", labels.join("."), if dot { "." } else { "" }))
}

fn arb_type() -> impl Strategy<Value = IndicatorType> {
    prop::sample::select(IndicatorType::ALL.to_vec())
}

proptest! {
    #[test]
    fn ipv4_normal_form_is_canonical(a in arb_ipv4()) {
        let n = normalize_value(IndicatorType::Ipv4, &a.to_string()).unwrap();
        prop_assert_eq!(&n, &a.to_string());
        prop_assert_eq!(normalize_value(IndicatorType::Ipv4, &n).unwrap(), n);
    }

    #[test]
    fn ipv6_normalisation_is_idempotent(a in arb_ipv6(), bracket in any::<bool>(), upper in any::<bool>()) {
        let mut text = a.to_string();
        if upper { text = text.to_uppercase(); }
        if bracket { text = format!("[{text}]"); }
        let n = normalize_value(IndicatorType::Ipv6, &text).unwrap();
        prop_assert_eq!(&n, &a.to_string());
        prop_assert_eq!(normalize_value(IndicatorType::Ipv6, &n).unwrap(), n);
    }

    #[test]
    fn cidr_normalisation_is_idempotent(a4 in arb_ipv4(), p4 in 0u32..=32, a6 in arb_ipv6(), p6 in 0u32..=128) {
        for text in [format!("{a4}/{p4}"), format!("{a6}/{p6}")] {
            let n = normalize_value(IndicatorType::Cidr, &text).unwrap();
            prop_assert_eq!(normalize_value(IndicatorType::Cidr, &n).unwrap(), n.clone());
            // The network contains the address it was written with.
            let (net, p) = n.split_once('/').unwrap();
            let p: u32 = p.parse().unwrap();
            if let Ok(net) = net.parse::<std::net::Ipv4Addr>() {
                prop_assert_eq!(a4.to_bits().checked_shr(32 - p).unwrap_or(0), net.to_bits().checked_shr(32 - p).unwrap_or(0));
            }
        }
    }

    #[test]
    fn domain_normalisation_is_idempotent(d in arb_domain()) {
        let n = normalize_value(IndicatorType::Domain, &d).unwrap();
        prop_assert!(n.is_ascii() && n == n.to_lowercase() && !n.ends_with('.'), "{}", n);
        prop_assert_eq!(normalize_value(IndicatorType::Domain, &n).unwrap(), n);
    }

    #[test]
    fn hash_normalisation_is_idempotent(bytes in prop::collection::vec(any::<u8>(), 32), upper in any::<bool>()) {
        for (t, len) in [(IndicatorType::Md5, 16), (IndicatorType::Sha1, 20), (IndicatorType::Sha256, 32)] {
            let hex = hex::encode(&bytes[..len]);
            let text = if upper { hex.to_uppercase() } else { hex.clone() };
            let n = normalize_value(t, &text).unwrap();
            prop_assert_eq!(&n, &hex);
            prop_assert_eq!(normalize_value(t, &n).unwrap(), n);
        }
    }

    #[test]
    fn normalisation_never_panics_and_is_idempotent(t in arb_type(), s in "\\PC{0,40}|[0-9a-fA-F:./\\[\\]%@*-]{0,40}") {
        if let Ok(n) = normalize_value(t, &s) {
            prop_assert_eq!(normalize_value(t, &n), Ok(n.clone()), "{} {:?}", t, s);
        }
    }

    #[test]
    fn url_normalisation_is_idempotent(
        scheme in prop::sample::select(vec!["http", "HTTPS", "ftp", "ftps"]),
        host in arb_domain(),
        port in prop::option::of(any::<u16>()),
        path in "(/[a-zA-Z0-9 ._~%-]{0,8}){0,3}",
        query in prop::option::of("[a-zA-Z0-9=&%+ ]{0,10}"),
        fragment in prop::option::of("[a-z]{0,5}"),
    ) {
        let mut text = format!("{scheme}://{host}");
        if let Some(p) = port { text += &format!(":{p}"); }
        text += &path;
        if let Some(q) = query { text += &format!("?{q}"); }
        if let Some(f) = fragment { text += &format!("#{f}"); }
        let n = normalize_value(IndicatorType::Url, &text).unwrap();
        prop_assert!(!n.contains('#'), "{}", n);
        prop_assert_eq!(normalize_value(IndicatorType::Url, &n).unwrap(), n);
    }

    #[test]
    fn domain_case_does_not_change_content_id(d in arb_domain()) {
        let a = Indicator::from_input(&input("domain", &d.to_uppercase()), T0).unwrap();
        let b = Indicator::from_input(&input("domain", &d.to_lowercase()), T0).unwrap();
        prop_assert_eq!(a.content_id(), b.content_id());
        prop_assert_eq!(a.content_id(), content_id(IndicatorType::Domain, &a.value));
    }

    #[test]
    fn time_round_trips(ms in 0u64..=253_402_300_799_999) {
        prop_assert_eq!(parse_time(&format_time(ms), 0), Ok(ms));
    }
}
