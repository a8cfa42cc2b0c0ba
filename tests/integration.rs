//! Integration tests: the ledger store, replay, crash safety and the real server.

// A failed unwrap is a failed test, with its location; helpers are test code too.
#![allow(clippy::unwrap_used)]

mod integration {
    mod abuse;
    mod api_docs;
    mod audit;
    mod auth;
    mod authority;
    mod authority_property;
    #[cfg(target_os = "linux")]
    mod backup_restore;
    mod bad_input;
    #[cfg(target_os = "linux")]
    mod browser;
    mod cli;
    #[cfg(target_os = "linux")]
    mod cluster;
    #[cfg(target_os = "linux")]
    mod cluster_nodes;
    #[cfg(target_os = "linux")]
    mod cluster_transparency;
    mod console;
    #[cfg(target_os = "linux")]
    mod console_browser;
    mod crash;
    #[cfg(target_os = "linux")]
    mod docs_run;
    mod erasure;
    mod feed;
    mod format;
    mod fuzz;
    mod jmap_core;
    mod jmap_query;
    mod jmap_set;
    #[cfg(target_os = "linux")]
    mod nats;
    #[cfg(target_os = "linux")]
    mod operator;
    mod privacy;
    #[cfg(target_os = "linux")]
    mod process;
    mod push;
    mod replay;
    mod retention;
    mod seeded;
    #[cfg(target_os = "linux")]
    mod serve_process;
    mod server;
    #[cfg(target_os = "linux")]
    mod service;
    mod snapshots;
    mod stalwart_cli;
    mod store;
    mod stream_access;
    mod support;
    mod tenancy;
    mod tidy;
    mod transparency;
    mod transparency_attacks;
    mod usage;
}
