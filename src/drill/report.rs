//! The after-action report of a drill: figures, statuses, objectives, and JSON/Markdown/HTML.
