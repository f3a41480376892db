//! The runtime every generated choreo service links.
