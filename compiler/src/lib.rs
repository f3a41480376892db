//! The choreo compiler: parses `.choreo` specs, checks them and derives code, diagrams and exports.
