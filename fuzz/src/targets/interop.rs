//! Imports of foreign files: STIX 2.x bundles and MISP events. Every indicator an import makes
//! goes through the checks of a submission (`api::check_input`), as `ctix import` submits it.

use ctix::interop::{ImportReport, misp, stix};

use super::api::check_input;

pub fn stix(data: &[u8]) {
    if let Ok(report) = stix::import_bundle(data) {
        check_report(&report);
    }
}

pub fn misp(data: &[u8]) {
    if let Ok(report) = misp::import_event(data) {
        check_report(&report);
    }
}

fn check_report(report: &ImportReport) {
    for item in &report.items {
        check_input(&item.input);
    }
    for s in &report.skipped {
        assert!(!s.reason.is_empty(), "every skipped object says why");
    }
    let _ = report.reasons();
}
