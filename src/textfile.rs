//! Reading a small text file (a config, a roster) with a size limit that holds for special files
//! too: the size the metadata gives is checked first, and the read stops one byte past the limit
//! whatever the metadata said (a FIFO or `/dev/zero` reports no size).

use std::path::Path;

/// Why [`read_limited`] gave no text.
#[derive(Debug)]
pub enum LimitedReadError {
    /// The file could not be inspected, opened or read (or is not UTF-8).
    Io(std::io::Error),
    /// The file holds more than the limit.
    TooLarge,
}

/// The whole text of `path`, if it holds at most `max` bytes.
pub fn read_limited(path: &Path, max: u64) -> Result<String, LimitedReadError> {
    let meta = std::fs::metadata(path).map_err(LimitedReadError::Io)?;
    if meta.len() > max {
        return Err(LimitedReadError::TooLarge);
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| std::io::Read::read_to_string(&mut std::io::Read::take(f, max + 1), &mut text))
        .map_err(LimitedReadError::Io)?;
    if text.len() as u64 > max {
        return Err(LimitedReadError::TooLarge);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_at_the_limit_is_read_and_one_byte_more_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, "x".repeat(16)).unwrap();
        assert_eq!(read_limited(&path, 16).unwrap(), "x".repeat(16));
        assert!(matches!(read_limited(&path, 15), Err(LimitedReadError::TooLarge)));
        // A special file reports no size: the read itself stops past the limit.
        assert!(matches!(read_limited(Path::new("/dev/zero"), 15), Err(LimitedReadError::TooLarge)));
        assert!(matches!(read_limited(&dir.path().join("missing"), 15), Err(LimitedReadError::Io(_))));
    }
}
