//! MISP event import and feed export (being written).
