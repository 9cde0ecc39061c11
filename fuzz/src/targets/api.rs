//! The REST API's request bodies and the values inside them.
//!
//! `api::indicators::parse_query` and the handlers are private (`api` declares its modules
//! without `pub`), so these targets run what they run: the `view` request shapes as axum's `Json`
//! extractor decodes them, then `Indicator::from_input`, `parse_time`, `normalize_value`,
//! `EntryId`, `Tlp`, `IndicatorType` and the drill scenario parser.

use std::str::FromStr;

use ctix::drill::scenario;
use ctix::interop::{misp, stix};
use ctix::model::time::{TIME_MS_MAX, format_time, parse_time, parse_time_ago};
use ctix::model::{
    Body, EntryId, Indicator, IndicatorInput, IndicatorType, NodeName, Retraction, Sighting, Tlp, normalize_value,
};
use ctix::view::{
    DrillAbortRequest, DrillAckRequest, DrillStartRequest, IndicatorView, RetractRequest, SUBMIT_BATCH_MAX,
    SightRequest, SubmitRequest,
};
use ctix::wire::{self, BODY_BYTES_MAX};

use crate::fixtures::NOW_MS;

/// One JSON request body, tried as each request shape of the API.
pub fn api_json(data: &[u8]) {
    // POST /api/v1/indicators
    if let Ok(req) = serde_json::from_slice::<SubmitRequest>(data) {
        for input in req.indicators.iter().take(SUBMIT_BATCH_MAX) {
            check_input(input);
        }
    }
    // POST /api/v1/indicator
    if let Ok(input) = serde_json::from_slice::<IndicatorInput>(data) {
        check_input(&input);
    }
    // POST /api/v1/indicators/{id}/retract, as `indicators::retract` builds the body.
    if let Ok(req) = serde_json::from_slice::<RetractRequest>(data) {
        let r = Body::Retraction(Retraction { target_seq: 1, reason: req.reason.trim().to_owned() });
        check_valid_body(&r);
    }
    // POST /api/v1/indicators/{id}/sightings, as `indicators::sight` builds the body.
    if let Ok(req) = serde_json::from_slice::<SightRequest>(data) {
        sight(&req);
    }
    // POST /api/v1/drills, as `drills::start` checks it.
    if let Ok(req) = serde_json::from_slice::<DrillStartRequest>(data)
        && req.scenario.len() <= scenario::SCENARIO_BYTES_MAX
        && let Ok(s) = scenario::parse(&req.scenario)
    {
        let speed = req.speed.unwrap_or(1);
        if (1..=100).contains(&speed) {
            super::files::check_scenario(&s.scaled(speed));
        }
    }
    let _ = serde_json::from_slice::<DrillAckRequest>(data);
    let _ = serde_json::from_slice::<DrillAbortRequest>(data);
}

fn sight(req: &SightRequest) {
    let now = NOW_MS;
    let time = |s: &Option<String>| s.as_deref().map(|s| parse_time(s, now)).transpose();
    let (Ok(first), Ok(last)) = (time(&req.first_seen), time(&req.last_seen)) else { return };
    let (first_seen_ms, last_seen_ms) = match (first, last) {
        (Some(f), Some(l)) => (f, l),
        (Some(f), None) => (f, now.max(f)),
        (None, Some(l)) => (now.min(l), l),
        (None, None) => (now, now),
    };
    let indicator = EntryId { origin: crate::fixtures::name("ee"), seq: 1 };
    let s = Sighting {
        indicator,
        count: req.count.unwrap_or(1),
        first_seen_ms,
        last_seen_ms,
        note: req.note.trim().into(),
    };
    check_valid_body(&Body::Sighting(s));
}

/// A valid body is one a node can sign, store and relay: it encodes within `BODY_BYTES_MAX` and
/// decodes back to itself.
fn check_valid_body(b: &Body) {
    if b.validate().is_err() {
        return;
    }
    let bytes = wire::encode_body(b);
    assert!(bytes.len() <= BODY_BYTES_MAX, "a valid body encodes within BODY_BYTES_MAX ({} bytes)", bytes.len());
    assert_eq!(wire::decode_body(&bytes).as_ref(), Ok(b), "valid bodies round-trip");
}

/// What holds for every submitted indicator: `from_input` either refuses it with a reason or
/// makes an indicator that validates, fits in a body, is a fixed point (submitting the result
/// again gives the same indicator), and survives a trip through STIX and MISP.
pub fn check_input(input: &IndicatorInput) -> Option<Indicator> {
    let ind = match Indicator::from_input(input, NOW_MS) {
        Ok(ind) => ind,
        Err(e) => {
            assert!(!e.reason.is_empty(), "every refusal says why");
            return None;
        }
    };
    ind.validate().expect("from_input returns valid indicators");
    check_valid_body(&Body::Indicator(ind.clone()));
    let again = Indicator::from_input(&input_of(&ind), NOW_MS).expect("a normalised indicator is accepted again");
    assert_eq!(again, ind, "normalising is idempotent");
    check_exports(&ind);
    Some(ind)
}

