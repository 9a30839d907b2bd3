//! Static checks of a trunk definition against the setup guide and API rules.

use super::Finding;
use crate::trunk::Trunk;

/// Every static finding for one trunk, most severe first.
pub fn lint(_trunk: &Trunk) -> Vec<Finding> {
    Vec::new()
}
