//! The one way the small CSV inputs (triangles, premiums, credibility tables) are opened:
//! fields trimmed, the first line a header.

/// A reader over `text` and its header row. The error is the message to put in the caller's
/// error type, which names the input.
pub(crate) fn open_with_header(
    text: &str,
) -> Result<(csv::Reader<&[u8]>, csv::StringRecord), String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .clone();
    Ok((reader, headers))
}
