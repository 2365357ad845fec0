//! Reading damocles-worker's own sector record (provisional while the format is checked).

use crate::record::{DecodeError, SectorRecord};

pub(crate) fn decode_reference_record(
    _bytes: &[u8],
    version: u32,
) -> Result<SectorRecord, DecodeError> {
    Err(DecodeError::Reference(format!(
        "version {version} not yet readable"
    )))
}
