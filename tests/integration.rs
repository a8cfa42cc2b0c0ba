//! Integration tests: the ledger store, replay, crash safety and the real server.

mod integration {
    pub mod api_docs;
    pub mod audit;
    pub mod auth;
    pub mod bad_input;
    pub mod cli;
    pub mod crash;
    pub mod erasure;
    pub mod feed;
    pub mod format;
    pub mod jmap_core;
    pub mod jmap_query;
    pub mod jmap_set;
    pub mod push;
    pub mod replay;
    pub mod retention;
    pub mod seeded;
    #[cfg(target_os = "linux")]
    pub mod serve_process;
    pub mod server;
    pub mod snapshots;
    pub mod store;
    pub mod support;
    pub mod usage;
}