/// The submission that the API's view of `ind` would be.
fn input_of(ind: &Indicator) -> IndicatorInput {
    IndicatorInput {
        itype: ind.itype.to_string(),
        value: ind.value.clone(),
        tlp: ind.tlp.to_string(),
        recipients: ind.recipients.iter().map(|r| r.to_string()).collect(),
        confidence: Some(i64::from(ind.confidence)),
        valid_from: Some(format_time(ind.valid_from_ms)),
        valid_until: ind.valid_until_ms.map(format_time),
        tags: ind.tags.clone(),
        description: ind.description.clone(),
        techniques: ind.techniques.clone(),
    }
}

/// The view the API shows of `ind` as `ee:1`.
pub fn view_of(ind: &Indicator) -> IndicatorView {
    IndicatorView {
        id: "ee:1".into(),
        origin: "ee".into(),
        seq: 1,
        itype: ind.itype.to_string(),
        value: ind.value.clone(),
        tlp: ind.tlp.to_string(),
        recipients: ind.recipients.iter().map(|r| r.to_string()).collect(),
        confidence: ind.confidence,
        valid_from: format_time(ind.valid_from_ms),
        valid_until: ind.valid_until_ms.map(format_time),
        tags: ind.tags.clone(),
        description: ind.description.clone(),
        techniques: ind.techniques.clone(),
        created: format_time(NOW_MS),
        content_id: String::new(),
        retracted: false,
        retracted_by: None,
        retracted_at: None,
        retraction_reason: String::new(),
        sightings: 0,
        sighting_reports: Vec::new(),
        cursor: 1,
    }
}

/// STIX keeps everything but TLP:RED recipients (RED indicators stay out of this check); MISP
/// keeps the type and value (its confidence levels and tags are coarser).
fn check_exports(ind: &Indicator) {
    if ind.tlp == Tlp::Red {
        return;
    }
    let view = view_of(ind);
    let bundle = serde_json::to_vec(&stix::bundle(std::slice::from_ref(&view))).expect("bundles serialise");
    let report = stix::import_bundle(&bundle).expect("our own bundle imports");
    assert_eq!(report.items.len(), 1, "one indicator comes back from STIX: {report:?}");
    let back = Indicator::from_input(&report.items[0].input, NOW_MS).expect("a STIX round trip stays valid");
    assert_eq!(back, *ind, "a STIX round trip keeps the indicator");
    let feed = misp::feed(std::slice::from_ref(&view), NOW_MS);
    assert_eq!(feed.events.len(), 1, "one MISP event per origin and day");
    for event in feed.events.values() {
        let report = misp::import_event(&serde_json::to_vec(event).expect("events serialise")).expect("imports");
        assert_eq!(report.items.len(), 1, "one indicator comes back from MISP: {report:?}");
        let back = Indicator::from_input(&report.items[0].input, NOW_MS).expect("a MISP round trip stays valid");
        assert_eq!((back.itype, &back.value), (ind.itype, &ind.value), "a MISP round trip keeps type and value");
    }
}

/// One value as it appears in a request or a query string: the first byte says which parser.
pub fn values(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let s = String::from_utf8_lossy(rest);
    let s = s.as_ref();
    let types = IndicatorType::ALL;
    match usize::from(sel) % (types.len() + 6) {
        i if i < types.len() => normalized(types[i], s),
        11 => times(s, parse_time(s, NOW_MS)),
        12 => times(s, parse_time_ago(s, NOW_MS)),
        13 => {
            if let Ok(id) = EntryId::from_str(s) {
                assert_eq!(id.to_string().parse::<EntryId>(), Ok(id.clone()), "entry ids round-trip");
                assert!(id.seq >= 1);
            }
            if let Ok(n) = NodeName::new(s) {
                assert_eq!(n.as_str(), s);
            }
        }
        14 => {
            if let Ok(t) = Tlp::from_str(s) {
                assert_eq!(t.as_str().parse::<Tlp>(), Ok(t));
            }
            if let Ok(t) = IndicatorType::from_str(s) {
                assert_eq!(t.as_str().parse::<IndicatorType>(), Ok(t));
            }
        }
        _ => {
            if let Ok(ms) = scenario::parse_duration(s) {
                let text = scenario::format_duration(ms);
                assert_eq!(scenario::parse_duration(&text), Ok(ms), "durations round-trip through {text:?}");
            }
        }
    }
}

/// A normal form is a fixed point, within `VALUE_BYTES_MAX`, and exports as a STIX pattern.
fn normalized(itype: IndicatorType, s: &str) {
    let Ok(n) = normalize_value(itype, s) else { return };
    assert!(n.len() <= ctix::model::VALUE_BYTES_MAX);
    assert_eq!(normalize_value(itype, &n).as_deref(), Ok(n.as_str()), "{itype} normal forms are fixed points");
    let _ = stix::pattern(itype, &n);
}

fn times(s: &str, parsed: Result<u64, String>) {
    match parsed {
        Ok(ms) => {
            assert!(ms <= TIME_MS_MAX, "{s:?} parsed past TIME_MS_MAX");
            assert_eq!(parse_time(&format_time(ms), NOW_MS), Ok(ms), "times round-trip");
        }
        Err(reason) => assert!(!reason.is_empty()),
    }
}
