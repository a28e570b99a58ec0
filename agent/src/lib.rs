//! Placeholder for the agent crate (issue 3): the library for custom agents
//! and the `procjonagent` binary.
